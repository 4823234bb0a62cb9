package transport

import (
	"errors"
	"fmt"
	"sync"

	zmq "github.com/pebbe/zmq4"
)

// One zmq context per process: inproc endpoints only work within a context,
// and io threads are a process-wide resource.
var (
	ctxMu     sync.Mutex
	zctx      *zmq.Context
	ioThreads int // 0 = libzmq default (1)
)

// SetIOThreads sets the number of io threads of the shared zmq context. It
// must be called before the first Endpoint is created.
func SetIOThreads(n int) error {
	if n < 1 {
		return fmt.Errorf("transport: io threads must be >= 1, got %d", n)
	}
	ctxMu.Lock()
	defer ctxMu.Unlock()
	if zctx != nil {
		return errors.New("transport: SetIOThreads must be called before the first socket is created")
	}
	ioThreads = n
	return nil
}

// sharedContext returns the process-wide context, creating it on first use.
func sharedContext() (*zmq.Context, error) {
	ctxMu.Lock()
	defer ctxMu.Unlock()
	if zctx != nil {
		return zctx, nil
	}
	c, err := zmq.NewContext() // retries after EINTR by default
	if err != nil {
		return nil, fmt.Errorf("transport: new zmq context: %w", err)
	}
	c.SetRetryAfterEINTR(true)
	if ioThreads > 0 {
		if err := c.SetIoThreads(ioThreads); err != nil {
			_ = c.Term()
			return nil, fmt.Errorf("transport: set io threads %d: %w", ioThreads, err)
		}
	}
	zctx = c
	return zctx, nil
}
