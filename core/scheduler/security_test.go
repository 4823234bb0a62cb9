package scheduler

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
)

// TestTaskRefusals: a task is accepted only from a registered client, for
// itself, naming objects it announced; everything else is answered with
// TaskResult{rejected} naming why, routed nowhere and counted: at once, or
// for objects not announced after the announce grace (parked meanwhile).
func TestTaskRefusals(t *testing.T) {
	obj := func(id string) protocol.Argument {
		return protocol.Argument{Type: protocol.ArgumentObjectID, Data: []byte(id)}
	}
	cases := []struct {
		name   string
		from   string
		task   func() *protocol.Task
		reason dropReason // numDropReasons: accepted
		says   string     // in the refusal's message
	}{
		{"accepted: own objects and an inline argument", "c", func() *protocol.Task {
			t := newTask("t1", "c")
			t.Arguments = []protocol.Argument{obj("arg"), {Type: protocol.ArgumentInline, Data: []byte{1}}}
			return t
		}, numDropReasons, ""},
		{"accepted: empty source is the sender", "c", func() *protocol.Task { return newTask("t1", "") }, numDropReasons, ""},
		{"unregistered sender", "x", func() *protocol.Task { return newTask("t1", "x") }, dropNotRegistered, "not registered"},
		{"source names another client", "c", func() *protocol.Task { return newTask("t1", "d") }, dropImpersonation, "another client"},
		{"no function object", "c", func() *protocol.Task {
			t := newTask("t1", "c")
			t.FuncObjectID = nil
			return t
		}, dropUnknownObject, "no function object"},
		{"unknown function object", "c", func() *protocol.Task {
			t := newTask("t1", "c")
			t.FuncObjectID = []byte("nope")
			return t
		}, dropUnknownObject, "function object 6e6f7065"},
		{"another client's object as argument", "c", func() *protocol.Task {
			t := newTask("t1", "c")
			t.Arguments = []protocol.Argument{obj("arg"), obj("dobj")}
			return t
		}, dropUnknownObject, "argument 1: object 646f626a"},
		{"released object", "c", func() *protocol.Task {
			t := newTask("t1", "c")
			t.Arguments = []protocol.Argument{obj("gone")}
			return t
		}, dropUnknownObject, "object 676f6e65"},
		{"task argument outside a graph", "c", func() *protocol.Task {
			t := newTask("t1", "c")
			t.Arguments = []protocol.Argument{{Type: protocol.ArgumentTask, Data: []byte("t0")}}
			return t
		}, dropBadValue, "outside a graph"},
		{"unknown argument type", "c", func() *protocol.Task {
			t := newTask("t1", "c")
			t.Arguments = []protocol.Argument{{Type: 9, Data: []byte("x")}}
			return t
		}, dropBadValue, "unknown type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.AnnounceGrace = 2 * time.Second })
			h.client("c")
			h.client("d")
			h.createObjects("d", "dobj")
			h.createObjects("c", "gone")
			h.deleteObjects("c", "gone")
			h.worker("w", 10)
			h.take()
			h.handle(tc.from, tc.task())
			got := noEchoes(h.take())
			if tc.reason == numDropReasons {
				equal(t, "accepted", describe(got), []string{"w:Task(t1)"})
				if src := got[0].msg.(*protocol.Task).Source; string(src) != tc.from {
					t.Fatalf("forwarded with source %q", src)
				}
				if len(h.s.Dropped()) != 0 {
					t.Fatalf("counted %v", h.s.Dropped())
				}
				return
			}
			if parked := strings.Contains(tc.says, "object "); parked {
				// Waits for the announcement for the grace, then refused.
				equal(t, "parked", describe(got), nil)
				h.advance(1900 * time.Millisecond)
				equal(t, "still parked", describe(noEchoes(h.take())), nil)
				h.advance(100 * time.Millisecond)
				got = noEchoes(h.take())
			}
			equal(t, "refused", describe(got), []string{tc.from + ":Result(t1,Rejected,0)"})
			if msg := got[0].msg.(*protocol.TaskResult).Message; !strings.Contains(msg, tc.says) {
				t.Fatalf("message %q does not say %q", msg, tc.says)
			}
			if d := h.s.Dropped(); d[tc.reason.String()] != 1 || len(d) != 1 {
				t.Fatalf("counted %v, want one %q", d, tc.reason)
			}
			if len(h.s.tasks) != 0 || len(h.s.clientTasks) != 0 {
				t.Fatal("refused task kept")
			}
			checkInvariants(t, h.s)
		})
	}
}

