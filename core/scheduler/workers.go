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

// movable lists w's tasks that a balance may move (Running), oldest first.
func movable(w *worker) []*task {
	out := make([]*task, 0, w.tasks.Len())
	for e := w.tasks.Front(); e != nil; e = e.Next() {
		if t := e.Value.(*task); t.state == protocol.TaskStateRunning {
			out = append(out, t)
		}
	}
	return out
}

// balanceEven is reference §4.2: every worker is assumed to run one task,
// the rest are queued; when some worker is idle, move the newest queued
// tasks of the workers above the mean.
func balanceEven(order []*worker) map[*worker][]*task {
	if len(order) == 0 {
		return nil
	}
	queued := make([]int, len(order))
	total, idle := 0, 0
	for i, w := range order {
		n := w.tasks.Len()
		if n == 0 {
			idle++
		}
		if n > 1 {
			queued[i] = n - 1
		}
		total += queued[i]
	}
	if total == 0 || idle == 0 {
		return nil
	}
	mean := (total + len(order) - 1) / len(order)
	count := make([]int, len(order))
	over := 0
	for i := range order {
		if c := queued[i] - mean; c > 0 {
			count[i] = c
			over += c
		}
	}
	minimal := min(idle, total)
	if over < minimal {
		remaining := minimal - over
		for i := range order {
			if remaining == 0 {
				break
			}
			if left := queued[i] - count[i]; left >= 1 {
				add := min(left, remaining)
				count[i] += add
				remaining -= add
			}
		}
	}
	advice := map[*worker][]*task{}
	for i, w := range order {
		if count[i] == 0 {
			continue
		}
		m := movable(w)
		if len(m) > 1 {
			m = m[1:] // the oldest one is taken as executing
		} else {
			continue
		}
		if count[i] < len(m) {
			m = m[len(m)-count[i]:]
		}
		advice[w] = m
	}
	return advice
}

// balanceCapability is reference §4.3: when some worker is idle, move tasks
// youngest first from the most loaded worker to compatible workers below the
// average until every worker is within one task of it.
func balanceCapability(order []*worker) map[*worker][]*task {
	idle := false
	total := 0
	for _, w := range order {
		if w.tasks.Len() == 0 {
			idle = true
		}
		total += w.tasks.Len()
	}
	if !idle || total == 0 {
		return nil
	}
	avg := float64(total) / float64(len(order))
	n := map[*worker]int{}
	for _, w := range order {
		n[w] = w.tasks.Len()
	}
	balanced := func(w *worker) bool {
		d := float64(n[w]) - avg
		return d > -1 && d < 1
	}
	var list []*worker
	for _, w := range order {
		if !balanced(w) {
			list = append(list, w)
		}
	}
	sortByLoad := func() {
		// insertion sort: the list is short and nearly sorted
		for i := 1; i < len(list); i++ {
			for j := i; j > 0 && (n[list[j]] < n[list[j-1]] || n[list[j]] == n[list[j-1]] && list[j].seq < list[j-1].seq); j-- {
				list[j], list[j-1] = list[j-1], list[j]
			}
		}
	}
	sortByLoad()
	advice := map[*worker][]*task{}
	moved := map[*task]bool{}
	unmovable := map[*task]bool{}
	for len(list) >= 2 {
		most := list[len(list)-1]
		list = list[:len(list)-1]
		if balanced(most) {
			break
		}
		m := movable(most)
		var recv *worker
		var pick *task
		for i := len(m) - 1; i >= 0 && recv == nil; i-- {
			t := m[i]
			if moved[t] || unmovable[t] {
				continue
			}
			for j, r := range list {
				if float64(n[r]) >= avg {
					break
				}
				if r.hasCaps(t.msg.Capabilities) {
					recv, pick = r, t
					list = append(list[:j], list[j+1:]...)
					break
				}
			}
			if recv == nil {
				unmovable[t] = true
			}
		}
		if recv == nil {
			continue
		}
		moved[pick] = true
		advice[most] = append(advice[most], pick)
		n[most]--
		n[recv]++
		if !balanced(most) {
			list = append(list, most)
		}
		if !balanced(recv) {
			list = append(list, recv)
		}
		sortByLoad()
	}
	return advice
}
