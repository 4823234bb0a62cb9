package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// diamond: a -> b, a -> c, (b, c) -> d; d is the target.
func diamond(caps ...string) *protocol.GraphTask {
	node := func(id string, deps ...string) protocol.Task {
		t := *newTask(id, "c", caps...)
		for _, d := range deps {
			t.Arguments = append(t.Arguments, protocol.Argument{Type: protocol.ArgumentTask, Data: []byte(d)})
		}
		t.Arguments = append(t.Arguments, protocol.Argument{Type: protocol.ArgumentObjectID, Data: []byte("arg")})
		return t
	}
	return &protocol.GraphTask{TaskID: []byte("G"), Source: []byte("c"), Targets: [][]byte{[]byte("d")},
		Graph: []protocol.Task{node("a"), node("b", "a"), node("c", "a"), node("d", "b", "c")}}
}

func graphHarness(t *testing.T, caps ...string) *harness {
	h := newHarness(t, nil)
	h.client("c")
	h.worker("w", 10, caps...)
	h.take()
	h.takePub()
	h.handle("c", diamond(caps...))
	return h
}

func TestGraphSuccess(t *testing.T) { // items 51, 52, 53, 54, 55, 56
	h := graphHarness(t, "gpu")
	pub := describePub(h.takePub())
	equal(t, "StateGraphTask per node", pub[:4], []string{"StateGraphTask(G,a,Normal,[])", "StateGraphTask(G,b,Normal,[a])",
		"StateGraphTask(G,c,Normal,[a])", "StateGraphTask(G,d,Target,[b,c])"})
	got := h.take()
	equal(t, "only a is ready", describe(got), []string{"w:Task(a)"})
	if len(got[0].msg.(*protocol.Task).Capabilities) != 1 {
		t.Fatal("node capabilities dropped")
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		h.handle("c", &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte("c"),
			Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("r" + n)}}})
	}
	h.result("w", "a", protocol.ResultSuccess, "ra")
	got = h.take()
	equal(t, "b and c follow", describe(got), []string{"c:Result(a,Success,1)", "w:Task(b)", "w:Task(c)"})
	arg := got[1].msg.(*protocol.Task).Arguments[0]
	if arg.Type != protocol.ArgumentObjectID || string(arg.Data) != "ra" {
		t.Fatalf("dependency argument not replaced: %+v", arg)
	}
	h.result("w", "b", protocol.ResultSuccess, "rb")
	equal(t, "d waits for c", describe(h.take()), []string{"c:Result(b,Success,1)"})
	if len(h.out.deleted) != 0 {
		t.Fatal("ra freed while c still needs it")
	}
	h.result("w", "c", protocol.ResultSuccess, "rc")
	equal(t, "d", describe(h.take()), []string{"c:Result(c,Success,1)", "w:Task(d)", "w:ObjectDelete(ra)"})
	h.advance(1e9)
	h.take()
	h.result("w", "d", protocol.ResultSuccess, "rd")
	equal(t, "umbrella once", describe(h.take()), []string{"c:Result(d,Success,1)", "c:Result(G,Success,0)", "w:ObjectDelete(rb,rc)"})
	h.advance(1e9)
	if _, ok := h.s.objects["rd"]; !ok || h.userObjects() != 1 {
		t.Fatalf("only the target result should remain, have %d objects", h.userObjects())
	}
	if len(h.s.graphs) != 0 || len(h.s.taskToGraph) != 0 || len(h.s.clientTasks) != 0 {
		t.Fatal("graph state left behind")
	}
	checkInvariants(t, h.s)
}

