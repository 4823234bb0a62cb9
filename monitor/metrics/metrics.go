// Package metrics exposes a scheduler's status feed (monitor/feed) in the
// Prometheus text format. Everything is read from the feed's State at
// scrape time by a custom Collector, so a scrape costs nothing between
// scrapes and always shows the newest status. docs/metrics.md lists every
// metric.
package metrics

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/monitor/feed"
)

// Bounds on the series one scrape can have: the status is network input.
const (
	maxWorkers      = 4096
	maxMessageTypes = 256
	maxLabelLen     = 256
)

// Handler serves m's state at every request in the Prometheus text format
// (mount it at /metrics).
func Handler(m *feed.Monitor) http.Handler {
	return handler(m.State, time.Now)
}

func handler(state func() feed.State, now func() time.Time) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{state: state, now: now})
	// ContinueOnError: one bad series (a hostile label) must not hide the
	// others.
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("scaler_"+name, help, labels, nil)
}

var (
	dFeedUp      = desc("feed_up", "1 while the scheduler's status feed is live, 0 while nothing arrived within the timeout (scheduler down or not started).")
	dFeedAge     = desc("feed_last_update_age_seconds", "Seconds since the last message of the status feed arrived (absent before the first one).")
	dFeedRestart = desc("feed_restarts_total", "Times the status feed came back after stopping, or a restarted scheduler was seen.")
	dFeedMissed  = desc("feed_missed_messages_total", "Monitor messages this exporter did not receive although the scheduler published them (exact, from the status).")

	dDropped   = desc("monitor_dropped_messages_total", "Monitor messages the scheduler refused because a subscriber's queue was full, since the scheduler started (a lower bound of what slow subscribers missed).")
	dTasks     = desc("tasks", "Tasks in each unfinished state now.", "state")
	dFinished  = desc("tasks_finished_total", "Tasks finished since the scheduler started, by terminal state.", "outcome")
	dQueued    = desc("tasks_queued", "Tasks waiting in the scheduler for a worker (state Inactive).")
	dWorkers   = desc("workers", "Connected workers.")
	dClients   = desc("clients", "Clients with at least one unfinished task.")
	dObjects   = desc("objects", "Objects the scheduler tracks.")
	dSchedCPU  = desc("scheduler_cpu_ratio", "Scheduler process CPU use, in cores (1 = one full core).")
	dSchedRSS  = desc("scheduler_rss_bytes", "Scheduler process resident set size.")
	dSchedFree = desc("scheduler_host_available_memory_bytes", "Memory available on the scheduler's host.")
	dMsgsIn    = desc("scheduler_messages_received_total", "Messages the scheduler received, by type, since it started.", "type")
	dMsgsOut   = desc("scheduler_messages_sent_total", "Messages the scheduler sent, by type, since it started.", "type")

	dWQueued    = desc("worker_queued_tasks", "Tasks queued on the worker (its last heartbeat).", "worker")
	dWFree      = desc("worker_free_slots", "Free task slots of the worker: queue size minus tasks assigned.", "worker")
	dWSent      = desc("worker_sent_tasks", "Tasks the scheduler has assigned to the worker.", "worker")
	dWSuspended = desc("worker_suspended_processors", "Suspended processors of the worker.", "worker")
	dWAgentRSS  = desc("worker_agent_rss_bytes", "Resident set size of the worker's agent process.", "worker")
	dWAgentCPU  = desc("worker_agent_cpu_ratio", "CPU use of the worker's agent process, in cores.", "worker")
	dWProcRSS   = desc("worker_processors_rss_bytes", "Resident set size of the worker's processors, summed.", "worker")
	dWProcCPU   = desc("worker_processors_cpu_ratio", "CPU use of the worker's processors, summed, in cores.", "worker")
	dWProcs     = desc("worker_processors", "Processors of the worker.", "worker")
	dWFreeMem   = desc("worker_host_available_memory_bytes", "Memory available on the worker's host.", "worker")
	dWLag       = desc("worker_heartbeat_latency_seconds", "Heartbeat round-trip latency the worker reported.", "worker")
	dWLast      = desc("worker_last_heartbeat_age_seconds", "Seconds since the scheduler heard from the worker (at most 255).", "worker")

	allDescs = []*prometheus.Desc{dFeedUp, dFeedAge, dFeedRestart, dFeedMissed, dDropped, dTasks, dFinished, dQueued,
		dWorkers, dClients, dObjects, dSchedCPU, dSchedRSS, dSchedFree, dMsgsIn, dMsgsOut,
		dWQueued, dWFree, dWSent, dWSuspended, dWAgentRSS, dWAgentCPU, dWProcRSS, dWProcCPU, dWProcs, dWFreeMem, dWLag, dWLast}
)

