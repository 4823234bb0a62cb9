package transport

import (
	"errors"
	"fmt"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// One zmq context per process: inproc endpoints only work within a context,
// and io threads are a process-wide resource. It stays private to this
// package and is made either by Init, which commands calls before a role
// opens its first socket, or at the first socket of a process that never
// calls Init (tests, tools), with libzmq's default of one io thread.
//
// Init rather than a context handed to every Bind/Connect/Open: the
// context's only setting is the io threads, which libzmq reads when the
// first socket starts them, so one call before that point is all that
// passing it down would decide, without changing the constructors that
// every role and test calls.
var (
	ctxMu sync.Mutex
	zctx  *zmq.Context
)

// Init creates the process's zmq context with ioThreads io threads. It is
// refused once the context exists (Init was called, or a socket was made):
// libzmq fixes the io threads when the first socket starts them.
func Init(ioThreads int) error {
	if ioThreads < 1 {
		return fmt.Errorf("transport: io threads must be >= 1, got %d", ioThreads)
	}
	ctxMu.Lock()
	defer ctxMu.Unlock()
	if zctx != nil {
		return errors.New("transport: Init must be called once, before the first socket is created")
	}
	c, err := newContext(ioThreads)
	if err != nil {
		return err
	}
	zctx = c
	return nil
}

// sharedContext returns the process-wide context, creating it with the
// default io threads on first use if Init was not called.
func sharedContext() (*zmq.Context, error) {
	ctxMu.Lock()
	defer ctxMu.Unlock()
	if zctx != nil {
		return zctx, nil
	}
	c, err := newContext(0)
	if err != nil {
		return nil, err
	}
	zctx = c
	return zctx, nil
}

// newContext makes a zmq context; ioThreads 0 keeps libzmq's default (1).
func newContext(ioThreads int) (*zmq.Context, error) {
	c, err := zmq.NewContext()
	if err != nil {
		return nil, fmt.Errorf("transport: new zmq context: %w", err)
	}
	c.SetRetryAfterEINTR(true) // pebbe/zmq4's calls retry after EINTR: the callers here rely on it
	if ioThreads > 0 {
		if err := c.SetIoThreads(ioThreads); err != nil {
			_ = c.Term()
			return nil, fmt.Errorf("transport: set io threads %d: %w", ioThreads, err)
		}
	}
	return c, nil
}

// Term ends the process's zmq context as the process is about to exit.
// libzmq writes out what closed sockets still hold (up to their linger)
// only while the context lives: without it a message sent just before the
// exit, such as the scheduler's answer to the shutdown it accepted, can be
// lost with the process. Call it after every socket is closed; it waits at
// most within, since one socket left open would block it for ever.
func Term(within time.Duration) {
	ctxMu.Lock()
	c := zctx
	ctxMu.Unlock()
	if c == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		_ = c.Term()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(within):
	}
}
