package scheduler

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strconv"

	"github.com/opengris/scaler/core/protocol"
)

type nodeState uint8

const (
	nodePending   nodeState = iota // waiting for dependencies
	nodeSubmitted                  // a task exists for it
	nodeDone
)

type graphMode uint8

const (
	graphActive graphMode = iota
	graphCanceling
	graphAborting
)

// gnode is one node of a graph.
type gnode struct {
	msg            *protocol.Task // as received
	deps           []string       // distinct dependency node ids
	dependents     []string
	unresolved     int // dependencies not yet succeeded
	openDependents int // dependents not yet finished
	state          nodeState
	task           *task
	results        [][]byte
	// inline is the node's small result when it has no result object (the
	// worker sent it inline only); dependents get it as an inline argument.
	inline   []byte
	released bool
	// pinned are the objects this node needs (its function, object
	// arguments and its dependencies' results) that it keeps alive until
	// it is done, even if their owner releases them meanwhile.
	pinned []string
	pinSet map[string]struct{} // pinned as a set, once it is large
}

// pinObject keeps id alive for n (once per node and id).
func (s *Scheduler) pinObject(n *gnode, id []byte) {
	if n.pinSet == nil && len(n.pinned) >= manyDeps {
		n.pinSet = make(map[string]struct{}, len(n.pinned)*2)
		for _, k := range n.pinned {
			n.pinSet[k] = struct{}{}
		}
	}
	if n.pinSet != nil {
		if _, ok := n.pinSet[string(id)]; ok {
			return
		}
	} else if slices.Contains(n.pinned, string(id)) {
		return
	}
	if s.pin(id) {
		n.pinned = append(n.pinned, string(id))
		if n.pinSet != nil {
			n.pinSet[string(id)] = struct{}{}
		}
	}
}

// unpinNode lets go of everything n kept alive.
func (s *Scheduler) unpinNode(n *gnode) {
	pinned := n.pinned
	n.pinned, n.pinSet = nil, nil
	for _, k := range pinned {
		s.unpin(k)
	}
}

// graph is an accepted GraphTask. Its umbrella id is answered exactly once:
// TaskResult (success or the first failure) or TaskCancelConfirm.
type graph struct {
	id       string
	idb      []byte
	client   string
	clientb  []byte
	nodes    map[string]*gnode
	order    []string
	targets  map[string]bool
	open     int // nodes not done
	mode     graphMode
	inCancel bool // a cancel or abort loop is running: do not finish yet
	done     bool // umbrella answered
}

// rejectGraph answers a refused graph (counted, not logged one by one: a
// peer can send any number of them).
func (s *Scheduler) rejectGraph(to []byte, m *protocol.GraphTask, r dropReason, why string) {
	s.dropped(r, to, m.Kind())
	s.out.Send(to, &protocol.TaskResult{TaskID: m.TaskID, Type: protocol.ResultRejected, Message: "graph refused: " + why})
}

