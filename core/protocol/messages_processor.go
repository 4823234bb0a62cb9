package protocol

//go:generate go tool msgp -tests=false

// Messages between a worker agent and the processors it spawns (one frame per
// message on the agent's private socket). A processor is the Python process
// that fetches a task's function and arguments from object storage, calls
// the function, stores the outcome and reports it. The agent also forwards
// scheduler ObjectInstruction{delete} frames to processors unchanged, so they
// drop cached objects.

// ProcessorInitialized is the first message a processor sends, after it has
// connected to object storage and run the preload hook.
type ProcessorInitialized struct {
	PID uint32 `msg:"pid"`
	// Error is non-empty when start-up (e.g. the preload hook) failed; the
	// processor exits after sending it and must not be given tasks.
	Error string `msg:"error"`
}

// ProcessorTask gives a processor one task to run (agent -> processor).
//
// The processor fetches SerializerID, FuncObjectID and every object-id
// argument from ObjectStorage, decodes the serializer with cloudpickle,
// decodes the function and arguments with that serializer, and calls
// function(*arguments).
//
// Arguments, when non-empty, lists the positional arguments (ArgumentObjectID:
// fetch Data from storage; ArgumentInline: Data is the serialized argument)
// and ArgumentIDs is then empty. Senders that only have object ids may use
// ArgumentIDs alone.
type ProcessorTask struct {
	TaskID        []byte     `msg:"task_id"`
	Source        []byte     `msg:"source"`         // owning client id; result objects belong to it
	SerializerID  []byte     `msg:"serializer_id"`  // object id of the client's cloudpickled serializer
	FuncObjectID  []byte     `msg:"func_object_id"` // object id of the serialized function
	ArgumentIDs   [][]byte   `msg:"argument_ids"`   // object ids of the positional arguments, in order
	Metadata      []byte     `msg:"metadata"`       // Task.Metadata, unchanged
	Priority      uint32     `msg:"priority"`       // Task.Priority; nested tasks submit with Priority+1
	StreamOutput  bool       `msg:"stream_output"`  // send stdout/stderr as ProcessorLog
	ObjectStorage Address    `msg:"object_storage"`
	Arguments     []Argument `msg:"arguments"`   // positional arguments, objectID or inline; supersedes ArgumentIDs
	KeepResult    bool       `msg:"keep_result"` // Task.KeepResult: store the outcome even when it is sent inline
}

// ProcessorResult reports that a task finished (processor -> agent). Before
// sending it the processor has stored the outcome (the serialized return
// value, or the pickled exception) in object storage under ResultObjectID,
// unless the outcome is small and KeepResult was unset: then it travels only
// in Inline and ResultObjectID is empty. The agent then sends
// ObjectInstruction{create} (only when there is a result object) and
// TaskResult (with its own profile measurements) to the scheduler, in that
// order.
type ProcessorResult struct {
	TaskID           []byte         `msg:"task_id"`
	Type             TaskResultType `msg:"type"`               // ResultSuccess or ResultFailed
	ResultObjectID   []byte         `msg:"result_object_id"`   // 32 bytes; empty if storing failed or the outcome is inline-only
	ResultObjectName []byte         `msg:"result_object_name"` // name for ObjectInstruction
	Inline           []byte         `msg:"inline"`             // a small outcome (a copy when ResultObjectID is set); see TaskResult.Inline
	Message          string         `msg:"message"`            // failure description when there is no result object
}

// ProcessorLog is one chunk of a running task's stdout or stderr (processor
// -> agent), sent only for tasks with StreamOutput. The agent forwards it as
// TaskLog.
type ProcessorLog struct {
	TaskID  []byte  `msg:"task_id"`
	Type    LogType `msg:"type"`
	Content string  `msg:"content"`
}

// ProcessorCancel withdraws a task that was sent to a processor ahead of
// time and may not have started (agent -> processor). A processor reads its
// channel only between tasks, in order: if the task is still waiting in its
// queue it drops it unrun and answers ProcessorCanceled; otherwise the task
// has already run, its ProcessorResult went out before this message was
// read, and no answer follows.
type ProcessorCancel struct {
	TaskID []byte `msg:"task_id"`
}

// ProcessorCanceled confirms that a processor dropped a task unrun
// (processor -> agent), in answer to ProcessorCancel.
type ProcessorCanceled struct {
	TaskID []byte `msg:"task_id"`
}
