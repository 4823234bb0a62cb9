package protocol

//go:generate go tool msgp -tests=false

// Status messages the scheduler publishes on its monitor PUB socket, one
// frame per message and no topic. Monitors (scaler_top, scaler_ui) only read.

// MessageCount is how many messages of one kind a socket moved.
type MessageCount struct {
	Name  string `msg:"name"` // message name, e.g. "TaskResult" (see Kind.String)
	Count uint64 `msg:"count"`
}

// BinderStatus counts the messages of the scheduler's ROUTER socket since
// start, in first-seen order.
type BinderStatus struct {
	Received []MessageCount `msg:"received"`
	Sent     []MessageCount `msg:"sent"`
}

// ClientTaskCount is the number of unfinished tasks of one client (a graph
// counts as one task).
type ClientTaskCount struct {
	Client []byte `msg:"client"`
	Tasks  uint32 `msg:"tasks"`
}

// TaskStateCount is a count of tasks in one state: current for non-terminal
// states, cumulative since start for terminal ones.
type TaskStateCount struct {
	State TaskState `msg:"state"`
	Count uint64    `msg:"count"`
}

// WorkerStatus is the scheduler's view of one worker.
type WorkerStatus struct {
	WorkerID   []byte            `msg:"worker_id"`
	Agent      Resource          `msg:"agent"`      // from the last heartbeat
	RSSFree    uint64            `msg:"rss_free"`   // from the last heartbeat
	Free       uint32            `msg:"free"`       // queue size minus tasks assigned
	Sent       uint32            `msg:"sent"`       // tasks assigned
	Queued     uint32            `msg:"queued"`     // heartbeat queued_tasks
	Suspended  uint8             `msg:"suspended"`  // suspended processors, capped at 255
	LagUS      uint64            `msg:"lag_us"`     // heartbeat latency_us
	LastS      uint8             `msg:"last_s"`     // seconds since the last heartbeat, capped at 255
	ITL        string            `msg:"itl"`        // 3 chars '0'/'1': initialized, has_task, task_lock
	Processors []ProcessorStatus `msg:"processors"` // from the last heartbeat
}

// WorkerGroup is a set of workers started together by the scaling adapter.
type WorkerGroup struct {
	GroupID   []byte   `msg:"group_id"`
	WorkerIDs [][]byte `msg:"worker_ids"`
}

// StateScheduler is the scheduler's periodic (about 1 s) status report.
type StateScheduler struct {
	Binder       BinderStatus      `msg:"binder"`
	Scheduler    Resource          `msg:"scheduler"` // the scheduler process
	RSSFree      uint64            `msg:"rss_free"`  // host memory available, bytes
	Clients      []ClientTaskCount `msg:"clients"`   // clients with at least one unfinished task
	ObjectCount  uint64            `msg:"object_count"`
	TaskStates   []TaskStateCount  `msg:"task_states"` // every TaskState, in numeric order
	Workers      []WorkerStatus    `msg:"workers"`
	WorkerGroups []WorkerGroup     `msg:"worker_groups"`
	// MonitorDropped counts overflow events since start: monitor messages
	// refused because a subscriber's queue was at the send limit, about one
	// per stall (the full subscriber is then skipped uncounted), not the
	// messages lost; a subscriber's exact loss comes from MonitorSent.
	MonitorDropped uint64 `msg:"monitor_dropped"`
	// MonitorSent counts the monitor messages published since start, this
	// one included. A subscriber to everything that received R messages
	// since the previous status it saw (this one included) missed
	// MonitorSent minus that status's MonitorSent minus R.
	MonitorSent uint64 `msg:"monitor_sent"`
	// InstanceID is random per scheduler process start (as in the
	// heartbeat echoes): a monitor tells a restarted scheduler by it.
	InstanceID []byte `msg:"instance_id"`
}

// StateWorker is published when a worker connects or disconnects.
type StateWorker struct {
	WorkerID     []byte           `msg:"worker_id"`
	State        WorkerState      `msg:"state"`
	Capabilities map[string]int64 `msg:"capabilities"`
}

// StateTask is published on task state transitions.
type StateTask struct {
	TaskID       []byte      `msg:"task_id"`
	FunctionName []byte      `msg:"function_name"` // name of the function object; may be empty
	State        TaskState   `msg:"state"`
	Worker       []byte      `msg:"worker"`  // worker id while on a worker; may be empty
	Profile      TaskProfile `msg:"profile"` // set for finished tasks that were profiled
}

// StateGraphTask is published once per node when a graph is accepted.
type StateGraphTask struct {
	GraphTaskID   []byte       `msg:"graph_task_id"`
	TaskID        []byte       `msg:"task_id"`
	NodeType      NodeTaskType `msg:"node_type"`
	ParentTaskIDs [][]byte     `msg:"parent_task_ids"` // the node's dependencies
}

// StateBalanceAdvice is published when the balancer moves tasks away from a
// worker.
type StateBalanceAdvice struct {
	WorkerID []byte   `msg:"worker_id"`
	TaskIDs  [][]byte `msg:"task_ids"`
}