func (s *Scheduler) onGraphTask(from []byte, m *protocol.GraphTask) {
	dropped, r, why := s.checkSubmission(from, m.TaskID, m.Source, m.Kind())
	if dropped {
		return
	}
	if why != "" {
		s.rejectGraph(from, m, r, why)
		return
	}
	id := string(m.TaskID)
	if load := s.clientLoad[string(from)]; load+len(m.Graph) > s.cfg.MaxTasksPerClient {
		s.rejectGraph(from, m, dropTooMany, "the graph's "+strconv.Itoa(len(m.Graph))+" nodes would take the client past the "+
			strconv.Itoa(s.cfg.MaxTasksPerClient)+" unfinished tasks one client may have (it has "+strconv.Itoa(load)+")")
		return
	}
	clientb := from
	m.Source = from
	g := &graph{id: id, idb: m.TaskID, client: string(clientb), clientb: clientb,
		nodes: make(map[string]*gnode, len(m.Graph)), order: make([]string, 0, len(m.Graph)), targets: map[string]bool{}}
	for i := range m.Graph {
		n := &m.Graph[i]
		nid := string(n.TaskID)
		if nid == "" || nid == id || g.nodes[nid] != nil || s.taskIDUsed(nid) {
			s.rejectGraph(clientb, m, dropBadGraph, "missing, duplicate or already used node task id")
			return
		}
		if len(n.Source) > 0 && !bytes.Equal(n.Source, clientb) {
			s.rejectGraph(clientb, m, dropImpersonation, "a node's source names another client than the sender")
			return
		}
		n.Source = clientb
		g.nodes[nid] = &gnode{msg: n}
		g.order = append(g.order, nid)
	}
	for _, nid := range g.order {
		n := g.nodes[nid]
		// Like a Task's: objects the client announced, or other nodes.
		if r, why := s.checkTaskObjects(g.client, n.msg, g.nodes); why != "" {
			s.rejectGraph(clientb, m, r, "node "+hex.EncodeToString(n.msg.TaskID)+": "+why)
			return
		}
		// Distinct dependencies: a scan of the few found so far, a set only
		// for a node with many (no map per node of a 1,000,000-node graph).
		var seen map[string]bool
		for _, a := range n.msg.Arguments {
			if a.Type != protocol.ArgumentTask {
				continue
			}
			dep := string(a.Data)
			if g.nodes[dep] == nil {
				s.rejectGraph(clientb, m, dropBadGraph, "a node depends on a task that is not in the graph")
				return
			}
			if dep == nid {
				s.rejectGraph(clientb, m, dropBadGraph, "a node depends on itself")
				return
			}
			if seen == nil && len(n.deps) >= manyDeps {
				seen = make(map[string]bool, len(n.msg.Arguments))
				for _, d := range n.deps {
					seen[d] = true
				}
			}
			if dup := (seen == nil && slices.Contains(n.deps, dep)) || seen[dep]; !dup {
				if seen != nil {
					seen[dep] = true
				}
				n.deps = append(n.deps, dep)
				n.unresolved++
				d := g.nodes[dep]
				d.dependents = append(d.dependents, nid)
				d.openDependents++
			}
		}
	}
	if hasCycle(g) {
		s.rejectGraph(clientb, m, dropBadGraph, "the graph has a cycle")
		return
	}
	for _, t := range m.Targets {
		g.targets[string(t)] = true
	}
	s.graphs[id] = g
	s.taskToGraph[id] = g
	s.ownTask(g.client, id, len(g.order))
	g.open = len(g.order)
	for _, nid := range g.order {
		n := g.nodes[nid]
		s.compactTask(n.msg) // held until the graph is done
		s.taskToGraph[nid] = g
		if s.out.Listening() {
			parents := make([][]byte, len(n.deps))
			for i, d := range n.deps {
				parents[i] = g.nodes[d].msg.TaskID
			}
			nt := protocol.NodeNormal
			if g.targets[nid] {
				nt = protocol.NodeTarget
			}
			s.out.Publish(&protocol.StateGraphTask{GraphTaskID: m.TaskID, TaskID: n.msg.TaskID, NodeType: nt, ParentTaskIDs: parents})
		}
		if len(n.msg.FuncObjectID) > 0 {
			s.pinObject(n, n.msg.FuncObjectID)
		}
		for _, a := range n.msg.Arguments {
			if a.Type == protocol.ArgumentObjectID {
				s.pinObject(n, a.Data)
			}
		}
	}
	if g.open == 0 {
		s.finishGraph(g, &protocol.TaskResult{TaskID: g.idb, Type: protocol.ResultSuccess})
		return
	}
	for _, nid := range g.order {
		if g.mode != graphActive {
			return
		}
		if n := g.nodes[nid]; n.state == nodePending && n.unresolved == 0 {
			s.submitNode(g, n)
		}
	}
}

// manyDeps is the number of distinct dependencies from which onGraphTask
// tracks them in a set rather than scanning them.
const manyDeps = 16

