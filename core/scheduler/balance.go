package scheduler

import (
	"container/list"
	"slices"
	"sort"

	"github.com/opengris/scaler/core/protocol"
)

// The balance policies. Both run once per balance interval over every
// worker, so their cost is O(workers + tasks moved (+ tasks skipped)), never
// O(tasks held) per worker visited or per task moved: with 1,000 workers and
// 100,000 queued tasks the pass stays within milliseconds
// (BenchmarkFleetBalance; the earlier forms, kept in balance_ref_test.go
// to pin that the advice is unchanged, took 4.7 ms and 25 s).
//
// Each takes a limit on the tasks one advice moves. Acting on a move costs
// more than deciding it (a state change, a TaskCancel to the worker, later
// its confirmation and a new placement), and a pass holds up every other
// message: moving 90,000 tasks at once stalled the scheduler for 36 ms. With
// the limit a large imbalance is worked off over a few passes, each advice
// made afresh from the state the last one left (TestBalanceLimit).

// newestMovable is the newest n or fewer Running tasks of w, oldest first,
// never w's oldest Running task (taken as executing). It walks w's tasks
// from the newest and stops once it has n+1: the oldest of those is
// dropped, and when the walk reaches the oldest task the oldest collected is
// w's oldest Running task, dropped too.
func newestMovable(w *worker, n int) []*task {
	out := make([]*task, 0, min(n+1, w.tasks.Len()))
	for e := w.tasks.Back(); e != nil && len(out) <= n; e = e.Prev() {
		if t := e.Value.(*task); t.state == protocol.TaskStateRunning {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil
	}
	out = out[:len(out)-1]
	slices.Reverse(out)
	return out
}

// evenCounts is how many tasks balanceEven moves off each worker of order
// (by position); nil when it moves none.
func evenCounts(order []*worker) []int {
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
	return count
}

// balanceEven is reference §4.2: every worker is assumed to run one task,
// the rest are queued; when some worker is idle, move the newest queued
// tasks of the workers above the mean; at most limit in all, taken from
// the workers in registration order, so the next pass goes on where this one
// stopped.
func balanceEven(order []*worker, limit int) map[*worker][]*task {
	return evenAdvice(order, limit, newestMovable)
}

// evenAdvice is balanceEven with the choice of the tasks to move off a
// worker left to pick (w's newest n or fewer movable tasks, oldest first),
// so the reference form of that choice (balance_ref_test.go) shares the rest.
func evenAdvice(order []*worker, limit int, pick func(w *worker, n int) []*task) map[*worker][]*task {
	count := evenCounts(order)
	if count == nil {
		return nil
	}
	advice := map[*worker][]*task{}
	for i, w := range order {
		if limit == 0 {
			break
		}
		if count[i] == 0 {
			continue
		}
		if m := pick(w, min(count[i], limit)); len(m) > 0 {
			advice[w] = m
			limit -= len(m)
		}
	}
	return advice
}

// capabilityAverage is the mean number of tasks per worker of order; false
// when no worker is idle or there are no tasks, so balanceCapability moves
// none.
func capabilityAverage(order []*worker) (float64, bool) {
	idle := false
	total := 0
	for _, w := range order {
		if w.tasks.Len() == 0 {
			idle = true
		}
		total += w.tasks.Len()
	}
	if !idle || total == 0 {
		return 0, false
	}
	return float64(total) / float64(len(order)), true
}

// balanceCapability is reference §4.3: when some worker is idle, move tasks
// youngest first from the most loaded worker to compatible workers below the
// average until every worker is within one task of it, or limit tasks are
// moved (the first limit moves of the unlimited advice).
//
// The workers not within one task of the average are kept sorted by load
// (then registration order); each step takes the most loaded one and moves
// its youngest Running task that some worker below the average can take to
// the least loaded such worker. A task found movable nowhere is not tried
// again, so each worker's tasks are visited once, youngest first, through a
// cursor; the sorted list is kept by binary insertion.
func balanceCapability(order []*worker, limit int) map[*worker][]*task {
	avg, ok := capabilityAverage(order)
	if !ok {
		return nil
	}
	// Workers are named by their position in order from here on.
	n := make([]int, len(order))
	cursor := make([]*list.Element, len(order)) // next task to try, going older
	for i, w := range order {
		n[i] = w.tasks.Len()
		cursor[i] = w.tasks.Back()
	}
	balanced := func(i int) bool {
		d := float64(n[i]) - avg
		return d > -1 && d < 1
	}
	less := func(a, b int) bool {
		return n[a] < n[b] || n[a] == n[b] && order[a].seq < order[b].seq
	}
	var sorted []int
	for i := range order {
		if !balanced(i) {
			sorted = append(sorted, i)
		}
	}
	sort.Slice(sorted, func(a, b int) bool { return less(sorted[a], sorted[b]) })
	insert := func(i int) {
		j := sort.Search(len(sorted), func(k int) bool { return less(i, sorted[k]) })
		sorted = slices.Insert(sorted, j, i)
	}
	// receiver is the position in sorted of the least loaded worker below
	// the average that offers what t needs; -1 if none.
	receiver := func(t *task) int {
		for j, r := range sorted {
			if float64(n[r]) >= avg {
				break
			}
			if order[r].hasCaps(t.msg.Capabilities) {
				return j
			}
		}
		return -1
	}
	advice := map[*worker][]*task{}
	for moved := 0; len(sorted) >= 2 && moved < limit; {
		most := sorted[len(sorted)-1]
		sorted = sorted[:len(sorted)-1]
		if balanced(most) {
			break
		}
		var pick *task
		recv := -1
		e := cursor[most]
		for ; e != nil; e = e.Prev() {
			t := e.Value.(*task)
			if t.state != protocol.TaskStateRunning {
				continue
			}
			if recv = receiver(t); recv >= 0 {
				pick = t
				break
			}
		}
		if pick == nil {
			cursor[most] = nil // nothing of it can move; it leaves the list
			continue
		}
		cursor[most] = e.Prev()
		r := sorted[recv]
		sorted = slices.Delete(sorted, recv, recv+1)
		advice[order[most]] = append(advice[order[most]], pick)
		moved++
		n[most]--
		n[r]++
		if !balanced(most) {
			insert(most)
		}
		if !balanced(r) {
			insert(r)
		}
	}
	return advice
}

// adviceEntry is one move of an advice, by ids: the ids of workers and
// tasks are unique for the scheduler's life, so two advices are the same
// when their entries are.
type adviceEntry struct{ worker, task string }

// adviceEntries lists advice in worker registration order, each worker's
// tasks in advice order.
func adviceEntries(order []*worker, advice map[*worker][]*task) []adviceEntry {
	size := 0
	for _, ts := range advice {
		size += len(ts)
	}
	if size == 0 {
		return nil
	}
	out := make([]adviceEntry, 0, size)
	for _, w := range order {
		for _, t := range advice[w] {
			out = append(out, adviceEntry{w.id, t.id})
		}
	}
	return out
}
