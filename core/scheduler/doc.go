// Package scheduler holds the scheduler's decisions: the task state machine,
// placement and load balancing, graphs, and client, worker and object
// bookkeeping.
//
// It is pure: it opens no sockets, starts no goroutines, never reads the
// clock and does no I/O. Every input arrives through Scheduler.Handle (a
// message from a peer) or Scheduler.Tick (time passing), each with the
// current time; every output leaves through the Outbox given to New. One
// goroutine (core/server) owns a Scheduler, so nothing here is locked.
// `CGO_ENABLED=0 go test` runs its tests; it must never import transport.
package scheduler
