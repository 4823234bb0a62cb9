package protocol

import "strconv"

//go:generate go tool msgp -tests=false

// The enumerations below travel as msgpack unsigned integers. Values are
// stable: the first ones follow upstream Scaler's ordinals, additions are
// appended and marked as such. A receiver must treat an unknown value as a
// malformed message (log and drop), never as a crash.

// TaskState is the scheduler-side state of a task, as published in StateTask
// and counted in StateScheduler.
type TaskState uint8

const (
	TaskStateInactive            TaskState = 0 // queued, not on a worker
	TaskStateRunning             TaskState = 1 // assigned to a worker
	TaskStateCanceling           TaskState = 2 // client cancel in flight
	TaskStateBalanceCanceling    TaskState = 3 // balance cancel in flight
	TaskStateSuccess             TaskState = 4
	TaskStateFailed              TaskState = 5
	TaskStateFailedWorkerDied    TaskState = 6
	TaskStateCanceled            TaskState = 7
	TaskStateCanceledNotFound    TaskState = 8
	TaskStateBalanceCanceled     TaskState = 9 // reserved by upstream, never used
	TaskStateWorkerDisconnecting TaskState = 10
	// Scaler-Go additions.
	TaskStateFailedTimeout       TaskState = 11 // ran longer than the task timeout
	TaskStateFailedProcessorDied TaskState = 12 // the processor running it died
	TaskStateRejected            TaskState = 13 // refused by the scheduler, never ran
)

// NumTaskStates is one more than the largest TaskState value.
const NumTaskStates = 14

var taskStateNames = [...]string{
	"Inactive", "Running", "Canceling", "BalanceCanceling", "Success", "Failed",
	"FailedWorkerDied", "Canceled", "CanceledNotFound", "BalanceCanceled",
	"WorkerDisconnecting", "FailedTimeout", "FailedProcessorDied", "Rejected",
}

func (s TaskState) String() string { return enumName(taskStateNames[:], uint8(s), "TaskState") }

// Valid reports whether s is a defined state.
func (s TaskState) Valid() bool { return int(s) < len(taskStateNames) }

// Terminal reports whether a task in state s is finished.
func (s TaskState) Terminal() bool {
	switch s {
	case TaskStateSuccess, TaskStateFailed, TaskStateFailedWorkerDied, TaskStateCanceled,
		TaskStateCanceledNotFound, TaskStateFailedTimeout, TaskStateFailedProcessorDied, TaskStateRejected:
		return true
	}
	return false
}

// TaskResultType says how a task ended.
type TaskResultType uint8

const (
	ResultSuccess          TaskResultType = 0 // results[0] holds the serialized return value
	ResultFailed           TaskResultType = 1 // results[0] holds the serialized exception
	ResultFailedWorkerDied TaskResultType = 2 // the worker died; results is empty
	// Scaler-Go additions.
	ResultFailedTimeout       TaskResultType = 3 // killed after the task timeout; results is empty
	ResultFailedProcessorDied TaskResultType = 4 // the processor died while running it; results is empty
	ResultRejected            TaskResultType = 5 // the scheduler refused the task; it never ran
)

var taskResultTypeNames = [...]string{
	"Success", "Failed", "FailedWorkerDied", "FailedTimeout", "FailedProcessorDied", "Rejected",
}

func (t TaskResultType) String() string {
	return enumName(taskResultTypeNames[:], uint8(t), "TaskResultType")
}

// Valid reports whether t is a defined result type.
func (t TaskResultType) Valid() bool { return int(t) < len(taskResultTypeNames) }

// TaskCancelConfirmType is a worker's or the scheduler's answer to TaskCancel.
type TaskCancelConfirmType uint8

const (
	CancelConfirmCanceled TaskCancelConfirmType = 0 // the task will not run (or was stopped)
	CancelConfirmFailed   TaskCancelConfirmType = 1 // already running and force was false
	CancelConfirmNotFound TaskCancelConfirmType = 2 // the task is unknown
)

var cancelConfirmNames = [...]string{"Canceled", "CancelFailed", "CancelNotFound"}

func (t TaskCancelConfirmType) String() string {
	return enumName(cancelConfirmNames[:], uint8(t), "TaskCancelConfirmType")
}

