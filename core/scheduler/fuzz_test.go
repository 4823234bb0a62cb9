package scheduler

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// sequence drives a scheduler with a random message sequence derived from
// data and checks after every step: internal consistency (queue sizes,
// indexes, counters), that no task or graph is answered twice, and at the
// end, after draining, that every accepted task and graph was answered
// exactly once (none lost).
type sequence struct {
	t        testing.TB
	h        *harness
	nextID   int
	ids      []string          // every task, node and graph id accepted so far
	answered map[string]int    // id -> answers sent to its owner
	owner    map[string]string // id -> owner
}

func runSequence(t testing.TB, data []byte) {
	q := &sequence{t: t, answered: map[string]int{}, owner: map[string]string{}}
	q.h = newHarness(t, func(c *Config) {
		c.ClientTimeout = 20 * time.Second
		c.WorkerTimeout = 20 * time.Second
		if len(data) > 0 && data[0]%3 == 0 {
			c.Policy = PolicyCapability
		}
		if len(data) > 0 && data[0]%5 == 0 {
			c.MaxTasksWaiting = 2
		}
		if len(data) > 0 && data[0]%2 == 0 {
			c.ObjectRetention = 3 * time.Second
		}
		if len(data) > 0 && data[0]%7 < 3 {
			c.Scaling = true
		}
	})
	for i := 0; i+2 < len(data); i += 3 {
		q.step(data[i], data[i+1], data[i+2])
	}
	q.drain()
}

func (q *sequence) pick(b byte) string {
	if len(q.ids) == 0 {
		return "none"
	}
	return q.ids[int(b)%len(q.ids)]
}

func (q *sequence) step(op, a, b byte) {
	h := q.h
	client := fmt.Sprintf("c%d", a%2)
	worker := fmt.Sprintf("w%d", a%4)
	cancelOf := ""
	switch op % 12 {
	case 0:
		h.client(client)
	case 1:
		var caps []string
		if b%3 == 0 {
			caps = []string{"gpu"}
		}
		h.worker(worker, uint32(b%3+1), caps...)
	case 2, 3:
		q.nextID++
		id := fmt.Sprintf("t%d", q.nextID)
		var caps []string
		if b%4 == 0 {
			caps = []string{"gpu"}
		}
		q.accept(id, client)
		if b%5 == 1 {
			// Names an object announced later, or never (parked).
			t := newTask(id, client, caps...)
			t.Arguments = []protocol.Argument{{Type: protocol.ArgumentObjectID, Data: []byte("late")}}
			h.handle(client, t)
		} else {
			h.submit(client, id, caps...)
		}
	case 4:
		h.result(worker, q.pick(b), protocol.TaskResultType(b%5), "r"+q.pick(b))
	case 5:
		h.confirm(worker, q.pick(b), protocol.TaskCancelConfirmType(b%3))
	case 6:
		cancelOf = q.pick(b)
		h.cancel(client, cancelOf, b%2 == 0)
	case 7:
		h.handle(worker, &protocol.DisconnectRequest{Worker: []byte(worker)})
	case 8:
		h.advance(time.Duration(b%16) * time.Second)
		if req := h.s.scaling.inFlight; req != nil {
			// Answer the scaling call with a random outcome; group ids and
			// worker ids overlap with the fuzzed workers.
			r := ScaleResponse{ID: req.ID, Status: []int{200, 429, 500, 404, 0}[int(a)%5]}
			if r.Status == 0 {
				r.Err = "unreachable"
			}
			if b%2 == 0 {
				r.GroupID = fmt.Sprintf("g%d", a%3)
				r.WorkerIDs = []string{worker}
			}
			h.s.OnScaleResponse(r, h.now)
			h.out.scales = nil
		}
	case 9:
		h.handle(client, &protocol.ClientDisconnect{Type: protocol.DisconnectClient})
	case 10:
		q.nextID++
		g := diamond()
		pre := fmt.Sprintf("g%d", q.nextID)
		g.TaskID = []byte(pre)
		g.Source = []byte(client)
		rename := func(s []byte) []byte { return []byte(pre + string(s)) }
		for i := range g.Graph {
			g.Graph[i].TaskID = rename(g.Graph[i].TaskID)
			g.Graph[i].Source = []byte(client)
			for j, arg := range g.Graph[i].Arguments {
				if arg.Type == protocol.ArgumentTask {
					g.Graph[i].Arguments[j].Data = rename(arg.Data)
				}
			}
			q.accept(string(g.Graph[i].TaskID), client)
		}
		g.Targets = [][]byte{rename([]byte("d"))}
		q.accept(pre, client)
		h.handle(client, g)
	case 11:
		switch b % 8 {
		case 0:
			h.handle(worker, &protocol.TaskLog{TaskID: []byte(q.pick(a))})
		case 1:
			h.handle(client, &protocol.ObjectInstruction{Type: protocol.ObjectInstructionType(a % 4), ObjectUser: []byte(client),
				Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("r" + q.pick(a))}}})
		case 2:
			h.handle(worker, &protocol.ClientHeartbeatEcho{})
		case 3:
			h.handle(client, &protocol.ClientDisconnect{Type: protocol.DisconnectType(a % 3)})
		case 4:
			// A reconciling heartbeat listing some of the known ids, with
			// an echo seq at or below what was sent (or above: ignored).
			hb := &protocol.WorkerHeartbeat{QueueSize: 3, Tasks: [][]byte{}}
			if w := h.s.workers.byID[worker]; w != nil {
				hb.EchoSeq = w.echoSeq + 1 - uint64(a%3)
			}
			for i, id := range q.ids {
				if (i+int(a))%3 != 0 {
					hb.Tasks = append(hb.Tasks, []byte(id))
				}
			}
			h.handle(worker, hb)
		case 5:
			if a%2 == 0 {
				h.s.PeerClosed([]byte([]string{worker, client}[a/2%2]), h.now)
			} else {
				h.s.PeerUnreachable([]byte(worker), h.now)
			}
		case 6:
			// A worker sending a client's message is removed (tasks placed
			// again) and refused for a while.
			cancelOf = q.pick(a)
			h.handle(worker, &protocol.TaskCancel{TaskID: []byte(cancelOf)})
		case 7:
			// Acting for another peer: refused.
			other := fmt.Sprintf("c%d", (a+1)%2)
			h.handle(client, &protocol.ObjectInstruction{Type: protocol.InstructionDelete, ObjectUser: []byte(other),
				Metadata: protocol.ObjectMetadata{ObjectIDs: [][]byte{[]byte("fn")}}})
			h.handle(worker, &protocol.DisconnectRequest{Worker: []byte(fmt.Sprintf("w%d", (a+1)%4))})
			h.createObjects(client, "late")
		}
	}
	q.collect(cancelOf)
	checkInvariants(q.t, h.s)
}

