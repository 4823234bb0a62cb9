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
// shrinkTables re-makes, since it was made.
type tablePeaks struct {
	tasks, taskToGraph, objects int
}

// shrinkTables applies shrinkDue to the tables that grow with the work
// and empty after it: tasks (a map's worth), taskToGraph (every node of a
// graph, 1,000,000 for the largest) and objects (the arguments of a map),
// with their peaks as seen at ticks. Called from Tick. The per-client sets
// (clientTasks, clientObjects) are dropped whole once empty, which is what
// a client's burst ends in.
func (s *Scheduler) shrinkTables() {
	s.tasks = shrunk(s.tasks, &s.peaks.tasks)
	s.taskToGraph = shrunk(s.taskToGraph, &s.peaks.taskToGraph)
	s.objects = shrunk(s.objects, &s.peaks.objects)
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
