package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// Item numbers refer to reference/scheduler.md §12.

func TestHeartbeats(t *testing.T) { // items 7, 8, 9, 10, 11
	h := newHarness(t, nil)
	h.client("c")
	got := h.take()
	if len(got) != 1 || got[0].to != "c" {
		t.Fatalf("want one echo to c, got %v", describe(got))
	}
	echo := got[0].msg.(*protocol.ClientHeartbeatEcho)
	if echo.ObjectStorage.Port != 2346 || echo.ObjectStorage.Host != "127.0.0.1" {
		t.Fatalf("echo %+v", echo)
	}
	if len(echo.InstanceID) != 16 {
		t.Fatalf("echo instance id %x: want 16 random bytes", echo.InstanceID)
	}
	// A waiting task is dispatched when the first worker registers, after
	// StateWorker{connected} and after the echo, which carries the same
	// instance id (a worker that finds it changed drops older work first).
	h.submit("c", "t1")
	h.takePub()
	h.worker("w", 2, "gpu")
	reg := h.take()
	equal(t, "worker registration", describe(reg), []string{"w:WorkerHeartbeatEcho", "w:Task(t1)"})
	if wecho := reg[0].msg.(*protocol.WorkerHeartbeatEcho); string(wecho.InstanceID) != string(echo.InstanceID) {
		t.Fatalf("worker echo instance %x, client echo %x", wecho.InstanceID, echo.InstanceID)
	}
	if other := New(Config{}, nil, h.s.log, h.now); string(other.cfg.InstanceID) == string(echo.InstanceID) {
		t.Fatal("two schedulers drew the same instance id")
	}
	equal(t, "publications", describePub(h.takePub()), []string{"StateWorker(w,Connected)", "StateTask(t1,Running,w)"})
	// Later heartbeats change neither queue size nor capabilities.
	h.handle("w", &protocol.WorkerHeartbeat{QueueSize: 100})
	if w := h.s.workers.byID["w"]; w.queueSize != 2 || len(w.caps) != 1 {
		t.Fatalf("queue %d caps %v", w.queueSize, w.caps)
	}
	equal(t, "second heartbeat", describe(h.take()), []string{"w:WorkerHeartbeatEcho"})
	// Client refresh and re-registration after a timeout.
	h.advance(9 * time.Second)
	h.client("c")
	h.advance(9 * time.Second)
	if h.s.clients["c"] == nil {
		t.Fatal("client timed out despite heartbeat")
	}
	h.advance(2 * time.Second)
	if h.s.clients["c"] != nil {
		t.Fatal("client did not time out")
	}
	h.client("c")
	if h.s.clients["c"] == nil {
		t.Fatal("client not re-registered")
	}
	checkInvariants(t, h.s)
}

