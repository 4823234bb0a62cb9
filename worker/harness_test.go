package worker

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/identity"
	"github.com/opengris/scaler/internal/scalertest/programs"
	"github.com/opengris/scaler/internal/scalertest/wait"
	"github.com/opengris/scaler/storage"
	"github.com/opengris/scaler/transport"
)

// repoRoot is the module root (this file is in worker/).
// testLog returns a logger writing to the test log (and to stderr with -v).
func testLog(t testing.TB, component string) zerolog.Logger {
	return logging.ForTest(component, testWriter{t})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startStorage runs an in-process object storage server, stopped when the
// test ends.
func startStorage(t testing.TB) string {
	addr, _ := startStoppableStorage(t)
	return addr
}

// startStoppableStorage is startStorage whose server the test can also stop
// earlier: stop returns once the server has stopped (later calls at once).
func startStoppableStorage(t testing.TB) (addr string, stop func()) {
	srv, err := storage.NewServer(storage.Config{Address: "tcp://127.0.0.1:0"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return srv.Addr(), stop
}

// helper drives testdata/worker/taskhelper.py: it stores functions and
// arguments in object storage the way a client does and reads results.
type helper struct {
	t      testing.TB
	client []byte
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	mu     sync.Mutex
}

func newHelper(t testing.TB, python, storageAddr string) *helper {
	return newHelperFor(t, python, storageAddr, []byte(identity.New("Client", "")))
}

// newHelperFor is newHelper for the given client id.
func newHelperFor(t testing.TB, python, storageAddr string, client []byte) *helper {
	cmd := exec.Command(python, filepath.Join(programs.RepoRoot(), "testdata", "worker", "taskhelper.py"), storageAddr, hex.EncodeToString(client))
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{t: t, client: client, cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
	h.call(map[string]string{"op": "serializer"})
	return h
}

func (h *helper) call(cmd map[string]string) map[string]string {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	b, _ := json.Marshal(cmd)
	if _, err := h.in.Write(append(b, '\n')); err != nil {
		h.t.Fatal(err)
	}
	line, err := h.out.ReadString('\n')
	if err != nil {
		h.t.Fatalf("task helper: %v", err)
	}
	var reply map[string]string
	if err := json.Unmarshal([]byte(line), &reply); err != nil {
		h.t.Fatalf("task helper reply %q: %v", line, err)
	}
	return reply
}

func (h *helper) id(reply map[string]string) []byte {
	h.t.Helper()
	b, err := hex.DecodeString(reply["id"])
	if err != nil || len(b) != 32 {
		h.t.Fatalf("bad object id in %v", reply)
	}
	return b
}

// fn stores the function `name` defined by src and returns its object id.
func (h *helper) fn(src, name string) []byte {
	return h.id(h.call(map[string]string{"op": "func", "src": src, "name": name}))
}

// arg stores the value of a Python expression.
func (h *helper) arg(expr string) []byte {
	return h.id(h.call(map[string]string{"op": "arg", "expr": expr}))
}

// result fetches a result object: its repr, or "!ExcType: message".
func (h *helper) result(id []byte) string {
	r := h.call(map[string]string{"op": "get", "id": hex.EncodeToString(id)})
	if e, ok := r["error"]; ok {
		return "!" + e + ": " + r["message"]
	}
	return r["value"]
}

// task builds a Task message for function fn with object-id arguments. It
// asks to keep the result (KeepResult), so that tests can read it from
// storage; set KeepResult false for an inline-only small result.
func (h *helper) task(fn []byte, priority uint32, args ...[]byte) *protocol.Task {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	t := &protocol.Task{TaskID: id, Source: h.client, FuncObjectID: fn, Priority: priority, Capabilities: map[string]int64{},
		KeepResult: true}
	for _, a := range args {
		t.Arguments = append(t.Arguments, protocol.Argument{Type: protocol.ArgumentObjectID, Data: a})
	}
	return t
}

// fakeScheduler is a ROUTER that a worker connects to.
type fakeScheduler struct {
	t        testing.TB
	ep       *transport.Endpoint
	storage  protocol.Address
	mu       sync.Mutex
	worker   []byte
	seen     map[string]bool // every worker identity heard from
	echo     bool
	echoSeq  uint64 // Seq of the last echo sent
	instance []byte // announced in echoes; nil: none, as a scheduler that does not say
	// lastEchoed is the instance of the last echo sent (set before its
	// heartbeat goes to the heartbeat channel).
	lastEchoed []byte
	msgs       chan protocol.Message
	heartbeat  chan *protocol.WorkerHeartbeat
}

func newFakeScheduler(t testing.TB, storageAddr string) *fakeScheduler {
	return newFakeSchedulerAt(t, storageAddr, "tcp://127.0.0.1:0", "")
}

// newFakeSchedulerAt binds the fake scheduler to addr (a restarted
// scheduler binds the address of the one before it) and announces instance
// from its first echo on.
func newFakeSchedulerAt(t testing.TB, storageAddr, bind, instance string) *fakeScheduler {
	ep, err := transport.Bind(transport.Router, bind, transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := parseStorageAddress(storageAddr)
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeScheduler{t: t, ep: ep, storage: addr, echo: true,
		msgs: make(chan protocol.Message, 10000), heartbeat: make(chan *protocol.WorkerHeartbeat, 100)}
	if instance != "" {
		s.instance = []byte(instance)
	}
	go s.loop()
	t.Cleanup(func() { _ = ep.Close() })
	return s
}

func (s *fakeScheduler) loop() {
	for msg := range s.ep.Recv() {
		if len(msg) != 2 {
			continue
		}
		m, err := protocol.Decode(msg[1])
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.worker = msg[0]
		if s.seen == nil {
			s.seen = map[string]bool{}
		}
		s.seen[string(msg[0])] = true
		s.mu.Unlock()
		if batch, ok := m.(*protocol.Batch); ok {
			// Each element as if it had arrived alone (docs/protocol.md §7.6).
			batch.Each(func(_ []byte, m protocol.Message, err error) {
				if err == nil {
					s.handle(msg[0], m)
				}
			})
			continue
		}
		s.handle(msg[0], m)
	}
}

func (s *fakeScheduler) handle(from []byte, m protocol.Message) {
	s.mu.Lock()
	echo, instance := s.echo, s.instance
	if _, ok := m.(*protocol.WorkerHeartbeat); ok && echo {
		s.echoSeq++
	}
	seq := s.echoSeq
	s.mu.Unlock()
	if hb, ok := m.(*protocol.WorkerHeartbeat); ok {
		if echo {
			_ = s.ep.Send(from, protocol.MustEncode(&protocol.WorkerHeartbeatEcho{ObjectStorage: s.storage, Seq: seq, InstanceID: instance}))
			s.mu.Lock()
			s.lastEchoed = instance
			s.mu.Unlock()
		}
		select {
		case s.heartbeat <- hb:
		default:
		}
		return
	}
	s.msgs <- m
}

// workers returns every worker identity heard from so far.
func (s *fakeScheduler) workers() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.seen))
	for id := range s.seen {
		out[id] = true
	}
	return out
}

// setInstance changes the instance id announced from the next echo on.
func (s *fakeScheduler) setInstance(id string) {
	s.mu.Lock()
	s.instance = []byte(id)
	s.mu.Unlock()
}

// echoed waits until the worker has been sent an echo with the current
// instance id.
func (s *fakeScheduler) echoed(d time.Duration) {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case <-s.heartbeat:
			s.mu.Lock()
			done := s.instance != nil && string(s.lastEchoed) == string(s.instance)
			s.mu.Unlock()
			if done {
				return
			}
		case <-deadline:
			s.t.Fatalf("no echo with instance %q within %s", s.instance, d)
		}
	}
}

