package scheduler

import (
	"container/heap"
	"container/list"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// worker is a registered worker and the tasks assigned to it, oldest first.
type worker struct {
	id        string
	idb       []byte
	seq       uint64 // registration order
	queueSize int
	caps      map[string]int64
	tasks     list.List // *task, in assignment order
	last      protocol.WorkerHeartbeat
	lastSeen  time.Time
	assigned  uint64 // tasks ever assigned to it: the scaling policy sees a task that came and went between two checks
	heapIdx   int    // position in freeHeap, -1 when full
	// echoSeq is the Seq of the last WorkerHeartbeatEcho sent to it. It
	// starts at the EchoSeq of the registering heartbeat, so that a worker
	// that registers again (or with a new scheduler) keeps counting up.
	echoSeq uint64
	// ackedSeq is the highest echo Seq w's heartbeats acknowledged; only a
	// heartbeat that advances it keeps w alive (onWorkerHeartbeat).
	ackedSeq uint64
	// owners counts w's tasks per owning client: a worker may announce
	// result objects only for the clients whose tasks it holds.
	owners map[string]int
}

func (w *worker) free() int { return w.queueSize - w.tasks.Len() }

func (w *worker) addOwner(owner string) {
	if w.owners == nil {
		w.owners = map[string]int{}
	}
	w.owners[owner]++
}

func (w *worker) dropOwner(owner string) {
	if n := w.owners[owner]; n > 1 {
		w.owners[owner] = n - 1
	} else {
		delete(w.owners, owner)
	}
}

// hasCaps reports whether w offers every capability name in need.
func (w *worker) hasCaps(need map[string]int64) bool {
	for name := range need {
		if _, ok := w.caps[name]; !ok {
			return false
		}
	}
	return true
}

// lessLoaded orders workers by assigned tasks, then id bytes.
func lessLoaded(a, b *worker) bool {
	if a.tasks.Len() != b.tasks.Len() {
		return a.tasks.Len() < b.tasks.Len()
	}
	return a.id < b.id
}

// freeHeap holds the workers with at least one free slot, least loaded on top.
type freeHeap []*worker

func (h freeHeap) Len() int           { return len(h) }
func (h freeHeap) Less(i, j int) bool { return lessLoaded(h[i], h[j]) }
func (h freeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *freeHeap) Push(x any) {
	w := x.(*worker)
	w.heapIdx = len(*h)
	*h = append(*h, w)
}
func (h *freeHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.heapIdx = -1
	return w
}

// workerSet is every registered worker with the placement indexes.
type workerSet struct {
	byID    map[string]*worker
	order   []*worker // registration order
	free    freeHeap
	byCap   map[string]map[*worker]struct{}
	nextSeq uint64
}

func newWorkerSet() workerSet {
	return workerSet{byID: map[string]*worker{}, byCap: map[string]map[*worker]struct{}{}}
}

func (ws *workerSet) add(w *worker) {
	ws.nextSeq++
	w.seq = ws.nextSeq
	w.heapIdx = -1
	ws.byID[w.id] = w
	ws.order = append(ws.order, w)
	for name := range w.caps {
		set := ws.byCap[name]
		if set == nil {
			set = map[*worker]struct{}{}
			ws.byCap[name] = set
		}
		set[w] = struct{}{}
	}
	ws.fix(w)
}

func (ws *workerSet) remove(w *worker) {
	delete(ws.byID, w.id)
	for i, o := range ws.order {
		if o == w {
			ws.order = append(ws.order[:i], ws.order[i+1:]...)
			break
		}
	}
	for name := range w.caps {
		if set := ws.byCap[name]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(ws.byCap, name)
			}
		}
	}
	if w.heapIdx >= 0 {
		heap.Remove(&ws.free, w.heapIdx)
	}
}

// fix restores the heap after w's load changed.
func (ws *workerSet) fix(w *worker) {
	switch {
	case w.free() > 0 && w.heapIdx < 0:
		heap.Push(&ws.free, w)
	case w.free() <= 0 && w.heapIdx >= 0:
		heap.Remove(&ws.free, w.heapIdx)
	case w.heapIdx >= 0:
		heap.Fix(&ws.free, w.heapIdx)
	}
}

// pick returns the least loaded worker with a free slot that offers every
// capability in need, or nil. Without capabilities it is the heap's top;
// with them it scans the workers of the rarest required capability.
func (ws *workerSet) pick(need map[string]int64) *worker {
	if len(need) == 0 {
		if len(ws.free) == 0 {
			return nil
		}
		return ws.free[0]
	}
	var cands map[*worker]struct{}
	for name := range need {
		set := ws.byCap[name]
		if len(set) == 0 {
			return nil
		}
		if cands == nil || len(set) < len(cands) {
			cands = set
		}
	}
	var best *worker
	for w := range cands {
		if w.free() > 0 && w.hasCaps(need) && (best == nil || lessLoaded(w, best)) {
			best = w
		}
	}
	return best
}