// TestRoles: a peer is a client or a worker, not both. A registered
// client's worker messages are dropped; a worker that sends a client's
// message is removed at once (its tasks placed again) and cannot register
// as a worker again until it has been quiet for the worker timeout; so is
// any peer that sent a client's message without being a client.
func TestRoles(t *testing.T) {
	t.Run("client's worker heartbeat does not make it a worker", func(t *testing.T) {
		h := newHarness(t, nil)
		h.client("c")
		h.worker("c", 10)
		h.submit("c", "t1")
		if len(h.s.workers.order) != 0 || len(filter(h.take(), protocol.KindClientHeartbeatEcho)) != 0 {
			t.Fatal("client registered as a worker, or answered")
		}
		if h.s.Dropped()[dropWrongRole.String()] != 1 {
			t.Fatalf("counted %v", h.s.Dropped())
		}
	})
	t.Run("worker sending a client's message is removed and refused", func(t *testing.T) {
		h := newHarness(t, nil)
		h.client("c")
		h.worker("bogus", 10)
		h.submit("c", "t1")
		h.submit("c", "t2")
		equal(t, "the bogus worker got them", describe(noEchoes(h.take())), []string{"bogus:Task(t1)", "bogus:Task(t2)"})
		h.handle("bogus", &protocol.TaskCancel{TaskID: []byte("t1")})
		if len(h.s.workers.order) != 0 {
			t.Fatal("bogus worker kept")
		}
		h.worker("w", 10)
		equal(t, "tasks placed again on a real worker", describe(noEchoes(h.take())), []string{"w:Task(t1)", "w:Task(t2)"})
		h.worker("bogus", 10)
		h.advance(5 * time.Second)
		h.worker("bogus", 10) // still talking: the refusal lasts
		h.advance(9 * time.Second)
		if h.s.workers.byID["bogus"] != nil {
			t.Fatal("refused peer registered again")
		}
		if d := h.s.Dropped(); d[dropWrongRole.String()] != 1 || d[dropRefusedPeer.String()] != 2 {
			t.Fatalf("counted %v", d)
		}
		h.advance(2 * time.Second) // quiet for the worker timeout (10 s)
		h.handle("w", &protocol.WorkerHeartbeat{QueueSize: 10})
		h.worker("bogus", 10)
		if h.s.workers.byID["bogus"] == nil {
			t.Fatal("refusal never expires")
		}
		checkInvariants(t, h.s)
	})
	t.Run("unregistered peer's client message, or a client's goodbye, bars it from being a worker", func(t *testing.T) {
		h := newHarness(t, nil)
		h.cancel("x", "t1", false)
		h.worker("x", 10)
		h.client("c")
		h.handle("c", &protocol.ClientDisconnect{Type: protocol.DisconnectClient})
		h.worker("c", 10)
		if len(h.s.workers.order) != 0 {
			t.Fatal("registered as a worker")
		}
		if h.s.Dropped()[dropRefusedPeer.String()] != 2 {
			t.Fatalf("counted %v", h.s.Dropped())
		}
	})
	t.Run("queue size out of bounds", func(t *testing.T) {
		h := newHarness(t, nil)
		h.worker("zero", 0)
		h.worker("huge", maxWorkerQueueSize+1)
		h.worker("max", maxWorkerQueueSize)
		if len(h.s.workers.order) != 1 || h.s.workers.byID["max"] == nil {
			t.Fatalf("workers %d", len(h.s.workers.order))
		}
		if h.s.Dropped()[dropBadHeartbeat.String()] != 2 {
			t.Fatalf("counted %v", h.s.Dropped())
		}
	})
}