func (q *sequence) accept(id, owner string) {
	q.ids = append(q.ids, id)
	q.owner[id] = owner
}

// collect counts answers; a CancelNotFound to a cancel of an id already
// answered is the reply to that cancel, not a second answer.
func (q *sequence) collect(cancelOf string) {
	for _, s := range q.h.take() {
		var id string
		notFound := false
		switch m := s.msg.(type) {
		case *protocol.TaskResult:
			id = string(m.TaskID)
		case *protocol.TaskCancelConfirm:
			id = string(m.TaskID)
			notFound = m.Type == protocol.CancelConfirmNotFound
		case *protocol.Task:
			if !strings.HasPrefix(s.to, "w") {
				q.t.Fatalf("Task sent to non-worker %s", s.to)
			}
			continue
		default:
			continue
		}
		if notFound && id == cancelOf && q.answered[id] > 0 {
			continue
		}
		// ... and so is one to a cancel by another peer than the owner.
		if notFound && q.owner[id] != "" && s.to != q.owner[id] {
			continue
		}
		if q.owner[id] != "" && s.to != q.owner[id] {
			q.t.Fatalf("answer for %q (owner %s) sent to %s: %s", id, q.owner[id], s.to, short(s.msg))
		}
		if _, ok := q.owner[id]; !ok {
			if notFound && id == cancelOf {
				continue
			}
			q.t.Fatalf("answer for unknown id %q: %s", id, short(s.msg))
		}
		q.answered[id]++
		if q.answered[id] > 1 {
			q.t.Fatalf("%q answered %d times (last %s)", id, q.answered[id], short(s.msg))
		}
	}
}

// drain finishes every task: workers answer what they hold and a worker
// with every capability takes what waits. Then all ids must be answered.
func (q *sequence) drain() {
	h := q.h
	h.advance(11 * time.Second) // past the announce grace: parked tasks are refused
	q.collect("")
	for round := 0; round < 50 && (len(h.s.tasks) > 0 || len(h.s.graphs) > 0); round++ {
		h.worker(fmt.Sprintf("wdrain%d", round), 1000, "gpu")
		var on []*task
		for _, t := range h.s.tasks {
			if t.worker != nil {
				on = append(on, t)
			}
		}
		for _, t := range on {
			if t.state == protocol.TaskStateCanceling || t.state == protocol.TaskStateBalanceCanceling {
				h.confirm(t.worker.id, t.id, protocol.CancelConfirmCanceled)
			} else {
				h.result(t.worker.id, t.id, protocol.ResultSuccess, "r"+t.id)
			}
		}
		q.collect("")
		checkInvariants(q.t, h.s)
	}
	if len(h.s.tasks) > 0 || len(h.s.graphs) > 0 {
		q.t.Fatalf("could not drain: %d tasks, %d graphs left", len(h.s.tasks), len(h.s.graphs))
	}
	// No graph node is left, so none may still hold an object.
	for id, o := range h.s.objects {
		if o.pins != 0 {
			q.t.Fatalf("object %q still pinned %d times after the drain", id, o.pins)
		}
	}
	for _, id := range q.ids {
		if q.answered[id] != 1 {
			// A graph node that never started (graph refused or finished
			// early) is answered through its umbrella only when the graph
			// was refused; refused graphs register nothing.
			if strings.HasPrefix(id, "g") && q.answered[graphOf(id)] == 1 && h.s.taskToGraph[id] == nil && !isUmbrella(id) {
				if g := graphOf(id); q.answered[g] == 1 {
					continue
				}
			}
			q.t.Fatalf("%q answered %d times", id, q.answered[id])
		}
	}
}

func isUmbrella(id string) bool { return !strings.ContainsAny(id[len(id)-1:], "abcd") }

func graphOf(id string) string { return strings.TrimRight(id, "abcd") }

func FuzzSchedulerSequence(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 1, 2, 0, 0, 4, 0, 0})
	f.Add([]byte{3, 0, 0, 1, 1, 1, 10, 0, 0, 6, 0, 0, 7, 1, 0, 8, 0, 15})
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		b := make([]byte, 300)
		for j := range b {
			b[j] = byte(r.UintN(256))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 3000 {
			data = data[:3000]
		}
		runSequence(t, data)
	})
}

// TestRandomSequences runs the fuzz body on fixed random inputs so every
// plain `go test` exercises it.
func TestRandomSequences(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 50
	}
	for seed := 0; seed < n; seed++ {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		b := make([]byte, 600)
		for j := range b {
			b[j] = byte(r.UintN(256))
		}
		runSequence(t, b)
		if t.Failed() {
			t.Fatalf("seed %d", seed)
		}
	}
}