func TestTaskPlacement(t *testing.T) {
	type step struct {
		name string
		do   func(h *harness)
		want []string
	}
	cases := []struct {
		name  string
		setup func(h *harness)
		steps []step
	}{
		{"queue size respected, waiting FIFO, retry after result (12,15,17)", func(h *harness) {
			h.client("c")
			h.worker("w", 1)
		}, []step{
			{"t1 placed", func(h *harness) { h.submit("c", "t1") }, []string{"w:Task(t1)"}},
			{"t2 waits", func(h *harness) { h.submit("c", "t2") }, nil},
			{"t3 waits", func(h *harness) { h.submit("c", "t3") }, nil},
			{"result frees slot", func(h *harness) { h.result("w", "t1", protocol.ResultSuccess, "r1") },
				[]string{"c:Result(t1,Success,1)", "w:Task(t2)"}},
			{"cancel confirm frees slot", func(h *harness) {
				h.cancel("c", "t2", true)
				h.confirm("w", "t2", protocol.CancelConfirmCanceled)
			}, []string{"w:TaskCancel(t2,force=true)", "c:Confirm(t2,Canceled)", "w:Task(t3)"}},
		}},
		{"owner is the sender, a source naming another client is refused (13, issue 12), own duplicate ignored (14), another client's id refused, forwarded unchanged (19)", func(h *harness) {
			h.client("owner")
			h.client("other")
			h.worker("w", 5)
		}, []step{
			{"source of another client", func(h *harness) { h.handle("other", newTask("t1", "owner")) }, []string{"other:Result(t1,Rejected,0)"}},
			{"own task", func(h *harness) { h.submit("owner", "t1") }, []string{"w:Task(t1)"}},
			{"own duplicate ignored", func(h *harness) { h.handle("owner", newTask("t1", "owner")) }, nil},
			// 1.12.5 ignored it too, so the other client's task never got an answer.
			{"another client's id refused to it", func(h *harness) { h.handle("other", newTask("t1", "other")) }, []string{"other:Result(t1,Rejected,0)"}},
			{"empty source is the sender", func(h *harness) { h.handle("owner", newTask("t2", "")) }, []string{"w:Task(t2)"}},
			{"result to owner", func(h *harness) { h.result("w", "t1", protocol.ResultFailed, "e") }, []string{"owner:Result(t1,Failed,1)"}},
			{"result of the empty-source task to its sender", func(h *harness) { h.result("w", "t2", protocol.ResultSuccess) }, []string{"owner:Result(t2,Success,0)"}},
		}},
		{"even policy honours capabilities and uses any worker with room (33, intended)", func(h *harness) {
			h.client("c")
			h.worker("a", 1)
			h.worker("b", 3, "gpu")
		}, []step{
			{"gpu task to b", func(h *harness) { h.submit("c", "g1", "gpu") }, []string{"b:Task(g1)"}},
			{"plain to a", func(h *harness) { h.submit("c", "t1") }, []string{"a:Task(t1)"}},
			{"a full, b has room", func(h *harness) { h.submit("c", "t2") }, []string{"b:Task(t2)"}},
			{"needs cpu: nobody", func(h *harness) { h.submit("c", "x", "cpu") }, nil},
			{"not blocked behind x (18, intended)", func(h *harness) { h.submit("c", "t3") }, []string{"b:Task(t3)"}},
			{"cpu worker arrives", func(h *harness) { h.worker("c1", 1, "cpu") }, []string{"c1:Task(x)"}},
		}},
		{"capability policy: superset, least loaded (35)", func(h *harness) {
			h.s.cfg.Policy = PolicyCapability
			h.client("c")
			h.worker("a", 5, "gpu", "linux")
			h.worker("b", 5, "linux")
		}, []step{
			{"linux: tie by id", func(h *harness) { h.submit("c", "t1", "linux") }, []string{"a:Task(t1)"}},
			{"linux: least loaded", func(h *harness) { h.submit("c", "t2", "linux") }, []string{"b:Task(t2)"}},
			{"gpu+linux only a", func(h *harness) { h.submit("c", "t3", "gpu", "linux") }, []string{"a:Task(t3)"}},
			{"gpu+mac nobody", func(h *harness) { h.submit("c", "t4", "gpu", "mac") }, nil},
			{"plain anywhere", func(h *harness) { h.submit("c", "t5") }, []string{"b:Task(t5)"}},
		}},
		{"max tasks waiting refuses (16, intended)", func(h *harness) {
			h.s.cfg.MaxTasksWaiting = 1
			h.client("c")
			h.worker("w", 1)
		}, []step{
			{"placed", func(h *harness) { h.submit("c", "t1") }, []string{"w:Task(t1)"}},
			{"waits", func(h *harness) { h.submit("c", "t2") }, nil},
			{"refused", func(h *harness) { h.submit("c", "t3") }, []string{"c:Result(t3,Rejected,0)"}},
		}},
		{"unknown result, confirm and log dropped (22, 59)", func(h *harness) {
			h.worker("w", 1)
		}, []step{
			{"result", func(h *harness) { h.result("w", "zz", protocol.ResultSuccess) }, nil},
			{"confirm", func(h *harness) { h.confirm("w", "zz", protocol.CancelConfirmCanceled) }, nil},
			{"log", func(h *harness) { h.handle("w", &protocol.TaskLog{TaskID: []byte("zz"), Content: "x"}) }, nil},
		}},
		{"task log routed to owner (59)", func(h *harness) {
			h.client("c")
			h.worker("w", 1)
			h.submit("c", "t1")
			h.take()
		}, []step{
			{"log", func(h *harness) { h.handle("w", &protocol.TaskLog{TaskID: []byte("t1"), Content: "hi"}) }, []string{"c:TaskLog(t1)"}},
			{"finished", func(h *harness) { h.result("w", "t1", protocol.ResultSuccess) }, []string{"c:Result(t1,Success,0)"}},
			{"late log dropped", func(h *harness) { h.handle("w", &protocol.TaskLog{TaskID: []byte("t1")}) }, nil},
		}},
		{"result only from the assigned worker", func(h *harness) {
			h.client("c")
			h.worker("a", 1)
			h.worker("b", 1)
			h.submit("c", "t1")
			h.take()
		}, []step{
			{"wrong worker", func(h *harness) { h.result("b", "t1", protocol.ResultSuccess) }, nil},
			{"right worker", func(h *harness) { h.result("a", "t1", protocol.ResultSuccess) }, []string{"c:Result(t1,Success,0)"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			tc.setup(h)
			h.take()
			for _, st := range tc.steps {
				st.do(h)
				equal(t, st.name, describe(noEchoes(h.take())), st.want)
				checkInvariants(t, h.s)
			}
		})
	}
}

func TestStateTaskPublished(t *testing.T) { // items 20, 21
	h := newHarness(t, nil)
	h.client("c")
	h.handle("c", &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte("c"),
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("fn")}, Names: [][]byte{[]byte("square")}}})
	h.worker("w", 1)
	h.takePub()
	h.submit("c", "t1")
	pub := h.takePub()
	if len(pub) != 1 {
		t.Fatalf("got %v", describePub(pub))
	}
	st := pub[0].(*protocol.StateTask)
	if st.State != protocol.TaskStateRunning || string(st.Worker) != "w" || string(st.FunctionName) != "square" {
		t.Fatalf("StateTask %+v", st)
	}
	h.handle("w", &protocol.TaskResult{TaskID: []byte("t1"), Type: protocol.ResultSuccess, Profile: protocol.TaskProfile{DurationS: 2}})
	pub = h.takePub()
	st = pub[0].(*protocol.StateTask)
	// The finish event names the function and the worker too: a monitor's
	// task log needs them even when it missed the Running event.
	if st.State != protocol.TaskStateSuccess || string(st.Worker) != "w" || string(st.FunctionName) != "square" || st.Profile.DurationS != 2 {
		t.Fatalf("StateTask %+v", st)
	}
	// A running task canceled: the Canceled event names its worker too.
	h.submit("c", "t2")
	h.takePub()
	h.handle("c", &protocol.TaskCancel{TaskID: []byte("t2")})
	h.handle("w", &protocol.TaskCancelConfirm{TaskID: []byte("t2"), Type: protocol.CancelConfirmCanceled})
	pub = h.takePub()
	st = pub[len(pub)-1].(*protocol.StateTask)
	if st.State != protocol.TaskStateCanceled || string(st.Worker) != "w" || string(st.FunctionName) != "square" {
		t.Fatalf("StateTask %+v", st)
	}
}