// TestImpersonation: a peer acts only for itself.
func TestImpersonation(t *testing.T) {
	setup := func(t *testing.T) *harness {
		h := newHarness(t, nil)
		h.client("c")
		h.client("d")
		h.worker("w", 1)
		h.worker("v", 1)
		h.submit("c", "t1") // on v or w
		h.createObjects("d", "dobj")
		h.take()
		return h
	}
	holder := func(h *harness) (string, string) {
		if w := h.s.tasks["t1"].worker; w.id == "w" {
			return "w", "v"
		}
		return "v", "w"
	}
	create := func(from, user, id string) *protocol.ObjectInstruction {
		return &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte(user),
			Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte(id)}}}
	}
	t.Run("DisconnectRequest for another worker", func(t *testing.T) {
		h := setup(t)
		h.handle("v", &protocol.DisconnectRequest{Worker: []byte("w")})
		h.handle("c", &protocol.DisconnectRequest{Worker: []byte("w")})
		if h.s.workers.byID["w"] == nil || h.s.workers.byID["v"] == nil {
			t.Fatal("a worker was removed by someone else")
		}
		if len(noEchoes(h.take())) != 0 {
			t.Fatal("refusal answered")
		}
		if d := h.s.Dropped(); d[dropImpersonation.String()] != 1 || d[dropWrongRole.String()] != 1 {
			t.Fatalf("counted %v", d)
		}
		h.handle("w", &protocol.DisconnectRequest{Worker: []byte("w")})
		h.handle("v", &protocol.DisconnectRequest{})
		if len(h.s.workers.order) != 0 {
			t.Fatal("own disconnect refused")
		}
	})
	t.Run("objects", func(t *testing.T) {
		h := setup(t)
		held, other := holder(h)
		h.handle("c", create("c", "d", "x1"))                                                                // for another client
		h.handle("c", &protocol.ObjectInstruction{Type: protocol.InstructionDelete, ObjectUser: []byte("d"), // another's
			Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("dobj")}}})
		h.handle(other, create(other, "c", "x2")) // holds no task of c
		h.handle(held, create(held, "d", "x3"))   // holds no task of d
		h.handle(held, &protocol.ObjectInstruction{Type: protocol.InstructionDelete, ObjectUser: []byte("d"),
			Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("dobj")}}})
		for _, id := range []string{"x1", "x2", "x3"} {
			if h.s.objects[id] != nil {
				t.Fatalf("%s tracked", id)
			}
		}
		if _, ok := h.s.clientObjects["d"]["dobj"]; !ok {
			t.Fatal("another's object released")
		}
		if d := h.s.Dropped(); d[dropImpersonation.String()] != 5 {
			t.Fatalf("counted %v", d)
		}
		h.handle(held, create(held, "c", "r1")) // its task's result
		h.handle(held, create(held, "", "r0"))  // empty user: itself, not a client
		if _, ok := h.s.clientObjects["c"]["r1"]; !ok || h.s.objects["r0"] != nil {
			t.Fatal("worker's result object for its task's client refused, or one for itself accepted")
		}
		h.advance(time.Second)
		for _, id := range []string{"x2", "x3", "r0"} {
			if !h.wasDeleted(id) {
				t.Fatalf("object %s a worker created for nobody not deleted: %v", id, h.out.deleted)
			}
		}
		if h.wasDeleted("x1") || h.wasDeleted("dobj") {
			t.Fatalf("a client's refused instruction deleted objects: %v", h.out.deleted)
		}
		checkInvariants(t, h.s)
	})
	t.Run("task log only from the task's worker", func(t *testing.T) {
		h := setup(t)
		held, other := holder(h)
		h.handle(other, &protocol.TaskLog{TaskID: []byte("t1"), Content: "x"})
		h.handle("d", &protocol.TaskLog{TaskID: []byte("t1"), Content: "x"})
		if len(noEchoes(h.take())) != 0 {
			t.Fatal("forged log forwarded")
		}
		h.handle(held, &protocol.TaskLog{TaskID: []byte("t1"), Content: "x"})
		equal(t, "own log", describe(noEchoes(h.take())), []string{"c:TaskLog(t1)"})
	})
}

// TestDeadClientRunningTaskForced: a departed client's running task is
// cancelled with force, so its worker's only slot serves the next client
// (issue 12 point 5).
func TestDeadClientRunningTaskForced(t *testing.T) {
	h := newHarness(t, nil)
	h.client("c")
	h.client("d")
	h.worker("w", 1)
	h.submit("c", "long")
	h.submit("d", "next")
	equal(t, "only one slot", describe(noEchoes(h.take())), []string{"w:Task(long)"})
	for i := 0; i < 11; i++ { // c goes silent; d and w keep heartbeating
		h.client("d")
		h.beat("w", 1)
		h.advance(time.Second)
	}
	equal(t, "forced cancel", describe(noEchoes(h.take())), []string{"w:TaskCancel(long,force=true)"})
	h.confirm("w", "long", protocol.CancelConfirmCanceled)
	equal(t, "slot freed for the next client", describe(noEchoes(h.take())), []string{"c:Confirm(long,Canceled)", "w:Task(next)"})
	checkInvariants(t, h.s)
}