func (s *fakeScheduler) send(m protocol.Message) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		w := s.worker
		s.mu.Unlock()
		if w != nil {
			if err := s.ep.Send(w, protocol.MustEncode(m)); err != nil {
				s.t.Fatal(err)
			}
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatal("no worker connected to the fake scheduler")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// next returns the next non-heartbeat message from the worker.
func (s *fakeScheduler) next(d time.Duration) protocol.Message {
	s.t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(d):
		s.t.Fatalf("no message from the worker within %s", d)
		return nil
	}
}

// result waits for the TaskResult of task id, skipping object instructions
// and logs; other messages fail the test.
func (s *fakeScheduler) result(id []byte, d time.Duration) *protocol.TaskResult {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m := s.next(time.Until(deadline))
		switch m := m.(type) {
		case *protocol.TaskResult:
			if string(m.TaskID) != string(id) {
				s.t.Fatalf("result for another task %x (want %x)", m.TaskID, id)
			}
			return m
		case *protocol.ObjectInstruction, *protocol.TaskLog:
		default:
			s.t.Fatalf("unexpected %T while waiting for a result", m)
		}
	}
}

// workerEnv starts storage, a fake scheduler, a task helper and a worker.
type workerEnv struct {
	t       testing.TB
	python  string
	storage string
	sched   *fakeScheduler
	h       *helper
	agent   *wait.Task
}

func startWorker(t testing.TB, mod func(*Config)) *workerEnv {
	python := programs.Python(t)
	st := startStorage(t)
	e := &workerEnv{t: t, python: python, storage: st, sched: newFakeScheduler(t, st)}
	e.h = newHelper(t, python, st)
	cfg := Config{
		Name:              "test",
		SchedulerAddress:  e.sched.ep.Addr(),
		HeartbeatInterval: time.Second,
		DeathTimeout:      60 * time.Second,
		Python:            python,
		KillDelay:         time.Second,
		LoggingLevel:      "WARNING",
	}
	if mod != nil {
		mod(&cfg)
	}
	log := testLog(t, "worker")
	e.agent = wait.Go(t, "worker", 15*time.Second, false, func(ctx context.Context) error { return Run(ctx, cfg, log) })
	return e
}

// run sends task to the worker and waits up to d for its result.
func (e *workerEnv) run(task *protocol.Task, d time.Duration) *protocol.TaskResult {
	e.sched.send(task)
	return e.sched.result(task.TaskID, d)
}

// call runs fn on args (Python expressions) as a task of priority 0 and
// returns its result, which must come within 20 s.
func (e *workerEnv) call(fn []byte, args ...string) *protocol.TaskResult {
	ids := make([][]byte, len(args))
	for i, a := range args {
		ids[i] = e.h.arg(a)
	}
	return e.run(e.h.task(fn, 0, ids...), 20*time.Second)
}

// stop cancels the worker and returns Run's result.
func (e *workerEnv) stop() error {
	e.agent.Cancel()
	err, ended := e.agent.Ended(15 * time.Second)
	if !ended {
		e.t.Fatal("worker did not stop")
	}
	return err
}

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscan(s, v) }