func TestCancel(t *testing.T) { // items 23-27, the running-task crash path
	cases := []struct {
		name    string
		confirm []protocol.TaskCancelConfirmType
		result  bool // the worker's result arrives instead of a confirm
		want    []string
		final   protocol.TaskState
	}{
		{"canceled", []protocol.TaskCancelConfirmType{protocol.CancelConfirmCanceled}, false,
			[]string{"c:Confirm(t1,Canceled)"}, protocol.TaskStateCanceled},
		{"not found", []protocol.TaskCancelConfirmType{protocol.CancelConfirmNotFound}, false,
			[]string{"c:Confirm(t1,CancelNotFound)"}, protocol.TaskStateCanceledNotFound},
		{"failed then result", []protocol.TaskCancelConfirmType{protocol.CancelConfirmFailed}, true,
			[]string{"c:Result(t1,Success,1)"}, protocol.TaskStateSuccess},
		{"result before confirm", nil, true, []string{"c:Result(t1,Success,1)"}, protocol.TaskStateSuccess},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.client("c")
			h.worker("w", 1)
			h.submit("c", "t1")
			h.submit("c", "t2")
			h.take()
			h.cancel("c", "t1", true)
			equal(t, "cancel forwarded with force", describe(h.take()), []string{"w:TaskCancel(t1,force=true)"})
			if h.s.tasks["t1"].state != protocol.TaskStateCanceling {
				t.Fatal("not Canceling")
			}
			// The slot stays occupied while the cancel is in flight.
			if h.s.numWaiting != 1 {
				t.Fatal("t2 placed too early")
			}
			h.cancel("c", "t1", true) // duplicate cancel: no second answer
			for _, c := range tc.confirm {
				h.confirm("w", "t1", c)
			}
			if tc.result {
				h.result("w", "t1", protocol.ResultSuccess, "r")
			}
			got := filter(h.take(), protocol.KindTask)
			equal(t, "answers", describe(got), tc.want)
			if h.s.counts[tc.final] != 1 {
				t.Fatalf("final state count %v = %d", tc.final, h.s.counts[tc.final])
			}
			if h.s.tasks["t2"].state != protocol.TaskStateRunning {
				t.Fatal("t2 not placed after t1 left the worker")
			}
			checkInvariants(t, h.s)
		})
	}
	t.Run("unknown task answered not found to sender", func(t *testing.T) {
		h := newHarness(t, nil)
		h.cancel("x", "nope", false)
		equal(t, "reply", describe(h.take()), []string{"x:Confirm(nope,CancelNotFound)"})
	})
	t.Run("waiting task canceled locally, confirm to owner; others cannot cancel it", func(t *testing.T) {
		h := newHarness(t, nil)
		h.client("owner")
		h.client("other")
		h.submit("owner", "t1")
		h.take()
		h.cancel("other", "t1", false)
		equal(t, "someone else's cancel", describe(h.take()), []string{"other:Confirm(t1,CancelNotFound)"})
		if h.s.tasks["t1"] == nil || h.s.Dropped()[dropImpersonation.String()] != 1 {
			t.Fatalf("task gone or refusal not counted: %v", h.s.Dropped())
		}
		h.cancel("owner", "t1", false)
		equal(t, "reply", describe(h.take()), []string{"owner:Confirm(t1,Canceled)"})
		checkInvariants(t, h.s)
	})
	t.Run("worker dies while canceling", func(t *testing.T) {
		h := newHarness(t, nil)
		h.client("c")
		h.worker("w", 1)
		h.submit("c", "t1")
		h.cancel("c", "t1", false)
		h.take()
		h.handle("w", &protocol.DisconnectRequest{Worker: []byte("w")})
		equal(t, "reply", describe(h.take()), []string{"c:Confirm(t1,Canceled)", "w:DisconnectResponse"})
		checkInvariants(t, h.s)
	})
}