// TestDropLogRateLimited: a flood of bad messages gives one line per reason
// per interval, with the count and an example peer; quiet, nothing.
func TestDropLogRateLimited(t *testing.T) {
	h := newHarness(t, nil)
	h.client("c")
	var buf bytes.Buffer
	h.s.log = zerolog.New(&buf)
	for i := 0; i < 1000; i++ {
		h.handle("bogus", &protocol.DisconnectRequest{Worker: []byte("w")})
		h.handle("c", &protocol.ClientHeartbeatEcho{})
		h.handle("c", &protocol.Task{TaskID: []byte{byte(i), byte(i >> 8)}}) // no function object
	}
	if buf.Len() != 0 {
		t.Fatalf("logged while handling: %s", buf.String())
	}
	h.advance(100 * time.Millisecond)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %d:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{
		`"reason":"claims another peer's identity","count":1000,"example_peer":"bogus"`,
		`"reason":"unexpected message kind","count":1000,"example_peer":"c"`,
		`"reason":"task refers to an object its client does not own","count":1000,"example_peer":"c"`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no line with %s in\n%s", want, buf.String())
		}
	}
	// More within the interval: held back, then one line with the count.
	buf.Reset()
	h.handle("bogus", &protocol.DisconnectRequest{Worker: []byte("w")})
	h.advance(100 * time.Millisecond)
	h.handle("bogus", &protocol.DisconnectRequest{Worker: []byte("w")})
	h.advance(100 * time.Millisecond)
	if buf.Len() != 0 {
		t.Fatalf("logged within the interval: %s", buf.String())
	}
	h.advance(800 * time.Millisecond)
	if !strings.Contains(buf.String(), `"count":2`) || strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("after the interval: %q", buf.String())
	}
	buf.Reset()
	for i := 0; i < 30; i++ {
		h.advance(100 * time.Millisecond)
	}
	if buf.Len() != 0 {
		t.Fatalf("logged while quiet: %s", buf.String())
	}
	if d := h.s.Dropped(); d[dropImpersonation.String()] != 1002 {
		t.Fatalf("totals %v", d)
	}
}

// TestClientBounds: one client's tasks and objects are bounded; at the
// bound the scheduler refuses with a message naming it.
func TestClientBounds(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxTasksPerClient, c.MaxObjectsPerClient = 2, 5 })
	h.client("c") // owns fn, arg, obj
	h.worker("w", 1)
	h.createObjects("c", "o4", "o5")
	h.createObjects("c", "o6")
	if h.s.objects["o6"] != nil || h.s.objects["o5"] == nil {
		t.Fatal("object bound not applied")
	}
	h.take()
	h.submit("c", "t1")
	h.submit("c", "t2")
	h.submit("c", "t3")
	got := noEchoes(h.take())
	equal(t, "third refused", describe(got), []string{"w:Task(t1)", "c:Result(t3,Rejected,0)"})
	if msg := got[1].msg.(*protocol.TaskResult).Message; !strings.Contains(msg, "2 unfinished tasks") {
		t.Fatalf("message %q", msg)
	}
	h.result("w", "t1", protocol.ResultSuccess)
	h.submit("c", "t4")
	equal(t, "room again", describe(noEchoes(h.take())), []string{"c:Result(t1,Success,0)", "w:Task(t2)"})
	h.result("w", "t2", protocol.ResultSuccess)
	h.take()
	task := newTask("t5", "c")
	task.Arguments = []protocol.Argument{{Type: protocol.ArgumentObjectID, Data: []byte("o6")}}
	h.handle("c", task)
	got = noEchoes(h.take())
	if len(got) != 1 || !strings.Contains(got[0].msg.(*protocol.TaskResult).Message, "5 objects, the most one client may have") {
		t.Fatalf("refusal of a task naming a refused object: %v", describe(got))
	}
	g := &protocol.GraphTask{TaskID: []byte("G"), Graph: []protocol.Task{*newTask("a", "c"), *newTask("b", "c"), *newTask("d", "c")}}
	h.handle("c", g)
	equal(t, "graph over the bound", describe(noEchoes(h.take())), []string{"c:Result(G,Rejected,0)"})
	if d := h.s.Dropped(); d[dropTooMany.String()] != 3 || d[dropUnknownObject.String()] != 1 {
		t.Fatalf("counted %v", d)
	}
	checkInvariants(t, h.s)
}

