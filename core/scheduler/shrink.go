package scheduler

// Go maps keep the tables of their largest size for good: deleting entries
// frees none of them. The task table grows to the most tasks held at once
// (a client's whole map, say 100,000) and would keep that size while the
// scheduler idles, and a table that keeps taking new keys as it loses old
// ones may grow further. So once it has shrunk far below its peak it is made
// again. Measured (bench/soak.py, maps of 100,000 tasks, live heap after the
// idle release): 3.8, 4.1, 4.3 MiB after the first three maps without this.
const (
	shrinkMinPeak = 4096 // smaller tables are not worth a copy
	shrinkFactor  = 16   // re-make when at most peak/shrinkFactor entries are left
)

// shrinkDue reports whether a map that held peak entries and now holds n
// should be made again.
func shrinkDue(n, peak int) bool { return peak >= shrinkMinPeak && n <= peak/shrinkFactor }

// tablePeaks are the most entries seen at a tick in each table that
// shrinkTables re-makes, since it was made; for the per-client sets, by
// client.
type tablePeaks struct {
	tasks, taskToGraph, objects int
	clientTasks, clientObjects  map[string]int
}

// shrinkTables applies shrinkDue to the tables that grow with the work
// and empty after it: tasks (a map's worth), taskToGraph (every node of a
// graph, 1,000,000 for the largest), objects (the arguments and results of
// a map), and each client's sets of tasks and objects, with their peaks as
// seen at ticks. A client's sets are dropped whole once empty, but a client
// that lives on keeps a few objects (its function) or a task that runs for
// long, and its set would keep the size of its largest map. Called from
// Tick; O(clients).
func (s *Scheduler) shrinkTables() {
	s.tasks = shrunk(s.tasks, &s.peaks.tasks)
	s.taskToGraph = shrunk(s.taskToGraph, &s.peaks.taskToGraph)
	s.objects = shrunk(s.objects, &s.peaks.objects)
	s.peaks.clientTasks = shrinkSets(s.clientTasks, s.peaks.clientTasks)
	s.peaks.clientObjects = shrinkSets(s.clientObjects, s.peaks.clientObjects)
}

// shrinkSets applies shrunk to every set of sets, with the peaks by key in
// peaks, and returns the peaks of the sets still there (only of those large
// enough to be worth watching: shrinkMinPeak and up).
func shrinkSets(sets map[string]map[string]struct{}, peaks map[string]int) map[string]int {
	for k := range peaks {
		if _, ok := sets[k]; !ok {
			delete(peaks, k) // the set is gone, and its peak with it
		}
	}
	for k, set := range sets {
		p := peaks[k]
		if len(set) < shrinkMinPeak && p == 0 {
			continue
		}
		if peaks == nil {
			peaks = map[string]int{}
		}
		sets[k] = shrunk(set, &p)
		peaks[k] = p
	}
	return peaks
}

// shrunk is m, or a copy of it when shrinkDue; *peak is updated.
func shrunk[K comparable, V any](m map[K]V, peak *int) map[K]V {
	*peak = max(*peak, len(m))
	if !shrinkDue(len(m), *peak) {
		return m
	}
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	*peak = len(c)
	return c
}
