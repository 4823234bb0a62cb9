// Package transport moves multipart zmq messages ([][]byte frames) between
// processes. It is the only package of the module that imports pebbe/zmq4;
// it knows nothing about message types.
//
// It offers two ways to own a socket. A Socket (socket.go) belongs to the
// caller's goroutine, which waits for it together with other descriptors in
// a Poller and is woken by other goroutines through a Waker: the scheduler
// and the worker agent run their whole loop that way, so a message costs no
// goroutine hand-off. An Endpoint suits code that wants channels instead
// (clients, object storage, tests):
//
// Each Endpoint owns one zmq socket and one goroutine (the owner). Only the
// owner touches the socket. Other goroutines hand frames to it with Send,
// which appends to a mutex-guarded queue and, when the queue goes from empty
// to non-empty, wakes the owner through an inproc PAIR socket pair. The owner
// blocks in zmq_poll on {socket, wake socket} with no timeout, so neither
// network input nor Send waits for a polling tick. Received messages are
// delivered on the Recv channel in order.
//
// Backpressure: high-water marks are 0 (unlimited) in both directions unless
// Options set them, so by default zmq never drops or blocks on queue length;
// memory is the limit. (The scheduler sets finite ones on the sockets peers
// can fill and uses Socket.TrySend there; see core/server.) Send never
// blocks. If the Recv channel is full the owner stops reading the socket
// (zmq then buffers input, and once its buffers grow, TCP flow control pushes
// back on the peer) but keeps sending whatever Send queues, so a consumer that
// both reads Recv and calls Send cannot deadlock. Close never waits for a
// reader of Recv.
//
// Peers (peers.go): a bound ROUTER with Options.WatchClosed reports the
// routing identity of each peer whose connection closes (Socket.TakeClosed,
// Endpoint.Closed), and a ROUTER Socket with Options.RouterMandatory
// reports peers it cannot deliver to instead of dropping their messages
// (Socket.TakeUnreachable), keeping messages for a peer at its high-water
// mark in a bounded per-peer backlog.
package transport

import (
	"errors"
	"fmt"
)

// SocketType selects the zmq socket pattern of an Endpoint.
type SocketType int

// Socket types supported by the transport.
const (
	Router SocketType = iota
	Dealer
	Pub
	Sub
	// XPub is a PUB socket that also receives its subscribers' subscribe
	// (first byte 1) and unsubscribe (first byte 0) messages, so that a
	// publisher can skip the work of messages nobody would receive.
	XPub
)

// String returns the zmq name of the socket type.
func (t SocketType) String() string {
	switch t {
	case Router:
		return "ROUTER"
	case Dealer:
		return "DEALER"
	case Pub:
		return "PUB"
	case Sub:
		return "SUB"
	case XPub:
		return "XPUB"
	}
	return fmt.Sprintf("SocketType(%d)", int(t))
}

// Options configure an Endpoint.
type Options struct {
	// Identity is the ROUTER/DEALER routing identity (ZMQ_ROUTING_ID); empty
	// means libzmq picks one. libzmq requires 1..255 bytes, not starting with 0.
	Identity []byte
	// Subscribe lists the topics of a SUB socket; nil subscribes to
	// everything, an empty non-nil slice to nothing. Ignored by other types.
	Subscribe [][]byte
	// RecvBuffer is the capacity of the Recv channel; 0 means DefaultRecvBuffer.
	RecvBuffer int
	// SendHWM and RecvHWM are libzmq's high-water marks (ZMQ_SNDHWM,
	// ZMQ_RCVHWM): the most messages queued per peer in each direction. 0
	// means unlimited, the default: the callers that bind the sockets a
	// remote peer can fill (the scheduler) set finite ones and say what
	// happens at the mark.
	SendHWM, RecvHWM int
	// MaxMsgSize is ZMQ_MAXMSGSIZE: libzmq disconnects a peer that sends a
	// frame longer than this many bytes. 0 means no limit.
	MaxMsgSize int64
	// XPubNoDrop (XPUB) makes a send that zmq would drop at a subscriber's
	// send HWM fail instead: Socket.TrySend then returns ErrFull.
	XPubNoDrop bool
	// ZeroCopyRecv delivers received frames of at least ZeroCopyMin bytes
	// as views of libzmq's memory instead of copies. The receiver must then
	// call ReleaseMessage on every message it takes from Recv (also those
	// left in the channel after Close), after Retain on any frame it keeps;
	// see Retain.
	ZeroCopyRecv bool
	// WatchClosed (bound ROUTER only) reports the routing identity of every
	// peer whose connection closes, within milliseconds of the close:
	// Socket.TakeClosed, Endpoint.Closed. See peers.go for how and for
	// the limits.
	WatchClosed bool
	// RouterMandatory (ROUTER Socket only; an Endpoint refuses it) sets
	// ZMQ_ROUTER_MANDATORY, so that no message is dropped silently: a
	// message to a peer that is not connected is reported
	// (Socket.TakeUnreachable), and one to a peer at its high-water mark
	// waits in a per-peer backlog (see Socket.Send).
	RouterMandatory bool
	// MaxPeerBacklogBytes bounds the bytes of one peer's backlog
	// (RouterMandatory) besides MaxPeerBacklog messages; 0: no byte bound.
	// A peer past it is reported with Unreachable.Full.
	MaxPeerBacklogBytes int
}

// DefaultRecvBuffer is the Recv channel capacity used when Options.RecvBuffer is 0.
const DefaultRecvBuffer = 1024

// Errors returned by the transport.
var (
	// ErrClosed is returned by Send after Close (or after a fatal socket error).
	ErrClosed = errors.New("transport: endpoint closed")
	// ErrEmptyMessage is returned by Send when called without frames.
	ErrEmptyMessage = errors.New("transport: message has no frames")
	// ErrCannotSend is returned by Send on a SUB endpoint.
	ErrCannotSend = errors.New("transport: socket type cannot send")
	// ErrFull is returned by Socket.TrySend when zmq cannot take the
	// message now: a subscriber's queue (XPUB with XPubNoDrop) is at its
	// send HWM. Nothing was sent or kept.
	ErrFull = errors.New("transport: peer queue full")
	// ErrUnreachable is returned by Send on a ROUTER Socket with
	// Options.RouterMandatory when the message was not queued: its peer is
	// not connected, or its backlog is full (MaxPeerBacklog). The peer is
	// also reported by TakeUnreachable.
	ErrUnreachable = errors.New("transport: peer unreachable")
)