// TestWorkerResultObjectsBound: a worker's result objects may take a client
// past its object bound (its results are not lost to its inputs), but at
// most to twice it: beyond, they are refused and deleted from storage.
func TestWorkerResultObjectsBound(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxObjectsPerClient = 5 })
	h.client("c") // owns fn, arg, obj
	h.worker("w", 1)
	h.submit("c", "t1")
	h.take()
	create := func(ids ...string) {
		m := &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte("c")}
		for _, id := range ids {
			m.Metadata.ObjectIDs = append(m.Metadata.ObjectIDs, []byte(id))
		}
		h.handle("w", m)
	}
	create("r1", "r2", "r3", "r4", "r5") // 8 of 10: past the client's 5, kept
	create("r6", "r7", "r8")             // 11: refused whole
	if n := len(h.s.clientObjects["c"]); n != 8 {
		t.Fatalf("c has %d objects, want 8", n)
	}
	for _, id := range []string{"r6", "r7", "r8"} {
		if !h.wasDeleted(id) {
			t.Fatalf("refused result object %s not deleted from storage", id)
		}
	}
	checkInvariants(t, h.s)
}

// TestParkedTasks: a task naming objects its client has not announced yet
// waits for the announcement (the Python client announces a send_object
// only once storage acknowledged it, which may be after a task using it).
func TestParkedTasks(t *testing.T) {
	setup := func(t *testing.T) *harness {
		h := newHarness(t, func(c *Config) { c.AnnounceGrace, c.MaxParkedPerClient = 5*time.Second, 2 })
		h.client("c")
		h.client("d")
		h.worker("w", 10)
		h.take()
		return h
	}
	late := func(id, obj string) *protocol.Task {
		t := newTask(id, "c")
		t.Arguments = []protocol.Argument{{Type: protocol.ArgumentObjectID, Data: []byte(obj)}}
		return t
	}
	t.Run("announced after the task", func(t *testing.T) {
		h := setup(t)
		h.handle("c", late("t1", "x"))
		h.handle("c", late("t2", "y"))
		h.submit("c", "t3")
		equal(t, "only the task with known objects placed", describe(noEchoes(h.take())), []string{"w:Task(t3)"})
		h.handle("c", late("t2", "y")) // duplicate of a parked task
		h.createObjects("d", "y")      // another client's: no help
		h.createObjects("c", "y")
		equal(t, "placed on announcement", describe(noEchoes(h.take())), []string{"w:Task(t2)"})
		h.createObjects("c", "x")
		equal(t, "and the other", describe(noEchoes(h.take())), []string{"w:Task(t1)"})
		if len(h.s.parked) != 0 || len(h.s.parkedIDs) != 0 || h.s.Dropped()[dropDuplicate.String()] != 1 {
			t.Fatalf("parked %v, counted %v", h.s.parked, h.s.Dropped())
		}
		checkInvariants(t, h.s)
	})
	t.Run("cancel, bound, departure", func(t *testing.T) {
		h := setup(t)
		h.handle("c", late("t1", "x"))
		h.handle("c", late("t2", "x"))
		h.handle("c", late("t3", "x")) // over the bound: refused at once
		equal(t, "bound", describe(noEchoes(h.take())), []string{"c:Result(t3,Rejected,0)"})
		h.cancel("d", "t1", true)
		h.cancel("c", "t1", true)
		equal(t, "cancels", describe(noEchoes(h.take())), []string{"d:Confirm(t1,CancelNotFound)", "c:Confirm(t1,Canceled)"})
		h.handle("c", &protocol.ClientDisconnect{Type: protocol.DisconnectClient})
		equal(t, "departure cancels it", describe(filter(noEchoes(h.take()), protocol.KindObjectInstruction)), []string{"c:Confirm(t2,Canceled)"})
		h.createObjects("c", "x")
		h.advance(6 * time.Second)
		if got := filter(noEchoes(h.take()), protocol.KindObjectInstruction); len(got) != 0 {
			t.Fatalf("a departed client's parked task was answered again or placed: %v", describe(got))
		}
		if len(h.s.parked) != 0 || len(h.s.parkedIDs) != 0 || len(h.s.tasks) != 0 {
			t.Fatal("parked state left")
		}
	})
}
