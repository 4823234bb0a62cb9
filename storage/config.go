// Package storage is the object storage role: a server that keeps task
// functions, arguments and results in memory, keyed by object id, and a small
// pipelined client for it. The wire protocol is described in
// docs/protocol.md ("Object storage").
package storage

import (
	"syscall"
	"time"
)

// Config configures a Server.
type Config struct {
	// Address is the zmq endpoint to bind, e.g. "tcp://127.0.0.1:8517".
	// Port 0 picks a free port (see Server.Addr).
	Address string
	// MaxMemory caps the bytes of object contents held; 0 means unlimited.
	MaxMemory int64
	// WaitTimeout is how long a get or duplicate of an object that does
	// not exist yet stays parked before it is answered notFound; 0 means
	// DefaultWaitTimeout.
	WaitTimeout time.Duration
	// MaxWaitingPerPeer bounds the parked requests of one peer; 0 means
	// DefaultMaxWaitingPerPeer.
	MaxWaitingPerPeer int
	// MaxMessageSize is the longest frame a client may send (ZMQ_MAXMSGSIZE);
	// libzmq disconnects a client that sends a longer one. 0 derives it (see
	// maxMessageSize).
	MaxMessageSize int64
}

// maxMessageSize is cfg.MaxMessageSize, or when 0 the machine's memory,
// which no object can exceed. Not MaxMemory: a set over MaxMemory must be
// answered with the store's error naming the limit (docs/protocol.md), which
// a disconnect would not give.
func (cfg Config) maxMessageSize() int64 {
	if cfg.MaxMessageSize > 0 {
		return cfg.MaxMessageSize
	}
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err == nil && si.Totalram > 0 {
		return int64(si.Totalram) * int64(si.Unit)
	}
	return 0 // unknown: no limit
}
