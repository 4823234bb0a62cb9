package scheduler

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/opengris/scaler/core/protocol"
)

// refPick is placement as a scan of every worker: the least loaded one
// with a free slot that offers all of need.
func refPick(order []*worker, need map[string]int64) *worker {
	var best *worker
	for _, w := range order {
		if w.free() > 0 && w.hasCaps(need) && (best == nil || lessLoaded(w, best)) {
			best = w
		}
	}
	return best
}

// TestPickMatchesScan pins the placement indexes (free heaps per
// capability group) to the scan they replace, while workers come and go
// and their loads change.
func TestPickMatchesScan(t *testing.T) {
	r := rand.New(rand.NewSource(19))
	names := []string{"gpu", "mem", "fpga", "big"}
	randCaps := func(p float64) map[string]int64 {
		m := map[string]int64{}
		for _, n := range names {
			if r.Float64() < p {
				m[n] = int64(r.Intn(3) - 1)
			}
		}
		return m
	}
	for round := 0; round < 200; round++ {
		ws := newWorkerSet()
		var live []*worker
		for step := 0; step < 300; step++ {
			switch k := r.Intn(10); {
			case k < 2 || len(live) == 0: // a worker registers
				w := &worker{id: fmt.Sprintf("w%d-%d", round, step), queueSize: 1 + r.Intn(4), caps: randCaps(0.3)}
				ws.add(w)
				live = append(live, w)
			case k == 2: // a worker leaves
				i := r.Intn(len(live))
				ws.remove(live[i])
				live = append(live[:i], live[i+1:]...)
			default: // a worker's load changes
				w := live[r.Intn(len(live))]
				if w.tasks.Len() < w.queueSize && r.Intn(2) == 0 {
					w.tasks.PushBack(&task{})
				} else if w.tasks.Len() > 0 {
					w.tasks.Remove(w.tasks.Front())
				}
				ws.fix(w)
			}
			need := randCaps(0.25)
			if got, want := ws.pick(need), refPick(ws.order, need); got != want {
				t.Fatalf("round %d step %d: pick(%v) = %v, want %v", round, step, need, got, want)
			}
		}
		if len(ws.groups) > len(live) {
			t.Fatalf("%d capability groups for %d workers", len(ws.groups), len(live))
		}
	}
}

// A worker's last heartbeat is kept for the status without its task list.
func TestLastHeartbeatKeptWithoutTasks(t *testing.T) {
	h := newHarness(t, nil)
	h.client("c")
	h.worker("w", 10)
	h.submit("c", "t1")
	w := h.s.workers.byID["w"]
	h.handle("w", &protocol.WorkerHeartbeat{QueueSize: 10, EchoSeq: w.echoSeq, Tasks: [][]byte{[]byte("t1")}, QueuedTasks: 1})
	if w.last.Tasks != nil || w.last.QueuedTasks != 1 {
		t.Fatalf("kept %d task ids, queued %d", len(w.last.Tasks), w.last.QueuedTasks)
	}
	if lost, unheld := h.s.Reconciled(); lost != 0 || unheld != 0 {
		t.Fatalf("reconciled %d lost, %d unheld", lost, unheld)
	}
}
