package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest"
)

// host is a test connection that hosts relayed workers (protocol.Relay).
type host struct {
	t    *testing.T
	peer *scalertest.Peer
	// held collects, per worker, the tasks the scheduler relayed to it.
	held map[string][][]byte
}

func newHost(t *testing.T, addr, name string) *host {
	p := must[*scalertest.Peer](t)(scalertest.Dial(addr, fmt.Sprintf("%d|Host|%s|%d", 1, name, time.Now().UnixNano())))
	t.Cleanup(p.Close)
	return &host{t: t, peer: p, held: map[string][][]byte{}}
}

func relayedID(name string) []byte {
	return []byte("7|Worker|" + name + "|0123456789abcdef0123456789abcdef")
}

// relay sends msgs as worker w's, in one Relay.
func (h *host) relay(w []byte, closed bool, msgs ...protocol.Message) {
	h.t.Helper()
	r := &protocol.Relay{Worker: w, Closed: closed}
	for _, m := range msgs {
		r.Messages = append(r.Messages, protocol.MustEncode(m))
	}
	must[struct{}](h.t)(struct{}{}, h.peer.Send(r))
}

func beat() *protocol.WorkerHeartbeat { return beatOf(10) }

func beatOf(queue uint32) *protocol.WorkerHeartbeat {
	return &protocol.WorkerHeartbeat{QueueSize: queue, Tasks: [][]byte{}}
}

// collect reads relays until n tasks in all are held, and returns them by
// worker.
func (h *host) collect(n int, within time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for total := h.total(); total < n; total = h.total() {
		m, err := h.peer.Recv(time.Until(deadline))
		if err != nil {
			h.t.Fatalf("the host holds %d tasks, want %d: %v", total, n, err)
		}
		r, ok := m.(*protocol.Relay)
		if !ok {
			h.t.Fatalf("the host got a %s, not a Relay", m.Kind())
		}
		for _, f := range r.Messages {
			if task, ok := must[protocol.Message](h.t)(protocol.Decode(f)).(*protocol.Task); ok {
				h.held[string(r.Worker)] = append(h.held[string(r.Worker)], task.TaskID)
			}
		}
	}
}

func (h *host) total() (n int) {
	for _, ids := range h.held {
		n += len(ids)
	}
	return n
}

// answer sends a success for every task worker w holds.
func (h *host) answer(w []byte) {
	h.t.Helper()
	var results []protocol.Message
	for _, id := range h.held[string(w)] {
		results = append(results, &protocol.TaskResult{TaskID: id, Type: protocol.ResultSuccess})
	}
	delete(h.held, string(w))
	h.relay(w, false, results...)
}

// Two workers hosted by one connection get tasks and return results
// through it, each task wrapped for its worker.
func TestRelayedWorkersRunTasks(t *testing.T) {
	t.Parallel()
	s := scalertest.StartScheduler(t, nil)
	h := newHost(t, s.Addr(), "a")
	w1, w2 := relayedID("one"), relayedID("two")
	h.relay(w1, false, beatOf(3)) // 6 tasks fill both, whatever came first
	h.relay(w2, false, beatOf(3))
	c := scalertest.ClientFor(t, s.Addr())
	ids := sendTasks(t, c, 6)
	h.collect(6, wait)
	if len(h.held[string(w1)]) == 0 || len(h.held[string(w2)]) == 0 {
		t.Fatalf("tasks by worker: one %d, two %d; want both used", len(h.held[string(w1)]), len(h.held[string(w2)]))
	}
	h.answer(w1)
	h.answer(w2)
	for _, id := range ids {
		m := must[protocol.Message](t)(c.Expect(wait, isResult(id)))
		if r := m.(*protocol.TaskResult); r.Type != protocol.ResultSuccess {
			t.Fatalf("result %+v", r)
		}
	}
}

