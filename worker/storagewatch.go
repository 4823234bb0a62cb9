package worker

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/transport"
)

// ErrStorageLost is wrapped by the error Run returns when the worker
// stopped because its connection to the object storage server was lost.
var ErrStorageLost = errors.New("lost the connection to the object storage server")

const (
	// storageWarnAfter is how long the worker waits for a first connection
	// to the object storage server before it warns (once) that it cannot
	// reach it.
	storageWarnAfter = 5 * time.Second
	// storageLossGrace delays acting on a loss a little: when the scheduler
	// shuts down with its in-process storage, the shutdown it sent to the
	// workers may arrive just after the storage connection closes, and a
	// requested shutdown should win (clean exit) over the loss.
	storageLossGrace = time.Second
)

// Losing the object storage connection makes the worker exit (docs/protocol.md §9.1):
// processors block in their object gets while the server is gone, so the
// worker cannot do any work. Once the agent knows the storage address
// (configured, or learnt from the first heartbeat echo) it keeps one idle
// zmq connection to the server and watches it (transport.Watch). When an
// established connection is lost, the agent stops as on any fatal error:
// it sends DisconnectRequest to the scheduler, kills its processors, logs
// one error line naming the address and Run returns an error wrapping
// ErrStorageLost (the worker process exits with status 1).
//
// A server that was never reachable is not "lost": zmq keeps retrying (the
// processors' own connections do the same, and tasks wait in their gets),
// and the agent logs one warning after storageWarnAfter.

// storageWatch watches the connection to one object storage server.
type storageWatch struct {
	addr string
	w    *transport.Watch
	lost chan error // capacity 1, at most one error
}

// watchStorage starts watching addr; it stops when quit is closed (or
// after reporting the loss, which it follows with a call of wake).
func watchStorage(addr string, log zerolog.Logger, quit <-chan struct{}, wake func()) (*storageWatch, error) {
	w, err := transport.WatchConnection(addr)
	if err != nil {
		return nil, err
	}
	s := &storageWatch{addr: addr, w: w, lost: make(chan error, 1)}
	go s.run(log, quit, wake)
	return s, nil
}

// Lost delivers one error when the connection is lost. A nil watch (the
// address is not known yet) never delivers.
func (s *storageWatch) Lost() <-chan error {
	if s == nil {
		return nil
	}
	return s.lost
}

func (s *storageWatch) run(log zerolog.Logger, quit <-chan struct{}, wake func()) {
	defer s.w.Close()
	warn := time.NewTimer(storageWarnAfter)
	defer warn.Stop()
	connected, warned := s.w.Connected(), false
	for {
		select {
		case <-quit:
			return
		case <-connected:
			connected = nil
			warn.Stop()
			ev := log.Debug()
			if warned {
				ev = log.Info()
			}
			ev.Str("object_storage", s.addr).Msg("connected to the object storage server")
		case <-warn.C:
			warned = true
			log.Warn().Str("object_storage", s.addr).
				Msgf("object storage server %s not reachable after %s; still trying", s.addr, storageWarnAfter)
		case err := <-s.w.Lost():
			select {
			case <-quit:
				return
			case <-time.After(storageLossGrace):
			}
			s.lost <- err
			wake()
			return
		}
	}
}

// startStorageWatch starts watching the object storage connection once its
// address is known; it does nothing before that or when already watching.
func (a *agent) startStorageWatch() {
	if !a.storageKnown || a.storageWatch != nil {
		return
	}
	addr := storageURL(a.storage)
	w, err := watchStorage(addr, a.log, a.quit, a.waker.Wake)
	if err != nil {
		a.log.Warn().Err(err).Str("object_storage", addr).Msg("cannot watch the object storage connection")
		return
	}
	a.storageWatch = w
}

// onStorageLost stops the worker; shutdown logs the one error line.
func (a *agent) onStorageLost(err error) {
	stopErr := fmt.Errorf("worker: %w at %s", ErrStorageLost, a.storageWatch.addr)
	if !errors.Is(err, transport.ErrConnectionLost) {
		stopErr = fmt.Errorf("%w (%v)", stopErr, err)
	}
	a.stop(StopFailed, "object storage connection lost", stopErr)
}

func storageURL(addr protocol.Address) string {
	return "tcp://" + net.JoinHostPort(addr.Host, strconv.Itoa(int(addr.Port)))
}