func TestWorkerDeath(t *testing.T) { // items 37, 38, 39: the worker-death crash path
	for _, how := range []string{"timeout", "disconnect request"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t, nil)
			h.client("c")
			h.worker("a", 3)
			h.submit("c", "t1")
			h.submit("c", "t2")
			h.submit("c", "t3")
			h.submit("c", "t4")
			h.worker("b", 2)
			h.take()
			h.takePub()
			// t1..t3 are on a; put one in BalanceCanceling and one Canceling.
			h.s.transition(h.s.tasks["t2"], TrBalanceTaskCancel)
			h.cancel("c", "t3", false)
			h.take()
			h.takePub()
			if how == "timeout" {
				h.now = h.now.Add(5 * time.Second)
				h.beat("b", 0)
				h.client("c")
				h.advance(6 * time.Second)
			} else {
				h.handle("a", &protocol.DisconnectRequest{Worker: []byte("a")})
			}
			got := describe(noEchoes(h.take()))
			want := []string{"c:Confirm(t3,Canceled)", "b:Task(t1)"}
			if how != "timeout" {
				want = append(want, "a:DisconnectResponse")
			}
			equal(t, "re-placement", got, want)
			if pub := describePub(h.takePub()); pub[0] != "StateWorker(a,Disconnected)" {
				t.Fatalf("publications %v", pub)
			}
			// t2 waits: b holds t4 and t1 (queue 2). It goes first when a slot frees.
			h.result("b", "t4", protocol.ResultSuccess)
			equal(t, "next", describe(h.take()), []string{"c:Result(t4,Success,0)", "b:Task(t2)"})
			checkInvariants(t, h.s)
		})
	}
}