// A connection acts only for the workers it introduced: another
// connection's relay for them, a direct message under their id, and a
// relay for a directly connected worker are all dropped.
func TestRelayActsOnlyForItsOwnWorkers(t *testing.T) {
	t.Parallel()
	s := scalertest.StartScheduler(t, nil)
	h := newHost(t, s.Addr(), "owner")
	w := relayedID("held")
	h.relay(w, false, beatOf(1)) // full with one task: the next waits for the direct worker
	c := scalertest.ClientFor(t, s.Addr())
	task := c.Task(1)
	must[struct{}](t)(struct{}{}, c.Send(task))
	h.collect(1, wait)

	forged := &protocol.TaskResult{TaskID: task.TaskID, Type: protocol.ResultSuccess}
	thief := newHost(t, s.Addr(), "thief")
	thief.relay(w, false, forged)
	direct := must[*scalertest.Peer](t)(scalertest.Dial(s.Addr(), string(w)))
	defer direct.Close()
	must[struct{}](t)(struct{}{}, direct.Send(forged))
	// A directly connected worker holds a task; a relay in its name must
	// not finish it either.
	d := must[*scalertest.Worker](t)(scalertest.StartWorker(s.Addr(), scalertest.WorkerOptions{Name: "direct", Hold: true}))
	defer d.Kill()
	second := c.Task(2)
	must[struct{}](t)(struct{}{}, c.Send(second))
	if !scalertest.WaitFor(wait, func() bool { return len(d.Tasks()) == 1 }) {
		t.Fatalf("the direct worker holds %d tasks", len(d.Tasks()))
	}
	thief.relay(d.ID, false, &protocol.TaskResult{TaskID: second.TaskID, Type: protocol.ResultSuccess})
	if m, err := c.Expect(500*time.Millisecond, func(m protocol.Message) bool { _, ok := m.(*protocol.TaskResult); return ok }); err == nil {
		t.Fatalf("a forged result was taken: %+v", m)
	}

	h.answer(w)
	m := must[protocol.Message](t)(c.Expect(wait, isResult(task.TaskID)))
	if r := m.(*protocol.TaskResult); r.Type != protocol.ResultSuccess {
		t.Fatalf("result %+v", r)
	}
}

// A hosted worker whose relay says Closed, and every worker of a host
// whose connection closes, are gone at once: their tasks run elsewhere.
func TestRelayedWorkersEndWithTheirLinks(t *testing.T) {
	t.Parallel()
	s := scalertest.StartScheduler(t, nil) // worker timeout 60 s: no help from it
	h := newHost(t, s.Addr(), "a")
	w1, w2 := relayedID("one"), relayedID("two")
	h.relay(w1, false, beat())
	c := scalertest.ClientFor(t, s.Addr())
	first := c.Task(1)
	must[struct{}](t)(struct{}{}, c.Send(first))
	h.collect(1, wait)
	h.relay(w2, false, beat())
	h.relay(w1, true) // w1's own link closed: its task goes to w2
	h.held = map[string][][]byte{}
	h.collect(1, wait)
	if got := h.held[string(w2)]; len(got) != 1 || string(got[0]) != string(first.TaskID) {
		t.Fatalf("after w1 closed the host holds %v", h.held)
	}

	h.peer.Close() // the whole host: w2 goes too, and its task to a direct worker
	real := scalertest.WorkerFor(t, s.Addr(), scalertest.WorkerOptions{Name: "real"})
	m := must[protocol.Message](t)(c.Expect(wait, isResult(first.TaskID)))
	if r := m.(*protocol.TaskResult); r.Type != protocol.ResultSuccess {
		t.Fatalf("result %+v", r)
	}
	if n := len(real.Tasks()); n != 1 {
		t.Fatalf("the direct worker ran %d tasks, want the closed host's 1", n)
	}
}

// A claim starts with the worker's heartbeat, and no connection can claim a
// host's own id: a relay of anything else claims nothing, and the host
// keeps getting what is meant for its workers.
func TestRelayClaimsStartWithAHeartbeat(t *testing.T) {
	t.Parallel()
	s := scalertest.StartScheduler(t, nil)
	squatter, owner := newHost(t, s.Addr(), "squatter"), newHost(t, s.Addr(), "owner")
	w := relayedID("w")
	squatter.relay(w, false, &protocol.TaskResult{TaskID: []byte("0123456789abcdef"), Type: protocol.ResultSuccess})
	owner.relay(w, false, beatOf(1))
	c := scalertest.ClientFor(t, s.Addr())
	ids := sendTasks(t, c, 2) // w holds one at a time
	owner.collect(1, wait)
	// The owner's claim is in effect (it holds a task): only now can the
	// squatter's try for the owner host's own id be refused for that
	// reason, as two connections' messages come in no set order.
	squatter.relay(owner.peer.ID, false, beat())
	for round := 0; round < 2; round++ {
		held := owner.held[string(w)]
		if len(held) != 1 || (string(held[0]) != string(ids[0]) && string(held[0]) != string(ids[1])) {
			t.Fatalf("round %d: the owner holds %v", round, owner.held)
		}
		if m, err := squatter.peer.Recv(300 * time.Millisecond); err == nil {
			t.Fatalf("the squatter got %s", m.Kind())
		}
		id := held[0]
		owner.answer(w)
		if r := must[protocol.Message](t)(c.Expect(wait, isResult(id))).(*protocol.TaskResult); r.Type != protocol.ResultSuccess {
			t.Fatalf("result %+v", r)
		}
		if round == 0 {
			owner.collect(1, wait) // the other task, once w has room again
		}
	}
}