func TestGraphFailure(t *testing.T) { // item 57
	h := graphHarness(t)
	h.take()
	h.result("w", "a", protocol.ResultSuccess, "ra")
	h.take()
	h.handle("c", &protocol.ObjectInstruction{Type: protocol.InstructionCreate, ObjectUser: []byte("c"),
		Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("err")}, Names: [][]byte{[]byte("e")}}})
	h.result("w", "b", protocol.ResultFailed, "err")
	got := describe(h.take())
	equal(t, "propagated", got, []string{"c:Result(b,Failed,1)", "c:Result(c,Failed,1)", "w:TaskCancel(c,force=true)",
		"c:Result(d,Failed,1)", "c:Result(G,Failed,0)"})
	if len(h.out.dups) != 2 || h.out.dups[0][1] != "err" {
		t.Fatalf("duplicates %v", h.out.dups)
	}
	// The running node's own result is not delivered a second time.
	h.result("w", "c", protocol.ResultSuccess, "rc")
	if got := h.take(); len(got) != 0 {
		t.Fatalf("second result delivered: %v", describe(got))
	}
	checkInvariants(t, h.s)
}

func TestGraphCancel(t *testing.T) { // item 58: the graph-cancel crash path
	for _, via := range []string{"G", "b", "disconnect"} {
		t.Run(via, func(t *testing.T) {
			h := graphHarness(t)
			h.take()
			h.result("w", "a", protocol.ResultSuccess, "ra")
			h.take() // b and c running, d pending
			if via == "disconnect" {
				h.handle("c", &protocol.ClientDisconnect{Type: protocol.DisconnectClient})
			} else {
				h.cancel("c", via, true)
			}
			equal(t, "cancel", describe(filter(h.take(), protocol.KindObjectInstruction)), []string{"w:TaskCancel(b,force=true)",
				"w:TaskCancel(c,force=true)", "c:Confirm(d,Canceled)"})
			h.confirm("w", "b", protocol.CancelConfirmCanceled)
			h.cancel("c", "G", true) // repeated cancel: nothing new
			h.confirm("w", "c", protocol.CancelConfirmNotFound)
			equal(t, "exactly one umbrella confirm", describe(filter(h.take(), protocol.KindObjectInstruction)), []string{
				"c:Confirm(b,Canceled)", "c:Confirm(c,CancelNotFound)", "c:Confirm(G,Canceled)"})
			checkInvariants(t, h.s)
			if len(h.s.graphs) != 0 || len(h.s.taskToGraph) != 0 {
				t.Fatal("graph left behind")
			}
		})
	}
}