func TestClientDisconnect(t *testing.T) { // items 27, 40, 41, 49
	for _, how := range []string{"disconnect", "timeout"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t, nil)
			h.client("c")
			h.client("d")
			h.worker("w", 1)
			h.handle("c", &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte("c"),
				Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("o1"), []byte("o2")}}})
			h.submit("c", "t1")
			h.submit("c", "t2")
			h.take()
			if how == "timeout" {
				h.now = h.now.Add(6 * time.Second)
				h.client("d")
				h.beat("w", 0)
				h.take()
				h.advance(5 * time.Second)
			} else {
				h.handle("c", &protocol.ClientDisconnect{Type: protocol.DisconnectClient})
			}
			got := describe(withoutHarnessObjects(h.take()))
			// order of the two cancels follows map iteration; check as a set.
			// The running task is cancelled with force (issue 12 point 5):
			// nobody waits for its result, and its worker's slot is freed.
			want := map[string]bool{"w:TaskCancel(t1,force=true)": true, "c:Confirm(t2,Canceled)": true,
				"w:ObjectDelete(o1,o2)": true, "w:ObjectDelete(o2,o1)": true}
			if len(got) != 3 {
				t.Fatalf("got %v", got)
			}
			for _, g := range got {
				if !want[g] {
					t.Fatalf("unexpected %q in %v", g, got)
				}
			}
			if len(h.userDeleted()) != 2 || h.userObjects() != 0 || h.s.clients["c"] != nil {
				t.Fatalf("objects not freed: %v", h.out.deleted)
			}
			if h.s.clients["d"] == nil {
				t.Fatal("other client dropped")
			}
			// A worker that finished the task before the cancel arrived
			// answers with its result: its result object, created for the
			// departed client, is deleted.
			h.handle("w", &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte("c"),
				Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("r1")}}})
			h.result("w", "t1", protocol.ResultSuccess, "r1")
			h.advance(time.Second)
			if h.out.deleted[len(h.out.deleted)-1] != "r1" {
				t.Fatalf("late result object not deleted: %v", h.out.deleted)
			}
			checkInvariants(t, h.s)
		})
	}
}

func TestShutdown(t *testing.T) { // items 42, 43
	h := newHarness(t, nil)
	h.client("c")
	h.worker("w1", 2)
	h.worker("w2", 2)
	h.take()
	h.handle("c", &protocol.ClientDisconnect{Type: protocol.DisconnectShutdown})
	got := h.take()
	equal(t, "protected", describe(got), []string{"c:ShutdownResponse(false)"})
	if got[0].msg.(*protocol.ClientShutdownResponse).Reason == "" || h.s.ShutdownAccepted() {
		t.Fatal("refusal without reason, or accepted")
	}
	h.s.cfg.Protected = false
	// Each worker holds a task: shutting w1 down must not move its task to
	// w2, which is about to go too.
	h.submit("c", "t1")
	h.submit("c", "t2")
	h.take()
	h.takePub()
	h.handle("c", &protocol.ClientDisconnect{Type: protocol.DisconnectShutdown})
	equal(t, "unprotected", describe(h.take()), []string{"c:ShutdownResponse(true)", "w1:ClientDisconnect(Shutdown)", "w2:ClientDisconnect(Shutdown)"})
	for _, m := range h.takePub() {
		if st, ok := m.(*protocol.StateTask); ok && st.State == protocol.TaskStateRunning {
			t.Fatalf("a task was placed again during shutdown: %+v", st)
		}
	}
	if !h.s.ShutdownAccepted() {
		t.Fatal("shutdown not flagged")
	}
	h.client("c")
	if len(h.take()) != 0 {
		t.Fatal("scheduler kept answering after shutdown")
	}
}