// hasCycle runs Kahn's algorithm on the dependency counts. It counts down
// each node's unresolved (len(deps) before it runs) in place of an
// in-degree table, which for a 1,000,000-node graph was one more map of a
// million entries, and restores it.
func hasCycle(g *graph) bool {
	var ready []*gnode
	for _, nid := range g.order {
		if n := g.nodes[nid]; n.unresolved == 0 {
			ready = append(ready, n)
		}
	}
	seen := 0
	for len(ready) > 0 {
		n := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		seen++
		for _, dn := range n.dependents {
			d := g.nodes[dn]
			d.unresolved--
			if d.unresolved == 0 {
				ready = append(ready, d)
			}
		}
	}
	for _, nid := range g.order {
		n := g.nodes[nid]
		n.unresolved = len(n.deps)
	}
	return seen != len(g.order)
}

// submitNode turns a ready node into a task, with each task argument
// replaced by the dependency's result: its object id, or, for a small
// result that came inline only, the bytes themselves as an inline argument.
// Small results thus go from node to node through the scheduler, with no
// object storage write or read. Capabilities are kept, so graph nodes are
// routed like any task.
func (s *Scheduler) submitNode(g *graph, n *gnode) {
	t := *n.msg
	t.Arguments = make([]protocol.Argument, len(n.msg.Arguments))
	for i, a := range n.msg.Arguments {
		if a.Type == protocol.ArgumentTask {
			d := g.nodes[string(a.Data)]
			switch {
			case len(d.results) > 0:
				a = protocol.Argument{Type: protocol.ArgumentObjectID, Data: d.results[0]}
			case len(d.inline) > 0:
				a = protocol.Argument{Type: protocol.ArgumentInline, Data: d.inline}
			default:
				a = protocol.Argument{Type: protocol.ArgumentObjectID}
			}
		}
		t.Arguments[i] = a
	}
	n.state = nodeSubmitted
	n.task = s.newTask(&t, g.client, g)
	s.submit(n.task)
}

// markDone closes node nid; false when it was already closed.
func (s *Scheduler) markDone(g *graph, nid string) (*gnode, bool) {
	n := g.nodes[nid]
	if n == nil || n.state == nodeDone {
		return n, false
	}
	n.state = nodeDone
	n.task = nil
	g.open--
	s.unpinNode(n)
	if s.taskToGraph[nid] == g {
		delete(s.taskToGraph, nid)
	}
	return n, true
}

// nodeFinished is called after a node's TaskResult went to the client.
func (s *Scheduler) nodeFinished(g *graph, t *task, r *protocol.TaskResult) {
	n, ok := s.markDone(g, t.id)
	if !ok {
		return
	}
	switch g.mode {
	case graphCanceling:
		s.maybeFinishCancel(g)
		return
	case graphAborting:
		s.maybeForgetGraph(g)
		return
	}
	if r.Type != protocol.ResultSuccess {
		s.abortGraph(g, t.id, r)
		return
	}
	n.results = r.Results
	if len(r.Results) == 0 {
		n.inline = r.Inline
	}
	for _, dep := range n.deps {
		d := g.nodes[dep]
		d.openDependents--
		if d.openDependents == 0 {
			d.inline = nil // every dependent has finished with it
			if !g.targets[dep] {
				s.releaseNode(g, d)
			}
		}
	}
	if g.open == 0 {
		s.finishGraph(g, &protocol.TaskResult{TaskID: g.idb, Type: protocol.ResultSuccess})
		return
	}
	// Dependents read these results: keep them until each is done, even if
	// the client releases a target's result meanwhile.
	for _, dn := range n.dependents {
		if d := g.nodes[dn]; d.state != nodeDone {
			for _, id := range r.Results {
				s.pinObject(d, id)
			}
		}
	}
	for _, dn := range n.dependents {
		if g.mode != graphActive {
			return
		}
		d := g.nodes[dn]
		d.unresolved--
		if d.unresolved == 0 && d.state == nodePending {
			s.submitNode(g, d)
		}
	}
}

// nodeCanceled is called after a node's cancel was settled.
func (s *Scheduler) nodeCanceled(g *graph, t *task, _ protocol.TaskCancelConfirmType) {
	if _, ok := s.markDone(g, t.id); !ok {
		return
	}
	switch g.mode {
	case graphCanceling:
		s.maybeFinishCancel(g)
	case graphAborting:
		s.maybeForgetGraph(g)
	default:
		// A node canceled on its own (not through the graph): the graph
		// cannot complete, so cancel the rest of it.
		s.cancelGraph(g)
	}
}

