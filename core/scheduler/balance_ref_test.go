package scheduler

import (
	"math"

	"github.com/opengris/scaler/core/protocol"
)

// The balance policies as they were before they were rewritten for fleets
// (balance.go): simple, and quadratic in the tasks of a worker and the
// workers. Kept to pin that the rewrite gives the same advice
// (TestBalanceMatchesReference). Only the parts the rewrite changed are kept
// here: how many tasks to move (evenCounts, evenAdvice) and the average
// (capabilityAverage) were not rewritten and are shared with balance.go.

// refMovable lists w's tasks that a balance may move (Running), oldest first.
func refMovable(w *worker) []*task {
	out := make([]*task, 0, w.tasks.Len())
	for e := w.tasks.Front(); e != nil; e = e.Next() {
		if t := e.Value.(*task); t.state == protocol.TaskStateRunning {
			out = append(out, t)
		}
	}
	return out
}

// refBalanceEven is balanceEven choosing the tasks to move as it did before
// the rewrite (refNewestMovable).
func refBalanceEven(order []*worker) map[*worker][]*task {
	return evenAdvice(order, math.MaxInt, refNewestMovable) // the counts were not rewritten: shared
}

// refNewestMovable is newestMovable as it was: every Running task of w
// listed, the oldest dropped (taken as executing), the newest n kept.
func refNewestMovable(w *worker, n int) []*task {
	m := refMovable(w)
	if len(m) <= 1 {
		return nil
	}
	m = m[1:]
	if n < len(m) {
		m = m[len(m)-n:]
	}
	return m
}

// refBalanceCapability is reference §4.3: when some worker is idle, move tasks
// youngest first from the most loaded worker to compatible workers below the
// average until every worker is within one task of it.
func refBalanceCapability(order []*worker) map[*worker][]*task {
	avg, ok := capabilityAverage(order) // unchanged by the rewrite: shared
	if !ok {
		return nil
	}
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
		m := refMovable(most)
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
