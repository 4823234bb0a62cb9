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
	// heapIdx is w's position in the free heaps (workerSet.free, then
	// its capability group's), -1 when full.
	heapIdx [2]int
	group   *capGroup // the workers with w's capability names; nil without capabilities
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
	// slot is the id of the worker w was started in place of (its
	// registering heartbeat's Slot; "" for a slot's first worker): w
	// stands in for it in its worker group (groupMember).
	slot string
}

// keepLast keeps heartbeat m for the status and the scaling policy, without
// its task list: reconcile is done with it, and a fleet's lists (1,000
// workers listing up to their queue size each) would stay alive until the
// next heartbeat for nothing.
func (w *worker) keepLast(m *protocol.WorkerHeartbeat) {
	w.last = *m
	w.last.Tasks = nil
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
func (w *worker) hasCaps(need map[string]int64) bool { return offers(w.caps, need) }

// offers reports whether caps has every capability name in need.
func offers(caps, need map[string]int64) bool {
	for name := range need {
		if _, ok := caps[name]; !ok {
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

// freeHeap holds workers with at least one free slot, least loaded on top.
// slot says which of a worker's heapIdx entries is its position here.
type freeHeap struct {
	ws   []*worker
	slot int
}

func (h *freeHeap) Len() int           { return len(h.ws) }
func (h *freeHeap) Less(i, j int) bool { return lessLoaded(h.ws[i], h.ws[j]) }
func (h *freeHeap) Swap(i, j int) {
	h.ws[i], h.ws[j] = h.ws[j], h.ws[i]
	h.ws[i].heapIdx[h.slot] = i
	h.ws[j].heapIdx[h.slot] = j
}
func (h *freeHeap) Push(x any) {
	w := x.(*worker)
	w.heapIdx[h.slot] = len(h.ws)
	h.ws = append(h.ws, w)
}
func (h *freeHeap) Pop() any {
	old := h.ws
	w := old[len(old)-1]
	old[len(old)-1] = nil
	h.ws = old[:len(old)-1]
	w.heapIdx[h.slot] = -1
	return w
}

// fix puts w where its load says: in the heap when it has a free slot, at
// its place by load.
func (h *freeHeap) fix(w *worker) {
	i := w.heapIdx[h.slot]
	switch {
	case w.free() > 0 && i < 0:
		heap.Push(h, w)
	case w.free() <= 0 && i >= 0:
		heap.Remove(h, i)
	case i >= 0:
		heap.Fix(h, i)
	}
}

func (h *freeHeap) remove(w *worker) {
	if i := w.heapIdx[h.slot]; i >= 0 {
		heap.Remove(h, i)
	}
}

// capGroup is the registered workers that offer the same capability names
// (values do not matter for placement), those with a free slot in a heap of
// their own. A task that needs capabilities is placed on the least loaded
// of the heap tops of the groups that offer them all: O(groups), not
// O(workers), per task.
type capGroup struct {
	key     string
	caps    map[string]int64 // the names (of the first member)
	free    freeHeap
	members int
}

// maxFitsCached bounds the cache of groups per needed capability set: the
// sets come from clients' tasks, so they are not bounded by the workers.
const maxFitsCached = 1024

// workerSet is every registered worker with the placement indexes.
type workerSet struct {
	byID map[string]*worker
	// bySlot is the latest registered worker standing in for each slot id
	// (worker.slot): one entry per worker at the most.
	bySlot  map[string]*worker
	order   []*worker // registration order
	free    freeHeap  // every worker with a free slot
	groups  map[string]*capGroup
	fits    map[string][]*capGroup // capKey(need) -> groups offering need; dropped when groups change
	nextSeq uint64
}

func newWorkerSet() workerSet {
	return workerSet{byID: map[string]*worker{}, bySlot: map[string]*worker{}, free: freeHeap{slot: 0}, groups: map[string]*capGroup{},
		fits: map[string][]*capGroup{}}
}

func (ws *workerSet) add(w *worker) {
	ws.nextSeq++
	w.seq = ws.nextSeq
	w.heapIdx = [2]int{-1, -1}
	ws.byID[w.id] = w
	if w.slot != "" {
		ws.bySlot[w.slot] = w
	}
	ws.order = append(ws.order, w)
	if len(w.caps) > 0 {
		key := capKey(w.caps)
		g := ws.groups[key]
		if g == nil {
			g = &capGroup{key: key, caps: w.caps, free: freeHeap{slot: 1}}
			ws.groups[key] = g
			clear(ws.fits)
		}
		g.members++
		w.group = g
	}
	ws.fix(w)
}

func (ws *workerSet) remove(w *worker) {
	delete(ws.byID, w.id)
	if w.slot != "" && ws.bySlot[w.slot] == w {
		delete(ws.bySlot, w.slot)
	}
	for i, o := range ws.order {
		if o == w {
			ws.order = append(ws.order[:i], ws.order[i+1:]...)
			break
		}
	}
	ws.free.remove(w)
	if g := w.group; g != nil {
		g.free.remove(w)
		if g.members--; g.members == 0 {
			delete(ws.groups, g.key)
			clear(ws.fits)
		}
	}
}

// fix restores the heaps after w's load changed.
func (ws *workerSet) fix(w *worker) {
	ws.free.fix(w)
	if w.group != nil {
		w.group.free.fix(w)
	}
}

// hasFree reports whether some worker has a free slot.
func (ws *workerSet) hasFree() bool { return len(ws.free.ws) > 0 }

// pick returns the least loaded worker with a free slot that offers every
// capability in need, or nil. Without capabilities it is the free heap's
// top; with them the least loaded of the tops of the capability groups
// that offer them all.
func (ws *workerSet) pick(need map[string]int64) *worker {
	if len(need) == 0 {
		return ws.pickKeyed(need, "")
	}
	return ws.pickKeyed(need, capKey(need))
}

// pickKeyed is pick for callers that know capKey(need) already (a task's
// wait group key): making it allocates for two or more capabilities.
func (ws *workerSet) pickKeyed(need map[string]int64, key string) *worker {
	if len(need) == 0 {
		if len(ws.free.ws) == 0 {
			return nil
		}
		return ws.free.ws[0]
	}
	if len(ws.free.ws) == 0 {
		return nil
	}
	var best *worker
	for _, g := range ws.fitting(need, key) {
		if len(g.free.ws) > 0 {
			if w := g.free.ws[0]; best == nil || lessLoaded(w, best) {
				best = w
			}
		}
	}
	return best
}

// fitting lists the capability groups that offer every name in need
// (key is capKey(need)).
func (ws *workerSet) fitting(need map[string]int64, key string) []*capGroup {
	if gs, ok := ws.fits[key]; ok {
		return gs
	}
	var gs []*capGroup
	for _, g := range ws.groups {
		if offers(g.caps, need) {
			gs = append(gs, g)
		}
	}
	if len(ws.fits) >= maxFitsCached {
		clear(ws.fits)
	}
	ws.fits[key] = gs
	return gs
}
