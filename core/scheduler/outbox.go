package scheduler

import "github.com/opengris/scaler/core/protocol"

// Outbox receives everything the scheduler decides to send. Messages handed
// to it are never modified by the scheduler afterwards, and the scheduler
// may hand the same message (e.g. a Task it re-places) more than once.
type Outbox interface {
	// Send sends m to the peer with ROUTER identity to (client or worker).
	Send(to []byte, m protocol.Message)
	// Publish sends m to the monitor PUB socket.
	Publish(m protocol.Message)
	// DeleteObject asks object storage to delete id.
	DeleteObject(id []byte)
	// DuplicateObject asks object storage to make newID refer to the content
	// of srcID.
	DuplicateObject(newID, srcID []byte)
	// Scale asks for one adapter webhook call (only with Config.Scaling).
	// It must not block: the call is made elsewhere and its outcome handed
	// back with Scheduler.OnScaleResponse, always, even when it failed.
	Scale(r ScaleRequest)
}

// Monitored may be implemented by an Outbox that knows whether anybody
// reads what is published. While Monitored reports false the scheduler
// builds no per-task monitor message at all (StateTask, StateGraphTask):
// a StateTask is a 112-byte allocation and each task publishes three, so
// without anybody listening they were a third of what a task allocated
// (BenchmarkWaitingTaskMemory). An Outbox without it gets everything.
type Monitored interface {
	Monitored() bool
}
