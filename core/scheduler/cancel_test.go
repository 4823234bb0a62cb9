package scheduler

import (
	"strings"
	"testing"

	"github.com/opengris/scaler/core/protocol"
)

// TestForcedCancelAfterAPlainOne: while a plain cancel of a running task is
// pending (the worker may refuse it: cancel_failed), a forced one, asked
// by the client or by its leaving, still goes to the worker, once; the
// last answer settles the task, and the client hears once.
func TestForcedCancelAfterAPlainOne(t *testing.T) {
	for _, tc := range []struct {
		name   string
		force  func(h *harness)
		forced []string // cancels sent on the forcing
	}{
		{"the client asks again", func(h *harness) { h.cancel("c", "t1", true) }, []string{"w:TaskCancel(t1,force=true)"}},
		{"the client leaves", func(h *harness) {
			h.handle("c", &protocol.ClientDisconnect{Type: protocol.DisconnectClient})
		}, []string{"w:TaskCancel(t1,force=true)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.client("c")
			h.worker("w", 1)
			h.submit("c", "t1")
			h.take()
			h.cancel("c", "t1", false)
			equal(t, "plain", describe(noEchoes(h.take())), []string{"w:TaskCancel(t1,force=false)"})
			tc.force(h)
			h.cancel("c", "t1", true) // once forced, no more
			equal(t, "forced once", cancels(describe(noEchoes(h.take()))), tc.forced)
			h.confirm("w", "t1", protocol.CancelConfirmFailed) // the plain one's answer
			equal(t, "the forced one decides", describe(noEchoes(h.take())), nil)
			h.confirm("w", "t1", protocol.CancelConfirmCanceled)
			equal(t, "answered once", describe(noEchoes(h.take())), []string{"c:Confirm(t1,Canceled)"})
			if h.s.tasks["t1"] != nil {
				t.Fatalf("t1 still held in state %v", h.s.tasks["t1"].state)
			}
			checkInvariants(t, h.s)
		})
	}
}

// cancels keeps the TaskCancel lines of sent (a leaving client's objects
// are deleted too, in no set order).
func cancels(sent []string) []string {
	var out []string
	for _, s := range sent {
		if strings.Contains(s, ":TaskCancel(") {
			out = append(out, s)
		}
	}
	return out
}
