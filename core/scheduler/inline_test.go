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
	h := newHarness(t, nil)
	h.client("c")
	h.worker("a", 3)
	h.take()
	h.takePub()
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
	h := newHarness(t, nil)
	h.client("c")
	h.worker("w", 10)
	h.take()
	h.takePub()
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