func TestObjects(t *testing.T) { // items 45-48, 50
	h := newHarness(t, func(c *Config) { c.ClientTimeout, c.WorkerTimeout = 2*time.Hour, 2*time.Hour })
	h.client("c")
	h.client("d")
	h.worker("w", 1)
	h.take()
	create := func(user string, ids ...string) {
		m := &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte(user)}
		for _, id := range ids {
			m.Metadata.ObjectIDs = append(m.Metadata.ObjectIDs, []byte(id))
		}
		h.handle(user, m)
	}
	del := func(from, user string, ids ...string) {
		m := &protocol.ObjectInstruction{Type: protocol.InstructionDelete, ObjectUser: []byte(user)}
		for _, id := range ids {
			m.Metadata.ObjectIDs = append(m.Metadata.ObjectIDs, []byte(id))
		}
		h.handle(from, m)
	}
	create("c", "a", "b", "c1")
	create("d", "a")
	if h.userObjects() != 3 {
		t.Fatalf("objects %d", h.userObjects())
	}
	del("c", "c", "a")                                                                                   // d still owns a
	del("d", "d", "b")                                                                                   // d does not own b: no-op
	h.handle("c", &protocol.ObjectInstruction{Type: protocol.InstructionClear, ObjectUser: []byte("c")}) // ignored
	if len(h.out.deleted) != 0 || h.userObjects() != 3 {
		t.Fatalf("deleted %v", h.out.deleted)
	}
	del("c", "c", "b")
	equal(t, "first deletion goes out at once", describe(h.take()), []string{"w:ObjectDelete(b)"})
	del("c", "c", "c1")
	del("d", "d", "a")
	if len(h.take()) != 0 {
		t.Fatal("second batch not delayed")
	}
	h.advance(time.Second)
	equal(t, "batched", describe(h.take()), []string{"w:ObjectDelete(c1,a)"})
	if len(h.out.deleted) != 3 {
		t.Fatalf("storage deletes %v", h.out.deleted)
	}
	// No expiry by time while the owner is connected (retention applies to
	// departed clients only, see TestObjectRetention).
	create("c", "x")
	h.advance(time.Hour)
	if h.userObjects() != 1 {
		t.Fatal("object expired by time")
	}
}

// lopsided gives worker a all eight tasks t0..t7 of client c, then brings
// up three idle workers b, c1 and d: the start of the balance tests.
func (h *harness) lopsided() {
	h.client("c")
	h.worker("a", 10)
	for _, id := range []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"} {
		h.submit("c", id)
	}
	h.worker("b", 10)
	h.worker("c1", 10)
	h.worker("d", 10)
	h.take()
}

func TestBalanceEven(t *testing.T) { // items 28, 29, 30, 31, 32, 34; balance cancel not-found crash path
	h := newHarness(t, nil)
	h.lopsided()
	h.takePub()
	// queued=7, mean=ceil(7/4)=2, count=5: the five newest tasks.
	h.advance(time.Second)
	equal(t, "advice published first", describePub(h.takePub())[:1], []string{"BalanceAdvice(a:t3,t4,t5,t6,t7)"})
	equal(t, "cancels", describe(h.take()), []string{"a:TaskCancel(t3,force=false)", "a:TaskCancel(t4,force=false)",
		"a:TaskCancel(t5,force=false)", "a:TaskCancel(t6,force=false)", "a:TaskCancel(t7,force=false)"})
	h.confirm("a", "t3", protocol.CancelConfirmCanceled)
	h.confirm("a", "t4", protocol.CancelConfirmFailed)
	h.confirm("a", "t5", protocol.CancelConfirmNotFound)
	h.result("a", "t6", protocol.ResultSuccess)
	h.cancel("c", "t7", true)
	equal(t, "outcomes", describe(h.take()), []string{"b:Task(t3)", "c1:Task(t5)", "c:Result(t6,Success,0)", "a:TaskCancel(t7,force=true)"})
	if h.s.tasks["t4"].state != protocol.TaskStateRunning || h.s.tasks["t7"].state != protocol.TaskStateCanceling {
		t.Fatal("states")
	}
	// The balance cancel of t7 is answered first (failed), then the client's.
	h.confirm("a", "t7", protocol.CancelConfirmFailed)
	if h.s.tasks["t7"].state != protocol.TaskStateCanceling {
		t.Fatal("absorbed confirm changed state")
	}
	h.confirm("a", "t7", protocol.CancelConfirmCanceled)
	equal(t, "client cancel", describe(h.take()), []string{"c:Confirm(t7,Canceled)"})
	checkInvariants(t, h.s)
}