func (s *Scheduler) releaseNode(g *graph, n *gnode) {
	if n.released || len(n.results) == 0 {
		return
	}
	n.released = true
	s.releaseObjects(g.client, n.results)
}

// cancelGraph cancels every unfinished node (running ones with force) and
// answers the umbrella once they are all settled.
func (s *Scheduler) cancelGraph(g *graph) {
	if g.mode != graphActive || g.done {
		return
	}
	g.mode = graphCanceling
	g.inCancel = true
	for _, nid := range g.order {
		n := g.nodes[nid]
		switch n.state {
		case nodePending:
			s.markDone(g, nid)
			s.out.Send(g.clientb, &protocol.TaskCancelConfirm{TaskID: n.msg.TaskID, Type: protocol.CancelConfirmCanceled})
		case nodeSubmitted:
			s.cancelTask(n.task, true)
		}
	}
	g.inCancel = false
	s.maybeFinishCancel(g)
}

func (s *Scheduler) maybeFinishCancel(g *graph) {
	if g.inCancel || g.done || g.open > 0 {
		return
	}
	s.answerGraph(g, &protocol.TaskCancelConfirm{TaskID: g.idb, Type: protocol.CancelConfirmCanceled})
	s.maybeForgetGraph(g)
}

// abortGraph propagates a node failure: every unfinished node gets a copy
// of the failure (new object ids duplicated in storage), running nodes are
// canceled on their workers without further client messages, then the
// umbrella gets the failure.
func (s *Scheduler) abortGraph(g *graph, failed string, r *protocol.TaskResult) {
	g.mode = graphAborting
	g.inCancel = true
	for _, nid := range g.order {
		n := g.nodes[nid]
		if n.state == nodeDone || nid == failed {
			continue
		}
		ids := make([][]byte, 0, len(r.Results))
		for _, src := range r.Results {
			nid := s.cfg.NewObjectID(g.clientb)
			s.out.DuplicateObject(nid, src)
			var name []byte
			if o := s.objects[string(src)]; o != nil {
				name = o.name
			}
			s.addObject(g.client, nid, name)
			ids = append(ids, nid)
		}
		// Inline goes along: it is the only copy of an inline-only failure.
		s.out.Send(g.clientb, &protocol.TaskResult{TaskID: n.msg.TaskID, Type: r.Type, Profile: r.Profile,
			Results: ids, Inline: r.Inline, Message: r.Message})
		if n.state == nodePending {
			s.markDone(g, nid)
			continue
		}
		t := n.task
		t.silent = true
		delete(s.taskToGraph, nid)
		s.cancelTask(t, true)
	}
	g.inCancel = false
	s.answerGraph(g, &protocol.TaskResult{TaskID: g.idb, Type: r.Type, Message: r.Message})
	s.maybeForgetGraph(g)
}

// finishGraph answers the umbrella with r once every node is done.
func (s *Scheduler) finishGraph(g *graph, r *protocol.TaskResult) {
	s.answerGraph(g, r)
	s.maybeForgetGraph(g)
}

// answerGraph sends the umbrella's single answer.
func (s *Scheduler) answerGraph(g *graph, m protocol.Message) {
	if g.done {
		return
	}
	g.done = true
	s.out.Send(g.clientb, m)
	s.disownTask(g.client, g.id, len(g.order))
	delete(s.graphs, g.id)
	if s.taskToGraph[g.id] == g {
		delete(s.taskToGraph, g.id)
	}
}

// maybeForgetGraph frees intermediate results once the umbrella is
// answered and no node is open.
func (s *Scheduler) maybeForgetGraph(g *graph) {
	if !g.done || g.open > 0 || g.inCancel {
		return
	}
	for _, nid := range g.order {
		if !g.targets[nid] {
			s.releaseNode(g, g.nodes[nid])
		}
	}
}
