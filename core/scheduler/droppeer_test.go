package scheduler

import "testing"

// DropPeer (core/server calls it for a peer that stopped reading): a client
// goes as if it had timed out; a
// worker as if it had missed its heartbeats; anything else is left alone.
func TestDropPeer(t *testing.T) {
	cases := []struct {
		name, peer, want string
		heartbeat        bool // the client sent a heartbeat
		check            func(t *testing.T, h *harness)
	}{
		{"client", "c", "client", true, func(t *testing.T, h *harness) {
			if h.s.clients["c"] != nil || h.s.tasks["t1"] != nil || h.s.tasks["t2"] == nil {
				t.Fatal("client or its waiting task kept, or the other client's task dropped")
			}
		}},
		{"worker", "w", "worker", true, func(t *testing.T, h *harness) {
			if h.s.workers.byID["w"] != nil {
				t.Fatal("worker kept")
			}
			if tk := h.s.tasks["t2"]; tk == nil || tk.worker != nil {
				t.Fatal("its task not waiting again")
			}
		}},
		{"stranger", "x", "", true, func(t *testing.T, h *harness) {
			if len(h.s.clients) != 2 || len(h.s.tasks) != 2 || h.s.workers.byID["w"] == nil {
				t.Fatal("state changed")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.client("d")
			h.worker("w", 1)
			h.submit("d", "t2") // runs on w
			if tc.heartbeat {
				h.client("c")
			}
			h.submit("c", "t1") // waits: w is full
			h.take()
			if got := h.s.DropPeer([]byte(tc.peer), h.now); got != tc.want {
				t.Fatalf("DropPeer(%s) = %q, want %q", tc.peer, got, tc.want)
			}
			tc.check(t, h)
			checkInvariants(t, h.s)
		})
	}
}