func TestBalanceTrigger(t *testing.T) { // item 28
	h := newHarness(t, func(c *Config) { c.BalanceTriggerTimes = 3 })
	h.client("c")
	h.worker("a", 10)
	h.submit("c", "t0")
	h.submit("c", "t1")
	h.worker("b", 10)
	h.take()
	var acted []int
	for i := 0; i < 6; i++ {
		h.advance(time.Second)
		if len(h.take()) > 0 {
			acted = append(acted, i)
			// Undo: the worker refuses, so the same advice repeats.
			h.confirm("a", "t1", protocol.CancelConfirmFailed)
			h.take()
		}
	}
	// New advice acts at once; identical repeats are suppressed while
	// 0 < repeats < 3, then act on every run.
	if len(acted) != 4 || acted[0] != 0 || acted[1] != 3 || acted[2] != 4 || acted[3] != 5 {
		t.Fatalf("acted on runs %v", acted)
	}
	// Empty advice never acts.
	h2 := newHarness(t, nil)
	h2.worker("a", 1)
	h2.take()
	h2.advance(time.Second)
	if len(h2.take()) != 0 || len(h2.takePub()) != 1 {
		t.Fatal("empty advice acted")
	}
}

func TestBalanceCapability(t *testing.T) { // item 36
	h := newHarness(t, func(c *Config) { c.Policy = PolicyCapability })
	h.lopsided()
	h.advance(time.Second)
	got := describe(h.take())
	equal(t, "youngest first", got, []string{"a:TaskCancel(t7,force=false)", "a:TaskCancel(t6,force=false)",
		"a:TaskCancel(t5,force=false)", "a:TaskCancel(t4,force=false)", "a:TaskCancel(t3,force=false)", "a:TaskCancel(t2,force=false)"})
	// Incompatible receivers are skipped.
	h2 := newHarness(t, func(c *Config) { c.Policy = PolicyCapability })
	h2.client("c")
	h2.worker("a", 10, "gpu")
	h2.submit("c", "g1", "gpu")
	h2.submit("c", "g2", "gpu")
	h2.worker("b", 10)
	h2.take()
	h2.advance(time.Second)
	if got := h2.take(); len(got) != 0 {
		t.Fatalf("moved gpu tasks to a cpu worker: %v", describe(got))
	}
}

func TestNoStallBehindUnplaceable(t *testing.T) {
	h := newHarness(t, nil)
	h.client("c")
	h.worker("w", 1)
	h.submit("c", "t0")
	h.submit("c", "x", "gpu")
	h.submit("c", "t1")
	h.take()
	h.result("w", "t0", protocol.ResultSuccess)
	equal(t, "t1 placed past x", describe(h.take()), []string{"c:Result(t0,Success,0)", "w:Task(t1)"})
}