// tasksWithin reads relays for d and returns the tasks in them, by worker.
func (h *host) tasksWithin(d time.Duration) map[string][][]byte {
	got := map[string][][]byte{}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m, err := h.peer.Recv(time.Until(deadline))
		if err != nil {
			break
		}
		if r, ok := m.(*protocol.Relay); ok {
			for _, f := range r.Messages {
				if task, ok := must[protocol.Message](h.t)(protocol.Decode(f)).(*protocol.Task); ok {
					got[string(r.Worker)] = append(got[string(r.Worker)], task.TaskID)
				}
			}
		}
	}
	return got
}

// holder is a direct worker that takes one task and keeps it: where a task
// goes once nobody else can have it, so its arrival shows that the
// scheduler placed the task again.
func holder(t *testing.T, addr string) *scalertest.Worker {
	return scalertest.WorkerFor(t, addr, scalertest.WorkerOptions{Name: "holder", QueueSize: 1, Hold: true})
}

func waitForTasks(t *testing.T, w *scalertest.Worker, n int) {
	t.Helper()
	for deadline := time.Now().Add(wait); len(w.Tasks()) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the worker holds %d tasks, want %d", len(w.Tasks()), n)
		}
	}
}

// busyHost starts a scheduler with a host whose one relayed worker (queue
// size 1) holds the client's first task.
func busyHost(t *testing.T) (*scalertest.Scheduler, *host, []byte, *scalertest.Client) {
	t.Helper()
	s := scalertest.StartScheduler(t, nil)
	h := newHost(t, s.Addr(), "a")
	w := relayedID("one")
	h.relay(w, false, beatOf(1))
	c := scalertest.ClientFor(t, s.Addr())
	must[struct{}](t)(struct{}{}, c.Send(c.Task(1)))
	h.collect(1, wait)
	return s, h, w, c
}

// A direct connection under a hosted worker's id is not that worker: its
// messages are dropped, and its close must not remove the hosted worker
// (which would place the worker's task again while the worker runs it).
// (Should the scheduler be slow to read the impostor's one message, the
// close is not reported at all and the test passes without showing
// anything; it cannot fail for that.)
func TestRelayedWorkerOutlivesAnImpostorsClose(t *testing.T) {
	t.Parallel()
	s, h, w1, _ := busyHost(t)
	h.relay(relayedID("two"), false, beatOf(1)) // where w1's task would go

	impostor := must[*scalertest.Peer](t)(scalertest.Dial(s.Addr(), string(w1)))
	must[struct{}](t)(struct{}{}, impostor.Send(beat()))
	time.Sleep(200 * time.Millisecond) // its message is read (and dropped)
	impostor.Close()
	if got := h.tasksWithin(time.Second); len(got) != 0 {
		t.Fatalf("after an impostor of w1 closed, the scheduler placed w1's task again: %q", got)
	}
}

// When a host's connection breaks, its workers' ids stay reserved for it:
// another connection that knows an id (the monitor publishes them) cannot
// claim it before the host comes back under the same routing id.
func TestRelayedWorkersIDsWaitForTheirHost(t *testing.T) {
	t.Parallel()
	s, h, w, c := busyHost(t)
	hold := holder(t, s.Addr())
	h.peer.Close()
	waitForTasks(t, hold, 1) // w is gone: its task is placed again

	squatter := newHost(t, s.Addr(), "squatter")
	squatter.relay(w, false, beatOf(1))
	must[struct{}](t)(struct{}{}, c.Send(c.Task(2)))
	if got := squatter.tasksWithin(500 * time.Millisecond); len(got) != 0 {
		t.Fatalf("a squatter claimed w and got %q", got)
	}
	again := &host{t: t, peer: must[*scalertest.Peer](t)(scalertest.Dial(s.Addr(), string(h.peer.ID))), held: map[string][][]byte{}}
	t.Cleanup(again.peer.Close)
	again.relay(w, false, beatOf(1))
	again.collect(1, wait)
}

