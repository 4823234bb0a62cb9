package scheduler

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

func TestShrinkDue(t *testing.T) {
	cases := []struct {
		n, peak int
		want    bool
	}{
		{0, 0, false},
		{0, shrinkMinPeak - 1, false}, // small tables stay
		{0, shrinkMinPeak, true},
		{shrinkMinPeak / shrinkFactor, shrinkMinPeak, true},
		{shrinkMinPeak/shrinkFactor + 1, shrinkMinPeak, false},
		{6000, 100000, true},
		{7000, 100000, false},
	}
	for _, c := range cases {
		if got := shrinkDue(c.n, c.peak); got != c.want {
			t.Errorf("shrinkDue(%d, %d) = %v, want %v", c.n, c.peak, got, c.want)
		}
	}
}

// The task table is made again once the tasks of a burst are gone, keeping
// the tasks still held; a table that did not shrink enough is kept.
func TestTaskTableShrinks(t *testing.T) {
	h := newHarness(t, nil)
	h.client("c")
	n := shrinkMinPeak + 100
	for i := 0; i < n; i++ {
		h.submit("c", fmt.Sprintf("t%d", i)) // no worker: all wait
	}
	h.advance(100 * time.Millisecond)
	if h.s.peaks.tasks != n {
		t.Fatalf("peak %d, want %d", h.s.peaks.tasks, n)
	}
	table := reflect.ValueOf(h.s.tasks).UnsafePointer()
	keep := n / shrinkFactor
	for i := 0; i < n-keep-1; i++ { // one too many left
		h.cancel("c", fmt.Sprintf("t%d", i), false)
	}
	h.advance(100 * time.Millisecond)
	if reflect.ValueOf(h.s.tasks).UnsafePointer() != table {
		t.Fatal("table made again before it shrank to peak/shrinkFactor")
	}
	h.cancel("c", fmt.Sprintf("t%d", n-keep-1), false)
	h.advance(100 * time.Millisecond)
	if reflect.ValueOf(h.s.tasks).UnsafePointer() == table {
		t.Fatal("table not made again")
	}
	if len(h.s.tasks) != keep || h.s.peaks.tasks != keep || h.s.tasks[fmt.Sprintf("t%d", n-1)] == nil {
		t.Fatalf("after the re-make: %d tasks, peak %d", len(h.s.tasks), h.s.peaks.tasks)
	}
	// The kept tasks still run.
	h.take()
	h.worker("w", uint32(keep))
	h.advance(100 * time.Millisecond)
	sent := 0
	for _, s := range h.take() {
		if _, ok := s.msg.(*protocol.Task); ok {
			sent++
		}
	}
	if sent != keep {
		t.Fatalf("%d tasks sent to the worker, want %d", sent, keep)
	}
	checkInvariants(t, h.s)
}

// The graph and object tables are made again once a large graph is done
// and a burst of objects released; tables that still hold work are kept
// intact (a later node and object still work).
func TestGraphAndObjectTablesShrink(t *testing.T) {
	h := newHarness(t, nil)
	h.client("c")
	n := shrinkMinPeak + 100
	g := &protocol.GraphTask{TaskID: []byte("G"), Targets: [][]byte{[]byte("n0")}}
	for i := 0; i < n; i++ {
		g.Graph = append(g.Graph, *newTask(fmt.Sprintf("n%d", i), "c"))
	}
	h.handle("c", g)
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, fmt.Sprintf("o%d", i))
	}
	h.createObjects("c", ids...)
	h.advance(100 * time.Millisecond)
	if h.s.peaks.taskToGraph != n+1 || h.s.peaks.objects < n {
		t.Fatalf("peaks %+v", h.s.peaks)
	}
	graphs := reflect.ValueOf(h.s.taskToGraph).UnsafePointer()
	objects := reflect.ValueOf(h.s.objects).UnsafePointer()
	h.deleteObjects("c", ids...)
	h.worker("w", uint32(n))
	h.take()
	for i := 0; i < n; i++ {
		h.result("w", fmt.Sprintf("n%d", i), protocol.ResultSuccess)
	}
	if len(h.s.taskToGraph) != 0 || len(h.s.graphs) != 0 {
		t.Fatalf("graph not done: %d ids, %d graphs", len(h.s.taskToGraph), len(h.s.graphs))
	}
	h.advance(100 * time.Millisecond)
	if reflect.ValueOf(h.s.taskToGraph).UnsafePointer() == graphs {
		t.Fatal("taskToGraph not made again")
	}
	if reflect.ValueOf(h.s.objects).UnsafePointer() == objects {
		t.Fatal("objects not made again")
	}
	if len(h.s.objects) != len(harnessObjects) || h.s.objects["fn"] == nil {
		t.Fatalf("objects after the re-make: %d", len(h.s.objects))
	}
	// The re-made tables work: another graph runs on the kept objects.
	h.take()
	h.handle("c", &protocol.GraphTask{TaskID: []byte("H"), Graph: []protocol.Task{*newTask("m", "c")}})
	h.result("w", "m", protocol.ResultSuccess)
	equal(t, "second graph", describe(noEchoes(h.take())), []string{"w:Task(m)", "c:Result(m,Success,0)", "c:Result(H,Success,0)"})
	checkInvariants(t, h.s)
}

