package scheduler

import (
	"crypto/md5"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/protocol"
)

// Policy selects how tasks are placed and balanced.
type Policy uint8

const (
	// PolicyEven places a task on the least loaded suitable worker and
	// balances by queue length (reference §4.2).
	PolicyEven Policy = iota
	// PolicyCapability places the same way and balances by moving the
	// youngest tasks to compatible workers below the average (§4.3).
	PolicyCapability
)

// Config is what the pure scheduler needs to know.
type Config struct {
	Policy              Policy
	MaxTasksWaiting     int // -1: unlimited
	ClientTimeout       time.Duration
	WorkerTimeout       time.Duration
	BalanceInterval     time.Duration
	BalanceTriggerTimes int
	Protected           bool
	// ObjectRetention is how long the objects of a departed client
	// (disconnected or timed out) are kept before they are freed; a client
	// that heartbeats again with the same id within it keeps them. 0 frees
	// them at once.
	ObjectRetention time.Duration
	// Scaling enables the scaling controller (an adapter webhook URL is
	// configured): see scaling.go.
	Scaling bool
	// ScalingInterval is how often the scaling policy runs (1 s).
	ScalingInterval time.Duration
	// ScalingStartTimeout is how long a started group's workers may take
	// to connect before another group may be requested (60 s).
	ScalingStartTimeout time.Duration
	// ScalingRetry is the pause after a failed webhook call (5 s).
	ScalingRetry time.Duration
	// ScalingIdle is how long a group's workers must have had no task
	// before the group is shut down for being idle (30 s), so that a load
	// hovering around the worker count does not start and stop workers
	// every few seconds.
	ScalingIdle time.Duration
	// ObjectStorage is announced in heartbeat echoes.
	ObjectStorage protocol.Address
	// ObjectFlushInterval is the least time between two object deletion
	// batches (1 s).
	ObjectFlushInterval time.Duration
	// MaxDeleteBatch bounds the ids of one ObjectInstruction{delete}.
	MaxDeleteBatch int
	// MaxTasksPerClient bounds a client's unfinished tasks and graphs (and
	// the nodes of one graph); MaxObjectsPerClient the objects it may
	// announce. A peer cannot grow the scheduler's tables without bound;
	// real clients stay far below (defaults 4,194,304 and 1,048,576).
	MaxTasksPerClient   int
	MaxObjectsPerClient int
	// AnnounceGrace is how long a task naming objects its client has not
	// announced waits for them (parked.go; 10 s); MaxParkedPerClient
	// bounds such tasks per client (4096).
	AnnounceGrace      time.Duration
	MaxParkedPerClient int
	// DropLogInterval is the least time between two log lines about
	// messages dropped or refused for the same reason (1 s).
	DropLogInterval time.Duration
	// NewObjectID makes a fresh object id owned by client (graph failure
	// duplicates). nil: md5(client) followed by 16 random bytes.
	NewObjectID func(client []byte) []byte
	// InstanceID is announced in heartbeat echoes so that peers notice a
	// restarted scheduler (docs/protocol.md §7.2). nil: 16 random bytes, so
	// every scheduler process has its own.
	InstanceID []byte
}

// FromConfig converts the [scheduler] section. storage is the announced
// object storage address.
func FromConfig(c *config.Scheduler, storage protocol.Address) (Config, error) {
	cfg := Config{
		MaxTasksWaiting:     c.MaxNumberOfTasksWaiting,
		ClientTimeout:       time.Duration(c.ClientTimeoutSeconds) * time.Second,
		WorkerTimeout:       time.Duration(c.WorkerTimeoutSeconds) * time.Second,
		BalanceInterval:     time.Duration(c.LoadBalanceSeconds) * time.Second,
		BalanceTriggerTimes: c.LoadBalanceTriggerTimes,
		Protected:           c.Protected,
		ObjectRetention:     time.Duration(c.ObjectRetentionSeconds) * time.Second,
		ObjectStorage:       storage,
		Scaling:             c.AdapterWebhookURL != "",
		ScalingIdle:         time.Duration(c.AdapterIdleSeconds) * time.Second,
	}
	switch c.AllocatePolicy {
	case "", "even":
		cfg.Policy = PolicyEven
	case "capability":
		cfg.Policy = PolicyCapability
	default:
		return cfg, fmt.Errorf("scheduler: unknown allocate policy %q (want even or capability)", c.AllocatePolicy)
	}
	return cfg, nil
}

func (c *Config) fill() {
	if c.ClientTimeout <= 0 {
		c.ClientTimeout = 60 * time.Second
	}
	if c.WorkerTimeout <= 0 {
		c.WorkerTimeout = 60 * time.Second
	}
	if c.BalanceInterval <= 0 {
		c.BalanceInterval = time.Second
	}
	if c.BalanceTriggerTimes <= 0 {
		c.BalanceTriggerTimes = 2
	}
	if c.ObjectFlushInterval <= 0 {
		c.ObjectFlushInterval = time.Second
	}
	if c.AnnounceGrace <= 0 {
		c.AnnounceGrace = 10 * time.Second
	}
	if c.MaxParkedPerClient <= 0 {
		c.MaxParkedPerClient = 4096
	}
	if c.MaxTasksPerClient <= 0 {
		c.MaxTasksPerClient = 1 << 22
	}
	if c.MaxObjectsPerClient <= 0 {
		c.MaxObjectsPerClient = 1 << 20
	}
	if c.DropLogInterval <= 0 {
		c.DropLogInterval = time.Second
	}
	if c.MaxDeleteBatch <= 0 {
		c.MaxDeleteBatch = 4096
	}
	if c.ScalingInterval <= 0 {
		c.ScalingInterval = time.Second
	}
	if c.ScalingStartTimeout <= 0 {
		c.ScalingStartTimeout = time.Minute
	}
	if c.ScalingRetry <= 0 {
		c.ScalingRetry = 5 * time.Second
	}
	if c.ScalingIdle <= 0 {
		c.ScalingIdle = 30 * time.Second
	}
	if c.NewObjectID == nil {
		c.NewObjectID = randomObjectID
	}
	if len(c.InstanceID) == 0 {
		c.InstanceID = make([]byte, 16)
		_, _ = rand.Read(c.InstanceID)
	}
}

func randomObjectID(client []byte) []byte {
	sum := md5.Sum(client)
	id := make([]byte, 32)
	copy(id, sum[:])
	_, _ = rand.Read(id[16:])
	return id
}
