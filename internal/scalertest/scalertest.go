// Package scalertest starts an in-process scheduler and offers Go test
// clients and echo workers that speak the wire protocol over real zmq
// sockets on 127.0.0.1. It is for tests and benchmarks only.
package scalertest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/core/server"
	"github.com/opengris/scaler/internal/identity"
	"github.com/opengris/scaler/internal/scalertest/expect"
	"github.com/opengris/scaler/internal/scalertest/wait"
	"github.com/opengris/scaler/transport"
)

// Scheduler is a running in-process scheduler.
type Scheduler struct {
	*server.Server
	task *wait.Task
}

// Done is closed when Run has returned; Err then gives its value.
func (s *Scheduler) Done() <-chan struct{} { return s.task.Done() }

// Err is Run's return value, valid after Done is closed.
func (s *Scheduler) Err() error { return s.task.Err() }

// StartScheduler starts a scheduler on a free port of 127.0.0.1 (its object
// storage and monitor get their own free ports). mod adjusts the
// configuration. It is stopped when the test ends.
func StartScheduler(t testing.TB, mod func(*config.Scheduler)) *Scheduler {
	t.Helper()
	cfg := config.DefaultScheduler()
	cfg.SchedulerAddress = "tcp://127.0.0.1:0"
	if mod != nil {
		mod(cfg)
	}
	var w io.Writer = io.Discard
	if testing.Verbose() || os.Getenv("SCALER_TEST_LOG") != "" {
		w = logWriter{t}
	}
	srv, err := server.New(cfg, logging.ForTest("scheduler", w).Level(logLevel()))
	if err != nil {
		t.Fatalf("start scheduler: %v", err)
	}
	return &Scheduler{Server: srv, task: wait.Go(t, "scheduler", 10*time.Second, false, srv.Run)}
}

// Stop cancels the scheduler's context.
func (s *Scheduler) Stop() { s.task.Cancel() }

func logLevel() zerolog.Level {
	if os.Getenv("SCALER_TEST_LOG") == "debug" {
		return zerolog.DebugLevel
	}
	return zerolog.InfoLevel
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Peer is a DEALER connected to the scheduler that sends and receives
// decoded messages.
type Peer struct {
	ID []byte
	ep *transport.Endpoint

	// skipped holds the messages Expect received but did not match, so a
	// later Expect still finds them: results may arrive in any order.
	mu      sync.Mutex
	skipped []protocol.Message

	// unbatched holds the elements of a received Batch not yet returned by
	// Recv (Recv runs on one goroutine at a time).
	unbatched []protocol.Message
}

// Dial connects a raw peer with identity id to the scheduler at addr (a
// host of relayed workers, a peer that forges another's messages).
func Dial(addr, id string) (*Peer, error) { return dial(addr, id) }

func dial(addr string, id string) (*Peer, error) {
	ep, err := transport.Connect(transport.Dealer, addr, transport.Options{Identity: []byte(id)})
	if err != nil {
		return nil, err
	}
	return &Peer{ID: []byte(id), ep: ep}, nil
}

// Send encodes and sends m.
func (p *Peer) Send(m protocol.Message) error {
	return p.ep.Send(protocol.MustEncode(m))
}

// SendRaw sends arbitrary frames (for garbage tests).
func (p *Peer) SendRaw(frames ...[]byte) error { return p.ep.Send(frames...) }

// Recv returns the next decoded message, or an error after timeout.
func (p *Peer) Recv(timeout time.Duration) (protocol.Message, error) {
	if len(p.unbatched) > 0 {
		m := p.unbatched[0]
		p.unbatched = p.unbatched[1:]
		return m, nil
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case frames, ok := <-p.ep.Recv():
			if !ok {
				return nil, fmt.Errorf("peer %s: socket closed", p.ID)
			}
			if len(frames) != 1 {
				continue
			}
			m, err := protocol.Decode(frames[0])
			if err != nil {
				return nil, fmt.Errorf("peer %s: %w", p.ID, err)
			}
			if b, ok := m.(*protocol.Batch); ok {
				b.Each(func(_ []byte, m protocol.Message, err error) {
					if err == nil {
						p.unbatched = append(p.unbatched, m)
					}
				})
				if len(p.unbatched) == 0 {
					continue
				}
				m, p.unbatched = p.unbatched[0], p.unbatched[1:]
			}
			return m, nil
		case <-timer.C:
			return nil, fmt.Errorf("peer %s: nothing received within %v", p.ID, timeout)
		}
	}
}

