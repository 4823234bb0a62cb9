package scheduler

import (
	"bytes"
	"testing"

	"github.com/opengris/scaler/core/protocol"
)

var inlineArg = protocol.Argument{Type: protocol.ArgumentInline, Data: []byte{0x80, 0x05, 0x4b, 0x07, 0x2e}}

func checkInlineArgs(t *testing.T, what string, m protocol.Message, want []protocol.Argument) {
	t.Helper()
	task, ok := m.(*protocol.Task)
	if !ok {
		t.Fatalf("%s: sent %T, want *protocol.Task", what, m)
	}
	if len(task.Arguments) != len(want) {
		t.Fatalf("%s: %d arguments, want %d", what, len(task.Arguments), len(want))
	}
	for i, a := range task.Arguments {
		if a.Type != want[i].Type || !bytes.Equal(a.Data, want[i].Data) {
			t.Fatalf("%s: argument %d is %+v, want %+v", what, i, a, want[i])
		}
	}
}

// Inline arguments (docs/protocol.md §7.1) reach the worker unchanged, also
// when the task is placed again after its worker died.
func TestInlineArgumentsSurviveReplacement(t *testing.T) {
	h := oneWorker(t, "a", 3)
	task := newTask("t1", "c")
	task.Arguments = []protocol.Argument{inlineArg, {Type: protocol.ArgumentObjectID, Data: []byte("obj")}}
	want := []protocol.Argument{inlineArg, {Type: protocol.ArgumentObjectID, Data: []byte("obj")}}
	h.handle("c", task)
	got := h.take()
	equal(t, "placed on a", describe(got), []string{"a:Task(t1)"})
	checkInlineArgs(t, "first placement", got[0].msg, want)

	h.worker("b", 3)
	h.take()
	h.handle("a", &protocol.DisconnectRequest{Worker: []byte("a")})
	got = noEchoes(h.take())
	equal(t, "re-placed on b", describe(got), []string{"b:Task(t1)", "a:DisconnectResponse"})
	checkInlineArgs(t, "re-placement", got[0].msg, want)

	h.result("b", "t1", protocol.ResultSuccess)
	equal(t, "result", describe(h.take()), []string{"c:Result(t1,Success,0)"})
	checkInvariants(t, h.s)
}

// A graph node's inline argument passes through; only task arguments become
// object ids.
func TestInlineArgumentsInGraphNodes(t *testing.T) {
	h := oneWorker(t, "w", 10)
	a := *newTask("a", "c")
	a.Arguments = []protocol.Argument{inlineArg}
	b := *newTask("b", "c")
	b.Arguments = []protocol.Argument{{Type: protocol.ArgumentTask, Data: []byte("a")}, inlineArg}
	h.handle("c", &protocol.GraphTask{TaskID: []byte("G"), Source: []byte("c"), Targets: [][]byte{[]byte("b")},
		Graph: []protocol.Task{a, b}})
	got := h.take()
	equal(t, "a first", describe(got), []string{"w:Task(a)"})
	checkInlineArgs(t, "node a", got[0].msg, []protocol.Argument{inlineArg})
	h.handle("c", &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte("c"),
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("ra")}}})
	h.result("w", "a", protocol.ResultSuccess, "ra")
	got = h.take()
	equal(t, "b follows", describe(got), []string{"c:Result(a,Success,1)", "w:Task(b)"})
	checkInlineArgs(t, "node b", got[1].msg,
		[]protocol.Argument{{Type: protocol.ArgumentObjectID, Data: []byte("ra")}, inlineArg})
	checkInvariants(t, h.s)
}

func keepResult(t *testing.T, what string, m protocol.Message) bool {
	t.Helper()
	task, ok := m.(*protocol.Task)
	if !ok {
		t.Fatalf("%s: sent %T, want *protocol.Task", what, m)
	}
	return task.KeepResult
}

