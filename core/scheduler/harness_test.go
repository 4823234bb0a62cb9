package scheduler

import (
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/core/protocol"
)

// sent is one message the scheduler sent to a peer.
type sent struct {
	to  string
	msg protocol.Message
}

// fakeOutbox records everything the scheduler emits.
type fakeOutbox struct {
	sent      []sent
	published []protocol.Message
	deleted   []string
	dups      [][2]string
	scales    []ScaleRequest
	deaf      bool // Listening reports false: nobody subscribes to the monitor
}

func (o *fakeOutbox) Send(to []byte, m protocol.Message) {
	o.sent = append(o.sent, sent{string(to), m})
}
func (o *fakeOutbox) Publish(m protocol.Message) { o.published = append(o.published, m) }
func (o *fakeOutbox) Listening() bool            { return !o.deaf }
func (o *fakeOutbox) DeleteObject(id []byte)     { o.deleted = append(o.deleted, string(id)) }
func (o *fakeOutbox) Scale(r ScaleRequest)       { o.scales = append(o.scales, r) }
func (o *fakeOutbox) DuplicateObject(newID, src []byte) {
	o.dups = append(o.dups, [2]string{string(newID), string(src)})
}

// harness drives a Scheduler with a fake clock.
type harness struct {
	t   testing.TB
	s   *Scheduler
	out *fakeOutbox
	now time.Time
	ids int
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newHarness(t testing.TB, mod func(*Config)) *harness {
	cfg := Config{
		MaxTasksWaiting:     -1,
		ClientTimeout:       10 * time.Second,
		WorkerTimeout:       10 * time.Second,
		BalanceInterval:     time.Second,
		BalanceTriggerTimes: 2,
		Protected:           true,
		ObjectStorage:       protocol.Address{Host: "127.0.0.1", Port: 2346},
	}
	h := &harness{t: t, out: &fakeOutbox{}, now: epoch}
	cfg.NewObjectID = func(client []byte) []byte {
		h.ids++
		return []byte(fmt.Sprintf("dup%d", h.ids))
	}
	if mod != nil {
		mod(&cfg)
	}
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = testWriter{t}
	}
	h.s = New(cfg, h.out, logging.ForTest("scheduler", w), h.now)
	return h
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (h *harness) handle(from string, m protocol.Message) { h.s.Handle([]byte(from), m, h.now) }
func (h *harness) advance(d time.Duration)                { h.now = h.now.Add(d); h.s.Tick(h.now) }

// take returns and clears what was sent to peers.
func (h *harness) take() []sent {
	s := h.out.sent
	h.out.sent = nil
	return s
}

// takePub returns and clears what was published.
func (h *harness) takePub() []protocol.Message {
	p := h.out.published
	h.out.published = nil
	return p
}

// client registers client id with the objects the test tasks name (their
// function "fn", arguments "arg" and "obj"): the scheduler refuses tasks
// that refer to objects their client did not create.
func (h *harness) client(id string) {
	h.handle(id, &protocol.ClientHeartbeat{})
	h.createObjects(id, harnessObjects...)
}

var harnessObjects = []string{"fn", "arg", "obj"}

func isHarnessObject(id string) bool {
	for _, o := range harnessObjects {
		if o == id {
			return true
		}
	}
	return false
}

// userObjects counts the tracked objects other than the harness's own.
func (h *harness) userObjects() int {
	n := 0
	for id := range h.s.objects {
		if !isHarnessObject(id) {
			n++
		}
	}
	return n
}

// userDeleted is what was deleted from storage, without the harness's own
// objects.
func (h *harness) userDeleted() []string {
	var out []string
	for _, id := range h.out.deleted {
		if !isHarnessObject(id) {
			out = append(out, id)
		}
	}
	return out
}

// withoutHarnessObjects drops the harness's own objects from the
// ObjectDelete batches in ss (and batches left empty).
func withoutHarnessObjects(ss []sent) []sent {
	var out []sent
	for _, s := range ss {
		if m, ok := s.msg.(*protocol.ObjectInstruction); ok && m.Type == protocol.InstructionDelete {
			c := *m
			c.Metadata.ObjectIDs = nil
			for _, id := range m.Metadata.ObjectIDs {
				if !isHarnessObject(string(id)) {
					c.Metadata.ObjectIDs = append(c.Metadata.ObjectIDs, id)
				}
			}
			if len(c.Metadata.ObjectIDs) == 0 {
				continue
			}
			s.msg = &c
		}
		out = append(out, s)
	}
	return out
}

func (h *harness) worker(id string, queue uint32, caps ...string) {
	hb := &protocol.WorkerHeartbeat{QueueSize: queue}
	if len(caps) > 0 {
		hb.Capabilities = map[string]int64{}
		for _, c := range caps {
			hb.Capabilities[c] = -1
		}
	}
	h.handle(id, hb)
}

// beat is a heartbeat of the registered worker id that acknowledges the
// last echo it was sent and lists the tasks it was given, as a live
// worker's does (only such heartbeats keep it alive).
func (h *harness) beat(id string, queue uint32) {
	hb := &protocol.WorkerHeartbeat{QueueSize: queue}
	if w := h.s.workers.byID[id]; w != nil {
		hb.EchoSeq = w.echoSeq
		hb.Tasks = [][]byte{} // and it holds what it was given
		for e := w.tasks.Front(); e != nil; e = e.Next() {
			hb.Tasks = append(hb.Tasks, e.Value.(*task).msg.TaskID)
		}
	}
	h.handle(id, hb)
}

// createObjects registers objects owned by client c.
func (h *harness) createObjects(c string, ids ...string) {
	m := &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte(c)}
	for _, id := range ids {
		m.Metadata.ObjectIDs = append(m.Metadata.ObjectIDs, []byte(id))
	}
	h.handle(c, m)
}