type collector struct {
	state func() feed.State
	now   func() time.Time
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// label makes a label value from network bytes: valid UTF-8, bounded.
func label(b []byte) string {
	if len(b) > maxLabelLen {
		b = b[:maxLabelLen]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.state()
	emit := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		if m, err := prometheus.NewConstMetric(d, t, v, labels...); err == nil {
			ch <- m
		}
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) { emit(d, prometheus.GaugeValue, v, labels...) }
	counter := func(d *prometheus.Desc, v float64, labels ...string) { emit(d, prometheus.CounterValue, v, labels...) }

	up := 0.0
	if !s.Stale {
		up = 1
	}
	gauge(dFeedUp, up)
	if !s.Updated.IsZero() {
		gauge(dFeedAge, c.now().Sub(s.Updated).Seconds())
	}
	counter(dFeedRestart, float64(s.Restarts))
	counter(dFeedMissed, float64(s.Missed))
	// The scheduler's own numbers only while they are current: a stopped
	// feed shows feed_up 0 and no frozen values.
	st := s.Status
	if st == nil || s.Stale {
		return
	}
	counter(dDropped, float64(st.MonitorDropped))
	// The scheduler's counts: current for unfinished states, cumulative
	// since its start for terminal ones (core/scheduler, docs/protocol.md).
	// The finished counter comes from there and not from task events, so
	// it is exact even when the feed dropped events.
	var counts [protocol.NumTaskStates]uint64
	var seen [protocol.NumTaskStates]bool
	for _, tc := range st.TaskStates {
		if tc.State.Valid() {
			counts[tc.State], seen[tc.State] = tc.Count, true
		}
	}
	for i := range counts {
		ts := protocol.TaskState(i)
		if !seen[i] || ts == protocol.TaskStateBalanceCanceled { // reserved, never used
			continue
		}
		if ts.Terminal() {
			counter(dFinished, float64(counts[i]), ts.String())
		} else {
			gauge(dTasks, float64(counts[i]), ts.String())
		}
	}
	gauge(dQueued, float64(counts[protocol.TaskStateInactive]))
	gauge(dWorkers, float64(len(st.Workers)))
	gauge(dClients, float64(len(st.Clients)))
	gauge(dObjects, float64(st.ObjectCount))
	gauge(dSchedCPU, float64(st.Scheduler.CPU)/1000)
	gauge(dSchedRSS, float64(st.Scheduler.RSS))
	gauge(dSchedFree, float64(st.RSSFree))
	messages := func(d *prometheus.Desc, counts []protocol.MessageCount) {
		done := map[string]bool{}
		for i, mc := range counts {
			name := label([]byte(mc.Name))
			if i >= maxMessageTypes || done[name] {
				continue
			}
			done[name] = true
			counter(d, float64(mc.Count), name)
		}
	}
	messages(dMsgsIn, st.Binder.Received)
	messages(dMsgsOut, st.Binder.Sent)

	done := map[string]bool{}
	for i, w := range st.Workers {
		id := label(w.WorkerID)
		if i >= maxWorkers || done[id] {
			continue
		}
		done[id] = true
		var procRSS, procCPU float64
		for _, p := range w.Processors {
			procRSS += float64(p.Resource.RSS)
			procCPU += float64(p.Resource.CPU) / 1000
		}
		gauge(dWQueued, float64(w.Queued), id)
		gauge(dWFree, float64(w.Free), id)
		gauge(dWSent, float64(w.Sent), id)
		gauge(dWSuspended, float64(w.Suspended), id)
		gauge(dWAgentRSS, float64(w.Agent.RSS), id)
		gauge(dWAgentCPU, float64(w.Agent.CPU)/1000, id)
		gauge(dWProcRSS, procRSS, id)
		gauge(dWProcCPU, procCPU, id)
		gauge(dWProcs, float64(len(w.Processors)), id)
		gauge(dWFreeMem, float64(w.RSSFree), id)
		gauge(dWLag, float64(w.LagUS)/1e6, id)
		gauge(dWLast, float64(w.LastS), id)
	}
}