// Task.KeepResult (docs/protocol.md §7.1): the scheduler never asks for it;
// a client's request is forwarded. An inline-only result (no result ids)
// is accepted and forwarded as is.
func TestKeepResultOnlyWhereNeeded(t *testing.T) {
	h := oneWorker(t, "w", 10)

	h.submit("c", "t1")
	got := h.take()
	equal(t, "plain task", describe(got), []string{"w:Task(t1)"})
	if keepResult(t, "plain task", got[0].msg) {
		t.Fatal("plain task asks to keep its result")
	}
	inline := []byte{0x80, 0x05, 0x4b, 0x07, 0x2e}
	h.handle("w", &protocol.TaskResult{TaskID: []byte("t1"), Type: protocol.ResultSuccess, Inline: inline})
	got = h.take()
	equal(t, "inline-only result", describe(got), []string{"c:Result(t1,Success,0)"})
	if r := got[0].msg.(*protocol.TaskResult); !bytes.Equal(r.Inline, inline) {
		t.Fatalf("inline bytes not forwarded: %x", r.Inline)
	}
	if h.userObjects() != 0 || len(h.out.deleted) != 0 {
		t.Fatalf("inline-only result created %d objects, deleted %v", h.userObjects(), h.out.deleted)
	}

	// Client-requested keep is forwarded unchanged.
	kept := newTask("t2", "c")
	kept.KeepResult = true
	h.handle("c", kept)
	got = h.take()
	equal(t, "kept task", describe(got), []string{"w:Task(t2)"})
	if !keepResult(t, "kept task", got[0].msg) {
		t.Fatal("client's KeepResult dropped")
	}
	h.handle("c", &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte("c"),
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("r2")}}})
	h.result("w", "t2", protocol.ResultSuccess, "r2")
	h.take()

	// diamond: a feeds b and c, b and c feed d (the target). No node needs
	// its result stored: a small result reaches the dependents inline.
	h.handle("c", diamond())
	got = h.take()
	equal(t, "a", describe(got), []string{"w:Task(a)"})
	if keepResult(t, "node a", got[0].msg) {
		t.Fatal("node a asks to keep its result")
	}
	h.handle("c", &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte("c"),
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("ra"), []byte("rb"), []byte("rc")}}})
	h.result("w", "a", protocol.ResultSuccess, "ra")
	got = h.take()
	equal(t, "b and c", describe(got), []string{"c:Result(a,Success,1)", "w:Task(b)", "w:Task(c)"})
	if keepResult(t, "node b", got[1].msg) || keepResult(t, "node c", got[2].msg) {
		t.Fatal("nodes b and c ask to keep their results")
	}
	h.result("w", "b", protocol.ResultSuccess, "rb")
	h.take()
	h.result("w", "c", protocol.ResultSuccess, "rc")
	got = h.take()
	equal(t, "d", describe(got), []string{"c:Result(c,Success,1)", "w:Task(d)", "w:ObjectDelete(ra)"})
	if keepResult(t, "node d", got[1].msg) {
		t.Fatal("target d feeds nothing but is kept")
	}
	h.handle("w", &protocol.TaskResult{TaskID: []byte("d"), Type: protocol.ResultSuccess, Inline: inline})
	got = h.take()
	equal(t, "graph done", describe(got)[:2], []string{"c:Result(d,Success,0)", "c:Result(G,Success,0)"})
	if r := got[0].msg.(*protocol.TaskResult); !bytes.Equal(r.Inline, inline) {
		t.Fatalf("target's inline bytes not forwarded: %x", r.Inline)
	}
	h.advance(1e9)
	h.take()
	if !h.wasDeleted("rb") || !h.wasDeleted("rc") {
		t.Fatal("intermediate results not released")
	}
	if _, ok := h.s.objects["r2"]; !ok || h.userObjects() != 1 {
		t.Fatalf("only the kept plain result should remain, have %d objects", h.userObjects())
	}
	checkInvariants(t, h.s)
}

// A failing graph node whose exception is inline-only passes the inline
// bytes on to the nodes that will not run.
func TestGraphInlineOnlyFailurePropagates(t *testing.T) {
	h := graphHarness(t)
	h.take()
	exc := []byte("pickled exception")
	h.handle("w", &protocol.TaskResult{TaskID: []byte("a"), Type: protocol.ResultFailed, Inline: exc})
	got := filter(h.take(), protocol.KindTaskCancel)
	var n int
	for _, s := range got {
		if r, ok := s.msg.(*protocol.TaskResult); ok && string(r.TaskID) != "G" {
			n++
			if r.Type != protocol.ResultFailed || !bytes.Equal(r.Inline, exc) || len(r.Results) != 0 {
				t.Fatalf("node %s got %+v", r.TaskID, r)
			}
		}
	}
	if n != 4 {
		t.Fatalf("%d node results, want 4: %v", n, describe(got))
	}
	checkInvariants(t, h.s)
}

// A graph node's inline-only result reaches its dependents as an inline
// argument; a stored one as its object id. The bytes are dropped once every
// dependent has finished.
func TestGraphPassesInlineResultsToDependents(t *testing.T) {
	h := oneWorker(t, "w", 10)
	h.handle("c", diamond())
	equal(t, "a", describe(h.take()), []string{"w:Task(a)"})
	small := []byte{0x80, 0x05, 0x4b, 0x2a, 0x2e}
	argObj := protocol.Argument{Type: protocol.ArgumentObjectID, Data: []byte("arg")} // diamond's own argument
	h.handle("w", &protocol.TaskResult{TaskID: []byte("a"), Type: protocol.ResultSuccess, Inline: small})
	got := h.take()
	equal(t, "b and c", describe(got), []string{"c:Result(a,Success,0)", "w:Task(b)", "w:Task(c)"})
	for i, name := range []string{"b", "c"} {
		checkInlineArgs(t, "node "+name, got[i+1].msg, []protocol.Argument{{Type: protocol.ArgumentInline, Data: small}, argObj})
	}
	g := h.s.graphs["G"]
	if g == nil || g.nodes["a"].inline == nil {
		t.Fatal("a's inline result dropped before its dependents finished")
	}
	// b's result is stored (large), c's inline: d gets one of each.
	h.handle("c", &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte("c"),
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("rb")}}})
	h.result("w", "b", protocol.ResultSuccess, "rb")
	h.take()
	h.handle("w", &protocol.TaskResult{TaskID: []byte("c"), Type: protocol.ResultSuccess, Inline: small})
	got = filter(h.take(), protocol.KindTaskResult)
	equal(t, "d", describe(got), []string{"w:Task(d)"})
	checkInlineArgs(t, "node d", got[0].msg, []protocol.Argument{
		{Type: protocol.ArgumentObjectID, Data: []byte("rb")}, {Type: protocol.ArgumentInline, Data: small}, argObj})
	if g.nodes["a"].inline != nil {
		t.Fatal("a's inline result still held after both dependents finished")
	}
	checkInvariants(t, h.s)
}

// oneWorker is a harness with client c and worker id of the given capacity
// registered, their replies and status taken.
func oneWorker(t *testing.T, id string, capacity uint32) *harness {
	h := newHarness(t, nil)
	h.client("c")
	h.worker(id, capacity)
	h.take()
	h.takePub()
	return h
}