// deleteObjects releases client c's ownership of ids.
func (h *harness) deleteObjects(c string, ids ...string) {
	m := &protocol.ObjectInstruction{Type: protocol.InstructionDelete, ObjectUser: []byte(c)}
	for _, id := range ids {
		m.Metadata.ObjectIDs = append(m.Metadata.ObjectIDs, []byte(id))
	}
	h.handle(c, m)
}

func (h *harness) wasDeleted(id string) bool {
	for _, d := range h.out.deleted {
		if d == id {
			return true
		}
	}
	return false
}

func newTask(id, owner string, caps ...string) *protocol.Task {
	t := &protocol.Task{TaskID: []byte(id), Source: []byte(owner), FuncObjectID: []byte("fn")}
	if len(caps) > 0 {
		t.Capabilities = map[string]int64{}
		for _, c := range caps {
			t.Capabilities[c] = -1
		}
	}
	return t
}

func (h *harness) submit(owner, id string, caps ...string) {
	h.handle(owner, newTask(id, owner, caps...))
}

func (h *harness) result(worker, id string, typ protocol.TaskResultType, results ...string) {
	r := &protocol.TaskResult{TaskID: []byte(id), Type: typ}
	for _, o := range results {
		r.Results = append(r.Results, []byte(o))
	}
	h.handle(worker, r)
}

func (h *harness) confirm(worker, id string, c protocol.TaskCancelConfirmType) {
	h.handle(worker, &protocol.TaskCancelConfirm{TaskID: []byte(id), Type: c})
}

func (h *harness) cancel(from, id string, force bool) {
	h.handle(from, &protocol.TaskCancel{TaskID: []byte(id), Force: force})
}

// describe renders sends as "to:Kind(detail)" lines for table comparison.
func describe(ss []sent) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.to+":"+short(s.msg))
	}
	return out
}

func short(m protocol.Message) string {
	switch m := m.(type) {
	case *protocol.Task:
		return "Task(" + string(m.TaskID) + ")"
	case *protocol.TaskCancel:
		return fmt.Sprintf("TaskCancel(%s,force=%v)", m.TaskID, m.Force)
	case *protocol.TaskCancelConfirm:
		return fmt.Sprintf("Confirm(%s,%v)", m.TaskID, m.Type)
	case *protocol.TaskResult:
		return fmt.Sprintf("Result(%s,%v,%d)", m.TaskID, m.Type, len(m.Results))
	case *protocol.TaskLog:
		return "TaskLog(" + string(m.TaskID) + ")"
	case *protocol.ObjectInstruction:
		ids := make([]string, len(m.Metadata.ObjectIDs))
		for i, id := range m.Metadata.ObjectIDs {
			ids[i] = string(id)
		}
		return fmt.Sprintf("Object%v(%s)", m.Type, strings.Join(ids, ","))
	case *protocol.ClientShutdownResponse:
		return fmt.Sprintf("ShutdownResponse(%v)", m.Accepted)
	case *protocol.ClientDisconnect:
		return fmt.Sprintf("ClientDisconnect(%v)", m.Type)
	case *protocol.StateTask:
		return fmt.Sprintf("StateTask(%s,%v,%s)", m.TaskID, m.State, m.Worker)
	case *protocol.StateWorker:
		return fmt.Sprintf("StateWorker(%s,%v)", m.WorkerID, m.State)
	case *protocol.StateBalanceAdvice:
		ids := make([]string, len(m.TaskIDs))
		for i, id := range m.TaskIDs {
			ids[i] = string(id)
		}
		return fmt.Sprintf("BalanceAdvice(%s:%s)", m.WorkerID, strings.Join(ids, ","))
	case *protocol.StateGraphTask:
		ps := make([]string, len(m.ParentTaskIDs))
		for i, id := range m.ParentTaskIDs {
			ps[i] = string(id)
		}
		return fmt.Sprintf("StateGraphTask(%s,%s,%v,[%s])", m.GraphTaskID, m.TaskID, m.NodeType, strings.Join(ps, ","))
	}
	return m.Kind().String()
}

