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

// shrinkTables applies shrinkDue to the task table, with its peak as seen
// at ticks. Called from Tick.
func (s *Scheduler) shrinkTables() {
	s.tasksPeak = max(s.tasksPeak, len(s.tasks))
	if !shrinkDue(len(s.tasks), s.tasksPeak) {
		return
	}
	m := make(map[string]*task, len(s.tasks))
	for id, t := range s.tasks {
		m[id] = t
	}
	s.tasks = m
	s.tasksPeak = len(m)
}