func TestGraphRefused(t *testing.T) {
	fn := []byte("fn")
	dep := func(id string) []protocol.Argument {
		return []protocol.Argument{{Type: protocol.ArgumentTask, Data: []byte(id)}}
	}
	cases := []struct {
		name   string
		from   string
		g      *protocol.GraphTask
		reason dropReason
	}{
		{"cycle", "c", &protocol.GraphTask{TaskID: []byte("G"), Graph: []protocol.Task{
			{TaskID: []byte("a"), FuncObjectID: fn, Arguments: dep("b")},
			{TaskID: []byte("b"), FuncObjectID: fn, Arguments: dep("a")}}}, dropBadGraph},
		{"foreign dependency", "c", &protocol.GraphTask{TaskID: []byte("G"), Graph: []protocol.Task{
			{TaskID: []byte("a"), FuncObjectID: fn, Arguments: dep("zz")}}}, dropBadGraph},
		{"duplicate node", "c", &protocol.GraphTask{TaskID: []byte("G"), Graph: []protocol.Task{
			{TaskID: []byte("a"), FuncObjectID: fn}, {TaskID: []byte("a"), FuncObjectID: fn}}}, dropBadGraph},
		{"unknown function object", "c", &protocol.GraphTask{TaskID: []byte("G"), Graph: []protocol.Task{
			{TaskID: []byte("a"), FuncObjectID: fn}, {TaskID: []byte("b"), FuncObjectID: []byte("nope"), Arguments: dep("a")}}}, dropUnknownObject},
		{"unknown argument object", "c", &protocol.GraphTask{TaskID: []byte("G"), Graph: []protocol.Task{
			{TaskID: []byte("a"), FuncObjectID: fn, Arguments: []protocol.Argument{{Type: protocol.ArgumentObjectID, Data: []byte("nope")}}}}}, dropUnknownObject},
		{"another client's object", "c", &protocol.GraphTask{TaskID: []byte("G"), Graph: []protocol.Task{
			{TaskID: []byte("a"), FuncObjectID: fn, Arguments: []protocol.Argument{{Type: protocol.ArgumentObjectID, Data: []byte("dobj")}}}}}, dropUnknownObject},
		{"graph source names another client", "c", &protocol.GraphTask{TaskID: []byte("G"), Source: []byte("d"), Graph: []protocol.Task{
			{TaskID: []byte("a"), FuncObjectID: fn}}}, dropImpersonation},
		{"node source names another client", "c", &protocol.GraphTask{TaskID: []byte("G"), Graph: []protocol.Task{
			{TaskID: []byte("a"), FuncObjectID: fn, Source: []byte("d")}}}, dropImpersonation},
		{"unregistered client", "x", &protocol.GraphTask{TaskID: []byte("G"), Graph: []protocol.Task{
			{TaskID: []byte("a"), FuncObjectID: fn}}}, dropNotRegistered},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.client("c")
			h.client("d")
			h.createObjects("d", "dobj")
			h.worker("w", 10)
			h.take()
			h.takePub()
			h.handle(tc.from, tc.g)
			equal(t, "refused", describe(noEchoes(h.take())), []string{tc.from + ":Result(G,Rejected,0)"})
			if len(h.s.tasks) != 0 || len(h.s.graphs) != 0 || len(h.s.taskToGraph) != 0 || len(h.s.clientTasks) != 0 {
				t.Fatal("state left")
			}
			if got := h.s.Dropped(); got[tc.reason.String()] != 1 || len(got) != 1 {
				t.Fatalf("counted %v, want one %q", got, tc.reason)
			}
			if p := h.takePub(); len(p) != 0 {
				t.Fatalf("published for a refused graph: %v", describePub(p))
			}
		})
	}
	h := newHarness(t, nil)
	h.client("c")
	h.take()
	h.handle("c", &protocol.GraphTask{TaskID: []byte("E")})
	equal(t, "empty graph", describe(h.take()), []string{"c:Result(E,Success,0)"})
}

