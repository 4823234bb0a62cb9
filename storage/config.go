// Package storage is the object storage role: a server that keeps task
// functions, arguments and results in memory, keyed by object id, and a small
// pipelined client for it. The wire protocol is described in
// docs/protocol.md ("Object storage").
package storage

// Config configures a Server.
type Config struct {
	// Address is the zmq endpoint to bind, e.g. "tcp://127.0.0.1:8517".
	// Port 0 picks a free port (see Server.Addr).
	Address string
	// MaxMemory caps the bytes of object contents held; 0 means unlimited.
	MaxMemory int64
}