// Expect returns the first message that match accepts, looking first at
// messages earlier Expect calls skipped, then receiving; it fails after
// timeout. Skipped messages stay available to later Expect calls (but not
// to Recv), so waiting for results one by one works whatever their order.
func (p *Peer) Expect(timeout time.Duration, match func(protocol.Message) bool) (protocol.Message, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, m := range p.skipped {
		if match(m) {
			p.skipped = append(p.skipped[:i], p.skipped[i+1:]...)
			return m, nil
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("peer %s: expected message not received within %v", p.ID, timeout)
		}
		m, err := p.Recv(left)
		if err != nil {
			return nil, err
		}
		if match(m) {
			return m, nil
		}
		if _, echo := m.(*protocol.ClientHeartbeatEcho); !echo {
			p.skipped = append(p.skipped, m)
		}
	}
}

// Buffered is how many messages of the last Batch received Recv still has
// to return: a Recv now does not wait for the socket.
func (p *Peer) Buffered() int { return len(p.unbatched) }

// Close closes the socket without saying goodbye (like a crashed process).
func (p *Peer) Close() { _ = p.ep.Close() }

// Client is a Go test client.
type Client struct {
	*Peer
	Storage protocol.Address

	mu        sync.Mutex
	announced map[string]bool // objects sent in ObjectInstruction{create}
}

// NewClient connects a client with a `<pid>|Client|<hex>` identity and
// registers it with one heartbeat (waiting for the echo).
func NewClient(addr string) (*Client, error) {
	p, err := dial(addr, identity.New("Client", ""))
	if err != nil {
		return nil, err
	}
	c := &Client{Peer: p}
	if err := c.Send(&protocol.ClientHeartbeat{}); err != nil {
		return nil, err
	}
	m, err := c.Expect(10*time.Second, func(m protocol.Message) bool { return m.Kind() == protocol.KindClientHeartbeatEcho })
	if err != nil {
		p.Close()
		return nil, err
	}
	c.Storage = m.(*protocol.ClientHeartbeatEcho).ObjectStorage
	return c, nil
}

// FuncObjectID is the function object of the tasks Client.Task builds.
var FuncObjectID = bytes.Repeat([]byte{1}, 32)

// Send sends m. Like a real client it first announces, once each, the
// objects a Task or GraphTask names (ObjectInstruction{create}): the
// scheduler refuses tasks naming objects their client did not announce.
// Use Peer.Send to send a task as it is.
func (c *Client) Send(m protocol.Message) error {
	var ids [][]byte
	switch m := m.(type) {
	case *protocol.Task:
		ids = append(argumentObjects(m), m.FuncObjectID)
	case *protocol.GraphTask:
		for i := range m.Graph {
			ids = append(append(ids, argumentObjects(&m.Graph[i])...), m.Graph[i].FuncObjectID)
		}
	}
	// Held until m is sent: another goroutine's task naming the same
	// objects must not overtake their announcement.
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.announceLocked(ids); err != nil {
		return err
	}
	return c.Peer.Send(m)
}