// A kept task holds no empty capability map and shares its function
// object's id with the object table instead of a copy of its own; what it
// sends to a worker encodes the same.
func TestCompactTask(t *testing.T) {
	h := newHarness(t, nil)
	h.client("c")
	m := newTask("t", "c")
	m.Capabilities = map[string]int64{} // as msgp decodes an empty map
	m.FuncObjectID = []byte("fn")       // a copy of its own
	want := protocol.MustEncode(&protocol.Task{TaskID: []byte("t"), Source: []byte("c"), FuncObjectID: []byte("fn"),
		Capabilities: map[string]int64{}})
	h.handle("c", m)
	tk := h.s.tasks["t"]
	if tk == nil || tk.msg.Capabilities != nil {
		t.Fatal("empty capability map kept")
	}
	if &tk.msg.FuncObjectID[0] != &h.s.objects["fn"].id[0] {
		t.Fatal("function object id not shared with the object table")
	}
	h.worker("w", 1)
	var sentTask *protocol.Task
	for _, s := range h.take() {
		if tm, ok := s.msg.(*protocol.Task); ok {
			sentTask = tm
		}
	}
	if sentTask == nil || !bytes.Equal(protocol.MustEncode(sentTask), want) {
		t.Fatalf("task sent to the worker encodes differently")
	}
}

// A client that lives on after a burst keeps a few tasks and objects; its
// sets of them are made again, keeping those, and their peaks are
// forgotten with the sets.
func TestClientSetsShrink(t *testing.T) {
	h := newHarness(t, nil)
	h.client("c")
	n := shrinkMinPeak + 100
	var ids []string
	for i := 0; i < n; i++ {
		h.submit("c", fmt.Sprintf("t%d", i))
		ids = append(ids, fmt.Sprintf("o%d", i))
	}
	h.createObjects("c", ids...)
	h.advance(100 * time.Millisecond)
	if h.s.peaks.clientTasks["c"] != n || h.s.peaks.clientObjects["c"] != n+len(harnessObjects) {
		t.Fatalf("peaks %v %v", h.s.peaks.clientTasks, h.s.peaks.clientObjects)
	}
	tasks := reflect.ValueOf(h.s.clientTasks["c"]).UnsafePointer()
	objects := reflect.ValueOf(h.s.clientObjects["c"]).UnsafePointer()
	for i := 1; i < n; i++ { // t0 stays
		h.cancel("c", fmt.Sprintf("t%d", i), false)
	}
	h.deleteObjects("c", ids...)
	h.advance(100 * time.Millisecond)
	if reflect.ValueOf(h.s.clientTasks["c"]).UnsafePointer() == tasks {
		t.Fatal("client's task set not made again")
	}
	if reflect.ValueOf(h.s.clientObjects["c"]).UnsafePointer() == objects {
		t.Fatal("client's object set not made again")
	}
	if _, ok := h.s.clientTasks["c"]["t0"]; !ok || len(h.s.clientTasks["c"]) != 1 {
		t.Fatalf("task set after the re-make: %v", h.s.clientTasks["c"])
	}
	if _, ok := h.s.clientObjects["c"]["fn"]; !ok || len(h.s.clientObjects["c"]) != len(harnessObjects) {
		t.Fatalf("object set after the re-make: %d", len(h.s.clientObjects["c"]))
	}
	// The kept task still runs and the client's object still works.
	h.take()
	h.worker("w", 2)
	h.result("w", "t0", protocol.ResultSuccess)
	h.submit("c", "u")
	h.result("w", "u", protocol.ResultSuccess)
	equal(t, "after", describe(noEchoes(h.take())), []string{"w:Task(t0)", "c:Result(t0,Success,0)", "w:Task(u)", "c:Result(u,Success,0)"})
	h.advance(100 * time.Millisecond)
	if _, ok := h.s.peaks.clientTasks["c"]; ok {
		t.Fatal("peak kept for a set that is gone")
	}
	checkInvariants(t, h.s)
}
