// Package worker is the worker role: a Go agent that connects to the
// scheduler, queues the tasks it is given and runs them, one at a time, in
// Python processor processes it starts and supervises; and the cluster
// supervisor that starts N such workers as separate processes.
package worker

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/internal/identity"
)

// Config configures one worker agent. It is JSON-encodable so that the
// cluster can hand it to the worker processes it starts.
type Config struct {
	// WorkerID is the worker's identity with the scheduler; empty means
	// NewWorkerID(Name).
	WorkerID string
	// Slot is the id of its slot's first worker when a supervisor started
	// this one in place of a worker that died (empty for the first): the
	// heartbeat's Slot, so that an adapter's group keeps counting it.
	Slot string
	// Name is the readable part of the worker id (default: short host name).
	Name                 string
	SchedulerAddress     string
	ObjectStorageAddress string // empty: learnt from the scheduler's heartbeat echo
	Capabilities         map[string]int64
	QueueSize            int
	HeartbeatInterval    time.Duration
	TaskTimeout          time.Duration // 0: tasks never time out
	DeathTimeout         time.Duration
	GCInterval           time.Duration
	TrimMemoryThreshold  int64
	HardSuspend          bool
	Preload              string
	Python               string // interpreter that runs processors
	LoggingLevel         string
	LoggingPaths         []string // for the worker process's own logger
	// IOThreads is the zmq io threads of the worker process (0: one);
	// commands applies it before the worker's first socket.
	IOThreads int
	// KillDelay is how long a processor gets between SIGTERM and SIGKILL
	// (default 3s).
	KillDelay time.Duration
	// UpstreamAddress is the scheduler's own address when SchedulerAddress
	// is a relay's (RunRelay): a wildcard object storage host that the
	// scheduler announces is resolved against it.
	UpstreamAddress string

	// inProcess: the agent runs in a process it shares (RunInProcess), so
	// its heartbeat reports its own thread's CPU, not the process's.
	inProcess bool
}

// FromCluster builds the configuration of every worker of a cluster.
// python is the resolved interpreter (the commands package applies the
// SCALER_PYTHON environment variable).
func FromCluster(c *config.Cluster, python string) ([]Config, error) {
	template, err := FromSettings(c.WorkerSettings(), python)
	if err != nil {
		return nil, err
	}
	names := config.SplitNames(c.WorkerNames)
	if len(names) > 0 && len(names) != c.NumOfWorkers {
		return nil, fmt.Errorf("worker_names: %d names for %d workers", len(names), c.NumOfWorkers)
	}
	ids := config.SplitNames(c.WorkerIDs)
	if len(ids) > 0 && len(ids) != c.NumOfWorkers {
		return nil, fmt.Errorf("worker_ids: %d ids for %d workers", len(ids), c.NumOfWorkers)
	}
	out := make([]Config, c.NumOfWorkers)
	for i := range out {
		name := ShortHostname()
		if len(names) > 0 {
			name = names[i]
		}
		id := NewWorkerID(name)
		if len(ids) > 0 {
			id = ids[i] // an adapter announced these ids to the scheduler already
		}
		out[i] = template
		out[i].WorkerID = id
		out[i].Name = name
		out[i].IOThreads = c.IOThreads
	}
	return out, nil
}

// FromSettings is the one mapping from a section's worker options (in its
// units: seconds, unparsed capabilities) to a worker's configuration; the
// cluster and the adapters fill in the identity and the rest.
func FromSettings(s config.WorkerSettings, python string) (Config, error) {
	caps, err := config.ParseCapabilities(s.Capabilities)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", s.CapabilitiesKey, err)
	}
	seconds := func(n int) time.Duration { return time.Duration(n) * time.Second }
	return Config{
		SchedulerAddress:     s.SchedulerAddress,
		ObjectStorageAddress: s.ObjectStorageAddress,
		Capabilities:         caps,
		QueueSize:            s.QueueSize,
		HeartbeatInterval:    seconds(s.HeartbeatSeconds),
		TaskTimeout:          seconds(s.TaskTimeoutSeconds),
		DeathTimeout:         seconds(s.DeathTimeoutSeconds),
		GCInterval:           seconds(s.GCIntervalSeconds),
		TrimMemoryThreshold:  s.TrimMemoryThreshold,
		HardSuspend:          s.HardSuspend,
		Preload:              s.Preload,
		Python:               python,
		LoggingLevel:         s.Logging.LoggingLevel,
		LoggingPaths:         s.Logging.LoggingPaths,
	}, nil
}

// NewWorkerID returns "<pid>|Worker|<name>|<32 hex digits>".
func NewWorkerID(name string) string { return identity.New("Worker", name) }

// ShortHostname is the host name up to its first dot.
func ShortHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	short, _, _ := strings.Cut(h, ".")
	return short
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = ShortHostname()
	}
	if c.WorkerID == "" {
		c.WorkerID = NewWorkerID(c.Name)
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 1000
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 2 * time.Second
	}
	if c.DeathTimeout <= 0 {
		c.DeathTimeout = 300 * time.Second
	}
	if c.GCInterval <= 0 {
		c.GCInterval = 30 * time.Second
	}
	if c.Python == "" {
		c.Python = "python3"
	}
	if c.KillDelay <= 0 {
		c.KillDelay = 3 * time.Second
	}
	if c.LoggingLevel == "" {
		c.LoggingLevel = "INFO"
	}
}
