package protocol

//go:generate go tool msgp -tests=false

// Connection management messages between clients or workers and the
// scheduler.

// ClientHeartbeat is sent client -> scheduler every heartbeat interval, with
// at most one heartbeat outstanding (the next one waits for the echo).
type ClientHeartbeat struct {
	Resource  Resource `msg:"resource"`   // the client process
	LatencyUS uint32   `msg:"latency_us"` // last measured round trip / 2, microseconds
	// Nested: the client runs inside a task (a processor), as nested tasks'
	// clients do; the scheduler logs its arrival and departure at debug
	// level, since there is one per nested task.
	Nested bool `msg:"nested"`
}

// ClientHeartbeatEcho answers every ClientHeartbeat (scheduler -> client).
// It is how a client learns where object storage is.
type ClientHeartbeatEcho struct {
	ObjectStorage Address `msg:"object_storage"`
	// InstanceID is random per scheduler process start: a change tells the
	// peer that the scheduler it talked to is gone, with everything it held.
	InstanceID []byte `msg:"instance_id"`
}

// WorkerHeartbeat is sent worker -> scheduler every heartbeat interval, with
// at most one outstanding. The first one registers the worker.
type WorkerHeartbeat struct {
	Agent        Resource          `msg:"agent"`        // the worker agent process
	RSSFree      uint64            `msg:"rss_free"`     // host memory available, bytes
	QueuedTasks  uint32            `msg:"queued_tasks"` // tasks received but not started
	QueueSize    uint32            `msg:"queue_size"`   // how many tasks the scheduler may assign at once
	LatencyUS    uint32            `msg:"latency_us"`   // last measured round trip / 2, microseconds
	TaskLock     bool              `msg:"task_lock"`    // true when the agent can start a task now
	Processors   []ProcessorStatus `msg:"processors"`
	Capabilities map[string]int64  `msg:"capabilities"` // what this worker offers
	// Tasks are the ids of every task the agent holds (queued, running and
	// suspended) when it writes the heartbeat, and EchoSeq is the Seq of
	// the last WorkerHeartbeatEcho it received (0: none, or a worker that
	// does not report its tasks). The scheduler reconciles with them: see
	// docs/protocol.md, "Reconciliation".
	Tasks   [][]byte `msg:"tasks"`
	EchoSeq uint64   `msg:"echo_seq"`
	// Slot is set by a worker that a supervisor (scaler cluster) started
	// in place of one that died: the id of the slot's first worker, which
	// is the id an adapter's start answer listed. The scheduler counts the
	// worker as that id's stand-in in its worker group once the id itself
	// is gone (docs/protocol.md §7.2). Empty for a slot's first worker.
	Slot []byte `msg:"slot"`
}

// WorkerHeartbeatEcho answers every WorkerHeartbeat (scheduler -> worker).
// A registering worker gets it before any Task.
type WorkerHeartbeatEcho struct {
	ObjectStorage Address `msg:"object_storage"`
	// Seq counts the echoes sent to this worker (1, 2, ...). Messages to one
	// worker arrive in order, so a worker that got echo n got every task
	// the scheduler sent before it.
	Seq uint64 `msg:"seq"`
	// InstanceID is random per scheduler process start (ClientHeartbeatEcho):
	// a worker that sees it change drops the work of the previous instance.
	InstanceID []byte `msg:"instance_id"`
}

// DisconnectRequest is sent by a worker when it leaves (worker -> scheduler).
// The scheduler re-places the worker's tasks.
type DisconnectRequest struct {
	Worker []byte `msg:"worker"` // the worker's id
}

// DisconnectResponse acknowledges a DisconnectRequest (scheduler -> worker).
// Workers need not wait for it.
type DisconnectResponse struct {
	Worker []byte `msg:"worker"`
}

// ClientDisconnect is sent client -> scheduler when a client leaves
// (DisconnectClient) or asks for a shutdown (DisconnectShutdown), and
// scheduler -> every worker (DisconnectShutdown) when a shutdown is accepted.
type ClientDisconnect struct {
	Type DisconnectType `msg:"type"`
}

// ClientShutdownResponse answers a ClientDisconnect of type shutdown
// (scheduler -> client).
type ClientShutdownResponse struct {
	Accepted bool   `msg:"accepted"`
	Reason   string `msg:"reason"` // why it was refused (e.g. protected mode); empty when accepted
}