// Valid reports whether t is a defined confirm type.
func (t TaskCancelConfirmType) Valid() bool { return int(t) < len(cancelConfirmNames) }

// ArgumentType says what an Argument's data is.
type ArgumentType uint8

const (
	ArgumentTask     ArgumentType = 0 // data is a task id (graph dependency)
	ArgumentObjectID ArgumentType = 1 // data is an object id
	// ArgumentInline: data is the serialized argument itself (no storage
	// object). Clients use it for small arguments; see docs/protocol.md §7.1.
	ArgumentInline ArgumentType = 2
)

var argumentTypeNames = [...]string{"Task", "ObjectID", "Inline"}

func (t ArgumentType) String() string {
	return enumName(argumentTypeNames[:], uint8(t), "ArgumentType")
}

// Valid reports whether t is a defined argument type.
func (t ArgumentType) Valid() bool { return int(t) < len(argumentTypeNames) }

// LogType is the stream a TaskLog or ProcessorLog line was written to.
type LogType uint8

const (
	LogStdout LogType = 0
	LogStderr LogType = 1
)

var logTypeNames = [...]string{"Stdout", "Stderr"}

func (t LogType) String() string { return enumName(logTypeNames[:], uint8(t), "LogType") }

// Valid reports whether t is a defined log type.
func (t LogType) Valid() bool { return int(t) < len(logTypeNames) }

// ObjectInstructionType is the action of an ObjectInstruction.
type ObjectInstructionType uint8

const (
	InstructionCreate ObjectInstructionType = 0
	InstructionDelete ObjectInstructionType = 1
	InstructionClear  ObjectInstructionType = 2
)

var objectInstructionNames = [...]string{"Create", "Delete", "Clear"}

func (t ObjectInstructionType) String() string {
	return enumName(objectInstructionNames[:], uint8(t), "ObjectInstructionType")
}

// Valid reports whether t is a defined instruction type.
func (t ObjectInstructionType) Valid() bool { return int(t) < len(objectInstructionNames) }

// ObjectContentType says how an object's bytes are decoded by a processor.
type ObjectContentType uint8

const (
	ContentSerializer ObjectContentType = 0 // a cloudpickled Serializer instance
	ContentObject     ObjectContentType = 1 // bytes produced by the client's serializer
)

var objectContentNames = [...]string{"Serializer", "Object"}

func (t ObjectContentType) String() string {
	return enumName(objectContentNames[:], uint8(t), "ObjectContentType")
}

// Valid reports whether t is a defined content type.
func (t ObjectContentType) Valid() bool { return int(t) < len(objectContentNames) }

// DisconnectType is the kind of ClientDisconnect.
type DisconnectType uint8

const (
	DisconnectClient   DisconnectType = 0 // the client leaves; its tasks and objects are dropped
	DisconnectShutdown DisconnectType = 1 // the client asks the scheduler and workers to exit
)

var disconnectTypeNames = [...]string{"Disconnect", "Shutdown"}

func (t DisconnectType) String() string {
	return enumName(disconnectTypeNames[:], uint8(t), "DisconnectType")
}

// Valid reports whether t is a defined disconnect type.
func (t DisconnectType) Valid() bool { return int(t) < len(disconnectTypeNames) }

// NodeTaskType marks a graph node in StateGraphTask.
type NodeTaskType uint8

const (
	NodeNormal NodeTaskType = 0 // intermediate node
	NodeTarget NodeTaskType = 1 // node whose result the client asked for
)

var nodeTaskTypeNames = [...]string{"Normal", "Target"}

func (t NodeTaskType) String() string {
	return enumName(nodeTaskTypeNames[:], uint8(t), "NodeTaskType")
}

// Valid reports whether t is a defined node type.
func (t NodeTaskType) Valid() bool { return int(t) < len(nodeTaskTypeNames) }

// WorkerState is published in StateWorker.
type WorkerState uint8

const (
	WorkerConnected    WorkerState = 0
	WorkerDisconnected WorkerState = 1
)

var workerStateNames = [...]string{"Connected", "Disconnected"}

func (s WorkerState) String() string { return enumName(workerStateNames[:], uint8(s), "WorkerState") }

// Valid reports whether s is a defined worker state.
func (s WorkerState) Valid() bool { return int(s) < len(workerStateNames) }

func enumName(names []string, v uint8, typ string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(int(v)) + ")"
}