// TestGraphKeepsObjectsNodesNeed: a client that releases an object while
// unfinished graph nodes still need it (a target's result feeding a
// later node, or an input of a node not yet run) must not make the graph
// hang: the object is kept until no unfinished node needs it, then the
// release takes effect.
func TestGraphKeepsObjectsNodesNeed(t *testing.T) {
	// a -> b, a -> c, (b, c) -> d with a and d targets; every node also
	// reads the client's object "arg".
	graph := func() *protocol.GraphTask {
		g := diamond()
		g.Targets = [][]byte{[]byte("a"), []byte("d")}
		return g
	}
	cases := []struct {
		name string
		// release runs after a's result went to the client (b and c
		// running, d pending).
		release []string
		kept    string // must survive until the graph no longer needs it
		freedBy string // the node whose finish frees it
	}{
		{name: "target result released while dependents run", release: []string{"ra"}, kept: "ra", freedBy: "c"},
		{name: "input released while a node is pending", release: []string{"arg"}, kept: "arg", freedBy: "d"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.client("c")
			h.worker("w", 10)
			h.createObjects("c", "fn", "arg")
			h.take()
			h.handle("c", graph())
			equal(t, "a first", describe(h.take()), []string{"w:Task(a)"})
			h.createObjects("c", "ra")
			h.result("w", "a", protocol.ResultSuccess, "ra")
			equal(t, "b and c", describe(h.take()), []string{"c:Result(a,Success,1)", "w:Task(b)", "w:Task(c)"})

			h.deleteObjects("c", tc.release...)
			h.advance(time.Second)
			if h.wasDeleted(tc.kept) || h.s.objects[tc.kept] == nil {
				t.Fatalf("%s deleted while the graph still needs it", tc.kept)
			}
			if got := noEchoes(h.take()); len(got) != 0 {
				t.Fatalf("unexpected sends %v", describe(got))
			}
			h.createObjects("c", "rb", "rc")
			for _, n := range []string{"b", "c", "d"} {
				if n == "d" {
					got := describe(h.take())
					if !contains(got, "w:Task(d)") {
						t.Fatalf("d not submitted: %v", got)
					}
					h.createObjects("c", "rd")
				}
				h.result("w", n, protocol.ResultSuccess, "r"+n)
				h.advance(time.Second)
				if freed := h.wasDeleted(tc.kept); freed != (n == tc.freedBy || n > tc.freedBy) {
					t.Fatalf("after %s finished: %s deleted=%v (freed by %s)", n, tc.kept, freed, tc.freedBy)
				}
			}
			if got := describe(h.take()); !contains(got, "c:Result(G,Success,0)") {
				t.Fatalf("graph did not finish: %v", got)
			}
			if h.s.objects[tc.kept] != nil {
				t.Fatalf("%s still tracked after the graph finished", tc.kept)
			}
			// The other target result and the untouched input survive.
			for _, id := range []string{"rd", "fn"} {
				if h.s.objects[id] == nil {
					t.Fatalf("%s freed", id)
				}
			}
			checkInvariants(t, h.s)
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A node naming the same dependency several times waits for it once and
// counts once among its dependents, whether it has few dependencies
// (scanned) or more than manyDeps (tracked in a set).
func TestGraphDuplicateDependencies(t *testing.T) {
	for _, distinct := range []int{2, manyDeps + 4} {
		t.Run(fmt.Sprint(distinct), func(t *testing.T) {
			h := newHarness(t, nil)
			h.client("c")
			h.worker("w", uint32(distinct+2))
			h.take()
			g := &protocol.GraphTask{TaskID: []byte("G"), Targets: [][]byte{[]byte("z")}}
			last := *newTask("z", "c")
			for i := 0; i < distinct; i++ {
				id := fmt.Sprintf("d%d", i)
				g.Graph = append(g.Graph, *newTask(id, "c"))
				for range 3 { // each named three times
					last.Arguments = append(last.Arguments, protocol.Argument{Type: protocol.ArgumentTask, Data: []byte(id)})
				}
			}
			g.Graph = append(g.Graph, last)
			h.handle("c", g)
			z := h.s.graphs["G"].nodes["z"]
			if len(z.deps) != distinct || z.unresolved != distinct {
				t.Fatalf("z: %d deps, %d unresolved, want %d", len(z.deps), z.unresolved, distinct)
			}
			if d := h.s.graphs["G"].nodes["d0"]; len(d.dependents) != 1 || d.openDependents != 1 {
				t.Fatalf("d0: %d dependents, %d open", len(d.dependents), d.openDependents)
			}
			h.take()
			for i := 0; i < distinct; i++ {
				if h.s.tasks["z"] != nil {
					t.Fatalf("z submitted after %d of %d dependencies", i, distinct)
				}
				h.result("w", fmt.Sprintf("d%d", i), protocol.ResultSuccess)
			}
			if h.s.tasks["z"] == nil {
				t.Fatal("z not submitted after its dependencies")
			}
			h.result("w", "z", protocol.ResultSuccess)
			if len(h.s.graphs) != 0 {
				t.Fatal("graph not done")
			}
			checkInvariants(t, h.s)
		})
	}
}

// TestGraphNodePinsEachObjectOnce: a node's object arguments are pinned
// once each, whether the node names few (a list) or many (a set, from
// manyDeps on), and every pin ends with the node.
func TestGraphNodePinsEachObjectOnce(t *testing.T) {
	for _, distinct := range []int{3, manyDeps, 4 * manyDeps} {
		t.Run(fmt.Sprint(distinct), func(t *testing.T) {
			h := newHarness(t, nil)
			ids, g := graphOfOneNodeNaming(h, distinct, 3) // each object named three times
			h.handle("c", g)
			for _, id := range ids {
				if p := h.s.objects[id].pins; p != 1 {
					t.Fatalf("object %s pinned %d times, want 1", id, p)
				}
			}
			h.worker("w", 10)
			h.take()
			h.result("w", "n", protocol.ResultSuccess)
			for _, id := range ids {
				if o := h.s.objects[id]; o != nil && o.pins != 0 {
					t.Fatalf("object %s still pinned %d times after the node ended", id, o.pins)
				}
			}
			checkInvariants(t, h.s)
		})
	}
}

// BenchmarkGraphNodeManyObjects: one GraphTask whose one node names K
// objects. Pinning scanned the node's list for each argument (O(K²): a
// review measured 0.73 s for 20,000 and 9.7 s for 80,000); with the set
// from manyDeps on it is linear.
func BenchmarkGraphNodeManyObjects(b *testing.B) {
	for _, k := range []int{20000, 80000} {
		b.Run(fmt.Sprint(k), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				h := newHarness(b, nil)
				_, g := graphOfOneNodeNaming(h, k, 1)
				b.StartTimer()
				h.handle("c", g)
			}
		})
	}
}

// TestGraphNodesCountInTheTaskBound: MaxTasksPerClient bounds a client's
// unfinished tasks with its graphs' nodes, not one per graph: a graph that
// would take the client past it is refused, and a finished graph frees its
// nodes' share.
func TestGraphNodesCountInTheTaskBound(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxTasksPerClient = 4 })
	h.client("c")
	graph := func(id string, nodes ...string) *protocol.GraphTask {
		g := &protocol.GraphTask{TaskID: []byte(id)}
		for _, n := range nodes {
			g.Graph = append(g.Graph, *newTask(n, "c"))
		}
		return g
	}
	h.submit("c", "t1")
	h.handle("c", graph("G1", "a", "b", "c"))
	h.handle("c", graph("G2", "d"))
	equal(t, "the second graph would make 5", describe(noEchoes(h.take())),
		[]string{"c:Result(G2,Rejected,0)"})
	h.submit("c", "t2")
	equal(t, "nor a task past 4", describe(noEchoes(h.take())), []string{"c:Result(t2,Rejected,0)"})
	checkInvariants(t, h.s)
	h.worker("w", 10)
	h.take()
	for _, id := range []string{"t1", "a", "b", "c"} {
		h.result("w", id, protocol.ResultSuccess)
	}
	h.take()
	h.handle("c", graph("G3", "e", "f", "g", "h"))
	h.take()
	if h.s.clientLoad["c"] != 4 {
		t.Fatalf("load %d after G1 and t1 ended and G3 came, want 4", h.s.clientLoad["c"])
	}
	checkInvariants(t, h.s)
}

// graphOfOneNodeNaming registers client "c" with k objects and returns
// their ids and a GraphTask "G" whose one node "n" names each of them
// times times.
func graphOfOneNodeNaming(h *harness, k, times int) ([]string, *protocol.GraphTask) {
	h.client("c")
	ids := make([]string, k)
	for i := range ids {
		ids[i] = fmt.Sprintf("o%07d", i)
	}
	h.createObjects("c", ids...)
	n := *newTask("n", "c")
	for round := 0; round < times; round++ {
		for _, id := range ids {
			n.Arguments = append(n.Arguments, protocol.Argument{Type: protocol.ArgumentObjectID, Data: []byte(id)})
		}
	}
	return ids, &protocol.GraphTask{TaskID: []byte("G"), Graph: []protocol.Task{n}}
}
