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
	// Listening reports whether anybody receives what Publish sends now.
	// While it is false the scheduler builds no per-task monitor messages
	// (two or more per task otherwise, each an allocation).
	Listening() bool
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