func describePub(ms []protocol.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = short(m)
	}
	return out
}

// filterKinds keeps messages of the given kinds.
func filter(ss []sent, drop ...protocol.Kind) []sent {
	var out []sent
next:
	for _, s := range ss {
		for _, k := range drop {
			if s.msg.Kind() == k {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

func equal(t testing.TB, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

// noEchoes drops heartbeat echoes, which most tests do not care about.
func noEchoes(ss []sent) []sent {
	return filter(ss, protocol.KindClientHeartbeatEcho, protocol.KindWorkerHeartbeatEcho)
}

// checkInvariants verifies the scheduler's internal consistency.
func checkInvariants(t testing.TB, s *Scheduler) {
	t.Helper()
	// clientLoad: each owner's plain tasks plus its graphs' nodes.
	load := map[string]int{}
	for owner, set := range s.clientTasks {
		for id := range set {
			if g := s.graphs[id]; g != nil {
				load[owner] += len(g.order)
			} else {
				load[owner]++
			}
		}
	}
	if !maps.Equal(load, s.clientLoad) {
		t.Fatalf("clientLoad %v, want %v", s.clientLoad, load)
	}
	waiting := 0
	for _, g := range s.waiting {
		if g.queue.Len() == 0 {
			t.Fatalf("empty wait group %q kept", g.key)
		}
		for tk := g.queue.Front(); tk != nil; tk = tk.qnext {
			if tk.group != g {
				t.Fatalf("waiting task %q in the queue of another group", tk.id)
			}
			if tk.state != protocol.TaskStateInactive || tk.worker != nil || s.tasks[tk.id] != tk {
				t.Fatalf("waiting task %q in state %v worker %v", tk.id, tk.state, tk.worker != nil)
			}
			waiting++
		}
	}
	if waiting != s.numWaiting {
		t.Fatalf("numWaiting %d, counted %d", s.numWaiting, waiting)
	}
	onWorkers := 0
	for _, w := range s.workers.order {
		if w.tasks.Len() > w.queueSize {
			t.Fatalf("worker %s holds %d tasks, queue size %d", w.id, w.tasks.Len(), w.queueSize)
		}
		for e := w.tasks.Front(); e != nil; e = e.Next() {
			tk := e.Value.(*task)
			if tk.worker != w || s.tasks[tk.id] != tk {
				t.Fatalf("task %q on worker %s is inconsistent", tk.id, w.id)
			}
			onWorkers++
		}
		if (w.free() > 0) != (w.heapIdx[0] >= 0) || w.group != nil && (w.free() > 0) != (w.heapIdx[1] >= 0) {
			t.Fatalf("worker %s free %d heap index %d", w.id, w.free(), w.heapIdx)
		}
	}
	for id, tk := range s.tasks {
		switch tk.state {
		case protocol.TaskStateInactive:
			if tk.group == nil {
				t.Fatalf("inactive task %q not waiting", id)
			}
		case protocol.TaskStateRunning, protocol.TaskStateCanceling, protocol.TaskStateBalanceCanceling:
			if tk.worker == nil {
				t.Fatalf("task %q in %v without worker", id, tk.state)
			}
		default:
			t.Fatalf("task %q kept in state %v", id, tk.state)
		}
	}
	if onWorkers+waiting != len(s.tasks) {
		t.Fatalf("%d tasks on workers + %d waiting != %d tasks", onWorkers, waiting, len(s.tasks))
	}
	var cur uint64
	for st := protocol.TaskState(0); st < protocol.NumTaskStates; st++ {
		if !st.Terminal() {
			cur += s.counts[st]
		}
	}
	if cur != uint64(len(s.tasks)) {
		t.Fatalf("non-terminal counts %d != %d tasks", cur, len(s.tasks))
	}
}