// The same for a worker connected directly: while it reconnects, nobody
// can claim its id through a relay, and it registers again as before.
func TestDirectWorkersIDIsNotForHosting(t *testing.T) {
	t.Parallel()
	s := scalertest.StartScheduler(t, nil)
	id := string(relayedID("direct"))
	direct := must[*scalertest.Peer](t)(scalertest.Dial(s.Addr(), id))
	must[struct{}](t)(struct{}{}, direct.Send(beatOf(1)))
	c := scalertest.ClientFor(t, s.Addr())
	must[struct{}](t)(struct{}{}, c.Send(c.Task(1)))
	must[protocol.Message](t)(direct.Expect(wait, func(m protocol.Message) bool { _, ok := m.(*protocol.Task); return ok }))
	hold := holder(t, s.Addr())
	direct.Close()
	waitForTasks(t, hold, 1)

	squatter := newHost(t, s.Addr(), "squatter")
	squatter.relay([]byte(id), false, beatOf(1))
	must[struct{}](t)(struct{}{}, c.Send(c.Task(2)))
	if got := squatter.tasksWithin(500 * time.Millisecond); len(got) != 0 {
		t.Fatalf("a squatter claimed the direct worker's id and got %q", got)
	}
	back := must[*scalertest.Peer](t)(scalertest.Dial(s.Addr(), id))
	t.Cleanup(back.Close)
	must[struct{}](t)(struct{}{}, back.Send(beatOf(1)))
	must[protocol.Message](t)(back.Expect(wait, func(m protocol.Message) bool { _, ok := m.(*protocol.Task); return ok }))
}

// A worker's Closed and its next claim in one round (one Batch): what was
// queued for the closed link is not delivered, so its task reaches the
// worker once, not twice.
func TestRelayedCloseAndClaimInOneRoundSendsATaskOnce(t *testing.T) {
	t.Parallel()
	s := scalertest.StartScheduler(t, nil)
	c := scalertest.ClientFor(t, s.Addr())
	must[struct{}](t)(struct{}{}, c.Send(c.Task(1))) // waits: no worker yet
	h := newHost(t, s.Addr(), "a")
	w := relayedID("one")
	b := protocol.MustEncode(beat())
	must[struct{}](t)(struct{}{}, h.peer.Send(&protocol.Batch{Messages: [][]byte{
		protocol.MustEncode(&protocol.Relay{Worker: w, Messages: [][]byte{b}, Closed: true}),
		protocol.MustEncode(&protocol.Relay{Worker: w, Messages: [][]byte{b}}),
	}}))
	if got := h.tasksWithin(time.Second); len(got[string(w)]) != 1 {
		t.Fatalf("the host got %d Task messages for one task: %q", len(got[string(w)]), got)
	}
}

// Malformed and nested relays are dropped, and the host's real worker
// goes on.
func TestMalformedRelaysAreDropped(t *testing.T) {
	t.Parallel()
	s := scalertest.StartScheduler(t, nil)
	h := newHost(t, s.Addr(), "a")
	w := relayedID("one")
	inner := protocol.MustEncode(&protocol.Relay{Worker: relayedID("other"), Messages: [][]byte{protocol.MustEncode(beat())}})
	batch := protocol.MustEncode(&protocol.Batch{Messages: [][]byte{inner, inner}})
	for _, r := range []*protocol.Relay{
		{Worker: nil, Messages: [][]byte{protocol.MustEncode(beat())}},
		{Worker: []byte{}, Closed: true},
		{Worker: h.peer.ID, Messages: [][]byte{protocol.MustEncode(beat())}},
		{Worker: w, Messages: [][]byte{{}, {0xff}, {byte(protocol.KindWorkerHeartbeat)}, inner, batch}},
		{Worker: w, Messages: [][]byte{protocol.MustEncode(beat()), {}, {byte(protocol.KindTaskResult), 0xc1}, inner, batch}},
	} {
		must[struct{}](t)(struct{}{}, h.peer.Send(r))
	}
	must[struct{}](t)(struct{}{}, h.peer.Send(&protocol.Batch{Messages: [][]byte{batch, {}, {0x11}, {0x11, 0xc1}}}))
	c := scalertest.ClientFor(t, s.Addr())
	must[struct{}](t)(struct{}{}, c.Send(c.Task(1)))
	h.collect(1, wait)
	if len(h.held[string(relayedID("other"))]) != 0 || len(h.held[string(w)]) != 1 {
		t.Fatalf("held %q", h.held)
	}
}