// TestObjectRetention: the objects of a departed client (disconnected or
// timed out) are freed object_retention_seconds later, not at once; a
// client that heartbeats again with the same id within that time keeps
// them.
func TestObjectRetention(t *testing.T) {
	const retention = 5 * time.Second
	cases := []struct {
		name      string
		depart    string        // "disconnect" or "timeout"
		comeBack  time.Duration // > 0: heartbeat again this long after departing
		lateLeft  bool          // a running task's result object arrives after departure
		wantFreed time.Duration // after departure; 0: never (within the test)
	}{
		{name: "disconnect", depart: "disconnect", wantFreed: retention},
		{name: "timeout", depart: "timeout", wantFreed: retention},
		{name: "late result object kept with the rest", depart: "disconnect", lateLeft: true, wantFreed: retention},
		{name: "reconnect within retention", depart: "timeout", comeBack: 4 * time.Second},
		{name: "reconnect after retention", depart: "disconnect", comeBack: 6 * time.Second, wantFreed: retention},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.ObjectRetention = retention
				c.ClientTimeout, c.WorkerTimeout = 10*time.Second, time.Hour
			})
			h.client("c")
			h.worker("w", 1)
			h.createObjects("c", "o1", "o2")
			h.submit("c", "t1")
			h.take()
			if tc.depart == "timeout" {
				h.advance(11 * time.Second)
			} else {
				h.handle("c", &protocol.ClientDisconnect{Type: protocol.DisconnectClient})
			}
			departed := h.now
			equal(t, "task canceled at once, objects kept", describe(noEchoes(h.take())), []string{"w:TaskCancel(t1,force=true)"})
			if tc.lateLeft {
				// The worker finished before the cancel reached it.
				h.handle("w", &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte("c"),
					Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("r1")}}})
				h.result("w", "t1", protocol.ResultSuccess, "r1")
				h.take()
			}
			var freedAt time.Duration
			for step := 0; step < 100; step++ { // 10 s in 100 ms ticks
				if tc.comeBack > 0 && h.now.Sub(departed) == tc.comeBack {
					h.client("c")
				}
				h.advance(100 * time.Millisecond)
				if freedAt == 0 && len(h.userDeleted()) > 0 {
					freedAt = h.now.Sub(departed)
				}
			}
			if freedAt != tc.wantFreed {
				t.Fatalf("objects freed %v after departure, want %v (0: kept)", freedAt, tc.wantFreed)
			}
			want := 2
			if tc.lateLeft {
				want = 3
			}
			if tc.wantFreed == 0 {
				want = 0
			}
			if len(h.userDeleted()) != want {
				t.Fatalf("deleted %v", h.out.deleted)
			}
			if tc.wantFreed == 0 {
				// Kept objects are the client's again: its own delete works.
				if h.userObjects() != 2 {
					t.Fatalf("objects %d", h.userObjects())
				}
				h.deleteObjects("c", "o1", "o2")
				if len(h.userDeleted()) != 2 || h.userObjects() != 0 {
					t.Fatalf("deleted %v", h.out.deleted)
				}
			} else if h.userObjects() != 0 || len(h.s.departed) != 0 {
				t.Fatalf("left: %d objects, %d departed", len(h.s.objects), len(h.s.departed))
			}
			checkInvariants(t, h.s)
		})
	}
}

// TestBalanceBoundedPasses: with MaxBalanceMoves 2 a pass cancels at most
// two tasks, the newest first, and the passes that follow go on from the
// state the last one left until no worker is idle.
func TestBalanceBoundedPasses(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxBalanceMoves = 2 })
	h.lopsided() // a holds t0..t7; b, c1 and d are idle
	cancels := func() []string {
		var ids []string
		for _, s := range h.take() {
			if m, ok := s.msg.(*protocol.TaskCancel); ok {
				ids = append(ids, s.to+":"+string(m.TaskID))
			}
		}
		return ids
	}
	h.advance(time.Second)
	first := cancels()
	equal(t, "first pass", first, []string{"a:t6", "a:t7"})
	passes, moved := 1, first
	for last := first; len(last) > 0; passes++ {
		if passes > 10 {
			t.Fatalf("still moving tasks after %d passes: %v", passes, moved)
		}
		for _, c := range last {
			worker, id, _ := strings.Cut(c, ":")
			h.confirm(worker, id, protocol.CancelConfirmCanceled)
		}
		h.take() // the canceled tasks placed again
		h.advance(time.Second)
		last = cancels()
		if len(last) > 2 {
			t.Fatalf("pass %d moved %d tasks: %v", passes+1, len(last), last)
		}
		moved = append(moved, last...)
	}
	if passes < 3 {
		t.Fatalf("balanced after %d passes (moved %v): the bound did not hold it back", passes, moved)
	}
	// The even policy stops once no worker is idle; every task is held.
	held := 0
	for _, w := range h.s.workers.order {
		if w.tasks.Len() == 0 {
			t.Errorf("worker %s idle after %d passes (moved %v)", w.id, passes, moved)
		}
		held += w.tasks.Len()
	}
	if held != 8 {
		t.Errorf("%d of 8 tasks held", held)
	}
	checkInvariants(t, h.s)
}
