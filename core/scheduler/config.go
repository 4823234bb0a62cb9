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
	// MaxBalanceMoves bounds the tasks one balance pass moves (16,384,
	// about 5 ms of a pass): a larger imbalance takes several passes
	// (balance.go).
	MaxBalanceMoves int
	Protected       bool
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
	// MaxTasksPerClient bounds a client's unfinished tasks, each graph
	// counting its nodes (clientLoad); MaxObjectsPerClient the objects it may
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
		ScalingStartTimeout: time.Duration(c.AdapterStartTimeout) * time.Second,
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

// fill gives every unset (zero or negative) setting its default.
func (c *Config) fill() {
	defaultTo(&c.ClientTimeout, 60*time.Second)
	defaultTo(&c.WorkerTimeout, 60*time.Second)
	defaultTo(&c.BalanceInterval, time.Second)
	defaultTo(&c.BalanceTriggerTimes, 2)
	defaultTo(&c.MaxBalanceMoves, 1<<14)
	defaultTo(&c.ObjectFlushInterval, time.Second)
	defaultTo(&c.AnnounceGrace, 10*time.Second)
	defaultTo(&c.MaxParkedPerClient, 4096)
	defaultTo(&c.MaxTasksPerClient, 1<<22)
	defaultTo(&c.MaxObjectsPerClient, 1<<20)
	defaultTo(&c.DropLogInterval, time.Second)
	defaultTo(&c.MaxDeleteBatch, 4096)
	defaultTo(&c.ScalingInterval, time.Second)
	defaultTo(&c.ScalingStartTimeout, time.Minute)
	defaultTo(&c.ScalingRetry, 5*time.Second)
	defaultTo(&c.ScalingIdle, 30*time.Second)
	if c.NewObjectID == nil {
		c.NewObjectID = randomObjectID
	}
	if len(c.InstanceID) == 0 {
		c.InstanceID = make([]byte, 16)
		_, _ = rand.Read(c.InstanceID)
	}
}

// defaultTo sets *p to v when it is not positive.
func defaultTo[T int | int64 | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

func randomObjectID(client []byte) []byte {
	sum := md5.Sum(client)
	id := make([]byte, 32)
	copy(id, sum[:])
	_, _ = rand.Read(id[16:])
	return id
}
