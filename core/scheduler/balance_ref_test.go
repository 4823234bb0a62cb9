package scheduler

import "github.com/opengris/scaler/core/protocol"

// The balance policies as they were before they were rewritten for fleets
// (balance.go): simple, and quadratic in the tasks of a worker and the
// workers. Kept to pin that the rewrite gives the same advice
// (TestBalanceMatchesReference). Only the parts the rewrite changed are kept
// here: how many tasks to move (evenCounts) and the average
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

// refBalanceEven is reference §4.2: every worker is assumed to run one task,
// the rest are queued; when some worker is idle, move the newest queued
// tasks of the workers above the mean.
func refBalanceEven(order []*worker) map[*worker][]*task {
	count := evenCounts(order) // unchanged by the rewrite: shared
	if count == nil {
		return nil
	}
	advice := map[*worker][]*task{}
	for i, w := range order {
		if count[i] == 0 {
			continue
		}
		m := refMovable(w)
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
