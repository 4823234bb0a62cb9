package transport

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// Poller waits for several file descriptors at once (Linux epoll, level
// triggered): Socket descriptors, pipes and sockets to child processes, and
// a Waker. One goroutine owns it.
type Poller struct {
	epfd   int
	events []syscall.EpollEvent
	ready  []Ready
}

// Ready is one descriptor that Wait found ready.
type Ready struct {
	Fd       int
	Readable bool // data, or end of file / hang-up: a read will not block
	Writable bool
}

// NewPoller creates an empty Poller.
func NewPoller() (*Poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("transport: epoll_create1: %w", err)
	}
	return &Poller{epfd: fd, events: make([]syscall.EpollEvent, 64)}, nil
}

func epollEvents(write bool) uint32 {
	ev := uint32(syscall.EPOLLIN | syscall.EPOLLRDHUP)
	if write {
		ev |= syscall.EPOLLOUT
	}
	return ev
}

// Add starts watching fd for reading, and for writing if write is set.
func (p *Poller) Add(fd int, write bool) error {
	ev := syscall.EpollEvent{Events: epollEvents(write), Fd: int32(fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("transport: epoll add fd %d: %w", fd, err)
	}
	return nil
}

// SetWrite changes whether fd is watched for writing.
func (p *Poller) SetWrite(fd int, write bool) error {
	ev := syscall.EpollEvent{Events: epollEvents(write), Fd: int32(fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, fd, &ev); err != nil {
		return fmt.Errorf("transport: epoll modify fd %d: %w", fd, err)
	}
	return nil
}

// Remove stops watching fd. Call it before closing fd.
func (p *Poller) Remove(fd int) {
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
}

// Wait blocks until a descriptor is ready or timeout passes (negative: no
// limit; zero: just look). The returned slice is reused by the next Wait.
// An interrupted wait returns no descriptors and no error.
func (p *Poller) Wait(timeout time.Duration) ([]Ready, error) {
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	n, err := syscall.EpollWait(p.epfd, p.events, ms)
	if err != nil {
		if errors.Is(err, syscall.EINTR) {
			return p.ready[:0], nil
		}
		return nil, fmt.Errorf("transport: epoll_wait: %w", err)
	}
	p.ready = p.ready[:0]
	for _, ev := range p.events[:n] {
		p.ready = append(p.ready, Ready{
			Fd:       int(ev.Fd),
			Readable: ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR|syscall.EPOLLRDHUP) != 0,
			Writable: ev.Events&(syscall.EPOLLOUT|syscall.EPOLLERR) != 0,
		})
	}
	return p.ready, nil
}

// Close releases the epoll descriptor; on a nil *Poller it does nothing.
func (p *Poller) Close() error {
	if p == nil || p.epfd < 0 {
		return nil
	}
	err := syscall.Close(p.epfd)
	p.epfd = -1
	return err
}

// Waker lets other goroutines wake a goroutine blocked in Poller.Wait: add
// Fd to the Poller; Wake makes it readable until the owner calls Drain.
type Waker struct {
	r, w   int
	mu     sync.Mutex // orders Wake against Close, so a closed fd is never written
	closed bool
}

// NewWaker creates a Waker (a non-blocking pipe).
func NewWaker() (*Waker, error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("transport: pipe2: %w", err)
	}
	return &Waker{r: fds[0], w: fds[1]}, nil
}

// Fd is the descriptor to poll for reading.
func (w *Waker) Fd() int { return w.r }

// Wake makes Fd readable. Safe from any goroutine; a full pipe already
// means "awake", so a failed write is ignored.
func (w *Waker) Wake() {
	w.mu.Lock()
	if !w.closed {
		_, _ = syscall.Write(w.w, []byte{1})
	}
	w.mu.Unlock()
}

// Drain consumes every pending wake-up.
func (w *Waker) Drain() {
	var buf [64]byte
	for {
		n, err := syscall.Read(w.r, buf[:])
		if n <= 0 || err != nil {
			return
		}
	}
}

// Close closes both ends; on a nil *Waker it does nothing.
func (w *Waker) Close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	_ = syscall.Close(w.w)
	return syscall.Close(w.r)
}
