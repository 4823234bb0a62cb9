package protocol

//go:generate go tool msgp -tests=false

// Messages about tasks and objects, exchanged by clients, the scheduler and
// worker agents over the scheduler's ROUTER socket.

// Argument is one positional argument of a task: an object id (data stored
// in object storage), the serialized argument itself (ArgumentInline, for
// small arguments), or, inside a GraphTask, the id of another task of the
// same graph whose result is the argument.
type Argument struct {
	Type ArgumentType `msg:"type"`
	Data []byte       `msg:"data"` // 32-byte object id, 16-byte task id, or the inline bytes
}

// Task asks for one function call. Sent client -> scheduler, and scheduler ->
// worker (unchanged, except that in a graph node each task argument is
// replaced by the dependency's result: its object id, or its bytes as an
// inline argument when the result was small; capabilities are kept, so
// nodes are placed like any task).
type Task struct {
	TaskID       []byte           `msg:"task_id"`        // 16 bytes, chosen by the client
	Source       []byte           `msg:"source"`         // owning client id
	Metadata     []byte           `msg:"metadata"`       // opaque to servers; forwarded unchanged
	FuncObjectID []byte           `msg:"func_object_id"` // object id of the serialized function
	Arguments    []Argument       `msg:"arguments"`
	Capabilities map[string]int64 `msg:"capabilities"` // required worker capabilities; values are ignored
	Priority     uint32           `msg:"priority"`     // higher runs first; nested tasks use parent+1
	StreamOutput bool             `msg:"stream_output"`
	Profiling    bool             `msg:"profiling"` // the client wants TaskResult.Profile
	// KeepResult asks for the result in object storage even when it is small
	// enough to travel inline only: the scheduler sets it on graph nodes whose
	// result feeds other nodes, clients may set it when they need an object.
	// Without it a small result is sent in TaskResult.Inline with no object.
	KeepResult bool `msg:"keep_result"`
}

// TaskCancel asks to cancel a task. Sent client -> scheduler and scheduler ->
// worker. Without Force a worker only cancels tasks that have not started.
type TaskCancel struct {
	TaskID []byte `msg:"task_id"`
	Force  bool   `msg:"force"`
}

// TaskCancelConfirm answers a TaskCancel. Sent worker -> scheduler and
// scheduler -> owning client.
type TaskCancelConfirm struct {
	TaskID []byte                `msg:"task_id"`
	Type   TaskCancelConfirmType `msg:"type"`
}

// TaskResult reports the end of a task. Sent worker -> scheduler and
// scheduler -> owning client; the scheduler also synthesizes results for
// graphs, dead workers, timeouts and refused tasks.
type TaskResult struct {
	TaskID  []byte         `msg:"task_id"`
	Type    TaskResultType `msg:"type"`
	Profile TaskProfile    `msg:"profile"` // zero when nothing was measured
	// Results holds the object ids of the outcome: one id (return value or
	// exception) for success and failed, none otherwise; also none for a
	// success or failure whose outcome travels only in Inline.
	Results [][]byte `msg:"results"`
	// Inline carries the content of a small outcome so the client can skip
	// one object storage round trip. With Results non-empty it repeats
	// Results[0], which exists and is owned as usual; with Results empty
	// (Task.KeepResult unset) it is the only copy and nothing is stored.
	// Empty means "not inlined".
	Inline []byte `msg:"inline"`
	// Message explains failures that carry no result object (worker or
	// processor died, timeout, rejected). Empty otherwise.
	Message string `msg:"message"`
}

// TaskLog is one chunk of a task's stdout or stderr, for tasks submitted
// with StreamOutput. Sent worker -> scheduler -> owning client.
type TaskLog struct {
	TaskID  []byte  `msg:"task_id"`
	Type    LogType `msg:"type"`
	Content string  `msg:"content"`
}

// GraphTask submits a task graph. Sent client -> scheduler. Graph nodes are
// ordinary Tasks whose arguments may name other nodes (ArgumentTask).
type GraphTask struct {
	TaskID  []byte   `msg:"task_id"` // id of the whole graph
	Source  []byte   `msg:"source"`  // owning client id
	Targets [][]byte `msg:"targets"` // node task ids whose results the client keeps
	Graph   []Task   `msg:"graph"`
}

// ObjectMetadata describes the objects an ObjectInstruction is about. The
// lists are parallel; ContentTypes, Names and Contents may be shorter than
// ObjectIDs (delete and clear only need ids).
type ObjectMetadata struct {
	ObjectIDs    [][]byte            `msg:"object_ids"` // 32 bytes each
	ContentTypes []ObjectContentType `msg:"content_types"`
	Names        [][]byte            `msg:"names"` // human-readable, e.g. the function name
	// Contents optionally carries small objects' bytes inline. Receivers
	// that do not use it must ignore it; the objects are in storage anyway.
	Contents [][]byte `msg:"contents"`
}

// ObjectInstruction creates, deletes or clears object records. create: client
// -> scheduler (its own objects) and worker -> scheduler (result objects, on
// behalf of ObjectUser). delete: client -> scheduler, and scheduler -> worker
// -> processors (cache eviction). clear: client -> scheduler (all of
// ObjectUser's objects).
type ObjectInstruction struct {
	Type       ObjectInstructionType `msg:"type"`
	ObjectUser []byte                `msg:"object_user"` // owning client id; empty when sent by the scheduler
	Metadata   ObjectMetadata        `msg:"metadata"`
}