// SendAll sends tasks as Batches (protocol.Coalesce), as the Python client
// sends what one I/O cycle produced, after announcing their objects once.
func (c *Client) SendAll(tasks []*protocol.Task) error {
	var ids [][]byte
	frames := make([][]byte, len(tasks))
	for i, t := range tasks {
		ids = append(append(ids, argumentObjects(t)...), t.FuncObjectID)
		frames[i] = protocol.MustEncode(t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.announceLocked(ids); err != nil {
		return err
	}
	for _, f := range protocol.Coalesce(frames) {
		if err := c.Peer.SendRaw(f); err != nil {
			return err
		}
	}
	return nil
}

// Announce sends ObjectInstruction{create} for the ids not announced yet
// (for tests that send tasks with SendRaw or Peer.Send).
func (c *Client) Announce(ids ...[]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.announceLocked(ids)
}

func (c *Client) announceLocked(ids [][]byte) error {
	var fresh [][]byte
	for _, id := range ids {
		if len(id) > 0 && !c.announced[string(id)] {
			if c.announced == nil {
				c.announced = map[string]bool{}
			}
			c.announced[string(id)] = true
			fresh = append(fresh, id)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	return c.Peer.Send(&protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: c.ID,
		Metadata: protocol.ObjectMetadata{ObjectIDs: fresh}})
}

func argumentObjects(t *protocol.Task) [][]byte {
	var ids [][]byte
	for _, a := range t.Arguments {
		if a.Type == protocol.ArgumentObjectID {
			ids = append(ids, a.Data)
		}
	}
	return ids
}

// Task builds a task owned by c with a 16-byte id derived from n.
func (c *Client) Task(n uint64) *protocol.Task {
	id := make([]byte, 16)
	for i := 0; i < 8; i++ {
		id[i] = byte(n >> (8 * i))
	}
	copy(id[8:], c.ID[len(c.ID)-8:])
	return &protocol.Task{TaskID: id, Source: c.ID, FuncObjectID: FuncObjectID}
}

// WorkerOptions configure a test worker.
type WorkerOptions struct {
	Name         string
	QueueSize    uint32
	Capabilities map[string]int64
	// Hold keeps tasks without answering (a worker busy forever); cancels
	// of held tasks are answered CancelFailed unless forced.
	Hold bool
	// Heartbeat is the heartbeat interval (default 200 ms).
	Heartbeat time.Duration
	// DropResult > 0 loses the DropResult-th task received (counting from
	// 1): no result is sent and the worker forgets it, as if the task or
	// its result had vanished on the way. Heartbeats report the tasks
	// held and the last echo seq, so the scheduler's reconciliation
	// notices (docs/protocol.md).
	DropResult int
	// InlineResult, when set, is every result's content, sent inline with
	// no result object (as a worker answers a task whose outcome is small);
	// otherwise the result names the task's function object.
	InlineResult []byte
}

// Worker is a Go echo worker: it answers every Task with a successful
// TaskResult whose result is the task's function object id, without
// touching object storage.
type Worker struct {
	*Peer
	opt  WorkerOptions
	quit chan struct{}
	done chan struct{}

	mu      sync.Mutex
	tasks   [][]byte // ids received, in order
	held    map[string]bool
	got     []protocol.Message
	echoSeq uint64 // Seq of the last WorkerHeartbeatEcho
	dropped [][]byte
	once    sync.Once
}

// ClientFor is NewClient for a test: the test fails if the client cannot
// connect, and the client is closed when the test ends.
func ClientFor(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := NewClient(addr)
	return expect.Opened(t, "scalertest client of "+addr, c, err)
}

// WorkerFor is StartWorker for a test: the test fails if the worker cannot
// register, and it leaves (Stop) when the test ends, unless it was stopped
// or killed before.
func WorkerFor(t testing.TB, addr string, opt WorkerOptions) *Worker {
	t.Helper()
	w, err := StartWorker(addr, opt)
	if err != nil {
		t.Fatalf("scalertest worker on %s: %v", addr, err)
	}
	t.Cleanup(w.Stop)
	return w
}

// StartWorker connects and registers a worker.
func StartWorker(addr string, opt WorkerOptions) (*Worker, error) {
	if opt.Name == "" {
		opt.Name = "test"
	}
	if opt.QueueSize == 0 {
		opt.QueueSize = 1000
	}
	if opt.Heartbeat == 0 {
		opt.Heartbeat = 200 * time.Millisecond
	}
	p, err := dial(addr, identity.New("Worker", opt.Name))
	if err != nil {
		return nil, err
	}
	w := &Worker{Peer: p, opt: opt, quit: make(chan struct{}), done: make(chan struct{}), held: map[string]bool{}}
	if err := w.heartbeat(); err != nil {
		return nil, err
	}
	go w.run()
	return w, nil
}

func (w *Worker) heartbeat() error {
	hb := &protocol.WorkerHeartbeat{QueueSize: w.opt.QueueSize, Capabilities: w.opt.Capabilities, TaskLock: true, Tasks: [][]byte{}}
	w.mu.Lock()
	hb.EchoSeq = w.echoSeq
	for id := range w.held {
		hb.Tasks = append(hb.Tasks, []byte(id))
	}
	w.mu.Unlock()
	return w.Send(hb)
}

func (w *Worker) run() {
	defer close(w.done)
	tick := time.NewTicker(w.opt.Heartbeat)
	defer tick.Stop()
	buf := make([]byte, 0, 256)
	for {
		select {
		case <-w.quit:
			return
		case <-tick.C:
			_ = w.heartbeat()
		case frames, ok := <-w.ep.Recv():
			if !ok {
				return
			}
			_ = EachMessage(frames, func(m protocol.Message) error {
				buf = w.handle(m, buf)
				return nil
			})
		}
	}
}

// handle answers one message from the scheduler; buf is scratch space.
func (w *Worker) handle(m protocol.Message, buf []byte) []byte {
	switch m := m.(type) {
	case *protocol.Task:
		w.mu.Lock()
		w.tasks = append(w.tasks, m.TaskID)
		drop := len(w.tasks) == w.opt.DropResult
		if drop {
			w.dropped = append(w.dropped, m.TaskID)
		}
		if w.opt.Hold && !drop {
			w.held[string(m.TaskID)] = true
		}
		w.mu.Unlock()
		if !w.opt.Hold && !drop {
			r := protocol.TaskResult{TaskID: m.TaskID, Type: protocol.ResultSuccess, Results: [][]byte{m.FuncObjectID}}
			if w.opt.InlineResult != nil {
				r.Results, r.Inline = [][]byte{}, w.opt.InlineResult
			}
			buf, _ = protocol.Encode(buf[:0], &r)
			_ = w.ep.Send(append([]byte(nil), buf...))
		}
	case *protocol.TaskCancel:
		w.mu.Lock()
		held := w.held[string(m.TaskID)]
		typ := protocol.CancelConfirmNotFound
		if held && m.Force {
			delete(w.held, string(m.TaskID))
			typ = protocol.CancelConfirmCanceled
		} else if held {
			typ = protocol.CancelConfirmFailed
		}
		w.got = append(w.got, m)
		w.mu.Unlock()
		_ = w.Send(&protocol.TaskCancelConfirm{TaskID: m.TaskID, Type: typ})
	case *protocol.WorkerHeartbeatEcho:
		w.mu.Lock()
		w.echoSeq = m.Seq
		w.got = append(w.got, m)
		w.mu.Unlock()
	default:
		w.mu.Lock()
		w.got = append(w.got, m)
		w.mu.Unlock()
	}
	return buf
}

// Tasks returns the ids of the tasks received so far.
func (w *Worker) Tasks() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.tasks...)
}

// Dropped returns the ids of the tasks lost on purpose (DropResult).
func (w *Worker) Dropped() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.dropped...)
}

// Received returns the non-task messages received so far.
func (w *Worker) Received() []protocol.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]protocol.Message(nil), w.got...)
}

// Kill closes the socket abruptly, like a crashed worker.
func (w *Worker) Kill() {
	w.once.Do(func() {
		close(w.quit)
		<-w.done
		w.Close()
	})
}

// Stop sends DisconnectRequest and closes.
func (w *Worker) Stop() {
	w.once.Do(func() {
		close(w.quit)
		<-w.done
		_ = w.Send(&protocol.DisconnectRequest{Worker: w.ID})
		w.Close()
	})
}

// WaitFor polls cond every few milliseconds until it holds or timeout.
func WaitFor(timeout time.Duration, cond func() bool) bool { return wait.For(timeout, cond) }
