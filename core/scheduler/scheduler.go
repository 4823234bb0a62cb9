package scheduler

import (
	"bytes"
	"container/list"
	"encoding/hex"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/core/protocol"
)

// task is one task the scheduler holds, from arrival to its terminal state.
type task struct {
	id       string
	msg      *protocol.Task // what is sent to workers
	owner    string         // client that gets results and confirms
	funcName []byte
	seq      uint64

	worker       *worker       // set while on a worker
	welem        *list.Element // in worker.tasks
	group        *waitGroup    // set while waiting
	qprev, qnext *task         // in group.queue (waitqueue.go)

	echoAtAssign uint64 // worker.echoSeq when the task was sent to its worker
	listed       uint64 // Scheduler.reconcileGen of the last heartbeat that listed it (reconcile)
	graph        *graph // set for graph nodes
	// Small fields last, packed into one word: with a million tasks held,
	// each word of this struct is 8 MB.
	cancelsInFlight int32 // TaskCancel messages sent to the worker, not yet answered
	state           protocol.TaskState
	silent          bool // graph already answered for this node: tell the client nothing more
	forced          bool // a forced TaskCancel went to its worker (cancelTask)
}

// client is a client that has sent a heartbeat.
type client struct {
	id       string
	idb      []byte
	lastSeen time.Time
	nested   bool // a nested task's client: its comings and goings are logged at debug level
	// rejoined: registered again soon after its own goodbye (or after
	// other client messages before its first heartbeat), as a peer cycling
	// through messages does; counted instead of logged one line each.
	rejoined bool
}

// waitGroup is the FIFO of waiting tasks that need the same capabilities.
// Placement retries the head of each group only, so an unplaceable task
// holds up only tasks with identical needs, which could not be placed either.
type waitGroup struct {
	key   string
	need  map[string]int64
	queue taskQueue
}

// Scheduler is the pure scheduler state. Use New; call Handle for each
// message and Tick regularly (every 100 ms or so), always from one goroutine.
type Scheduler struct {
	cfg Config
	out Outbox
	log zerolog.Logger

	clients     map[string]*client
	clientTasks map[string]map[string]struct{} // owner -> outstanding task and graph ids
	// clientLoad is what MaxTasksPerClient bounds: per owner, its
	// outstanding tasks plus the nodes of its outstanding graphs.
	clientLoad map[string]int
	workers    workerSet
	tasks      map[string]*task
	peaks      tablePeaks // of the tables shrinkTables re-makes (shrink.go)
	nextSeq    uint64

	waiting    map[string]*waitGroup
	numWaiting int

	graphs      map[string]*graph // umbrella id -> graph
	taskToGraph map[string]*graph // umbrella and unfinished node ids -> graph

	objects       map[string]*object
	clientObjects map[string]map[string]struct{}
	departed      map[string]time.Time // departed client -> when its objects are freed
	toDelete      [][]byte
	nextFlush     time.Time

	scaling scaling

	lastBalance time.Time
	lastAdvice  []adviceEntry // the last advice, to count repeats (BalanceTriggerTimes)
	sameAdvice  int
	counts      [protocol.NumTaskStates]uint64 // current (non-terminal) / cumulative (terminal)
	shutdown    bool

	// Reconciliation (see reconcile): tasks found lost on their worker and
	// placed again, and forced cancels sent for tasks a worker held that
	// the scheduler did not have on it.
	lostTasks, unheld uint64
	reconcileGen      uint64
	// Messages dropped or refused, counted per reason and logged at most
	// once per DropLogInterval (drops.go); refused are the peers that may
	// not register as workers for now (peers.go).
	drops       [numDropReasons]dropCount
	dropTotal   [numDropReasons]uint64
	nextDropLog time.Time
	refused     map[string]time.Time
	// Tasks waiting for the objects they name to be announced (parked.go):
	// per owner in arrival order, and task id -> owner.
	parked    map[string][]*parkedTask
	parkedIDs map[string]string
}

// New returns a scheduler that sends through out.
func New(cfg Config, out Outbox, log zerolog.Logger, now time.Time) *Scheduler {
	cfg.fill()
	return &Scheduler{
		cfg:           cfg,
		out:           out,
		log:           log,
		clients:       map[string]*client{},
		clientTasks:   map[string]map[string]struct{}{},
		clientLoad:    map[string]int{},
		workers:       newWorkerSet(),
		tasks:         map[string]*task{},
		waiting:       map[string]*waitGroup{},
		graphs:        map[string]*graph{},
		taskToGraph:   map[string]*graph{},
		objects:       map[string]*object{},
		clientObjects: map[string]map[string]struct{}{},
		departed:      map[string]time.Time{},
		refused:       map[string]time.Time{},
		parked:        map[string][]*parkedTask{},
		parkedIDs:     map[string]string{},
		lastBalance:   now,
	}
}

// InstanceID is this scheduler's instance id, announced in heartbeat echoes.
func (s *Scheduler) InstanceID() []byte { return s.cfg.InstanceID }

// ShutdownAccepted reports whether a client's shutdown was accepted; the
// owner should then stop (after flushing what was sent).
func (s *Scheduler) ShutdownAccepted() bool { return s.shutdown }

// Handle processes one decoded message from the peer with identity from.
func (s *Scheduler) Handle(from []byte, m protocol.Message, now time.Time) {
	if s.shutdown {
		return
	}
	if !s.admit(from, m, now) {
		return
	}
	switch m := m.(type) {
	case *protocol.ClientHeartbeat:
		s.onClientHeartbeat(from, m, now)
	case *protocol.ClientDisconnect:
		s.onClientDisconnect(from, m, now)
	case *protocol.WorkerHeartbeat:
		s.onWorkerHeartbeat(from, m, now)
	case *protocol.DisconnectRequest:
		s.onDisconnectRequest(from, m)
	case *protocol.Task:
		s.onTask(from, m, now)
	case *protocol.GraphTask:
		s.onGraphTask(from, m)
	case *protocol.TaskCancel:
		s.onTaskCancel(from, m)
	case *protocol.TaskCancelConfirm:
		s.onCancelConfirm(from, m)
	case *protocol.TaskResult:
		s.onTaskResult(from, m)
	case *protocol.TaskLog:
		s.onTaskLog(from, m)
	case *protocol.ObjectInstruction:
		s.onObjectInstruction(from, m)
	default:
		s.dropped(dropUnexpected, from, m.Kind())
	}
	s.flushObjects(now, false)
}

// Tick runs the timers: client and worker timeouts, object retention, load
// balancing, the scaling policy and the object deletion batch.
func (s *Scheduler) Tick(now time.Time) {
	if s.shutdown {
		return
	}
	for id, c := range s.clients {
		if now.Sub(c.lastSeen) > s.cfg.ClientTimeout {
			s.log.Info().Str("client", id).Msg("client timed out")
			s.dropClient(id, now)
		}
	}
	s.expireDeparted(now)
	if len(s.refused) > 0 {
		s.expireRefused(now)
	}
	if len(s.parked) > 0 {
		s.expireParked(now)
	}
	var dead []*worker
	for _, w := range s.workers.order {
		if now.Sub(w.lastSeen) > s.cfg.WorkerTimeout {
			dead = append(dead, w)
		}
	}
	for _, w := range dead {
		s.log.Info().Str("worker", w.id).Msg("worker timed out")
		s.removeWorker(w)
	}
	if now.Sub(s.lastBalance) >= s.cfg.BalanceInterval {
		s.lastBalance = now
		s.balance()
	}
	s.scale(now)
	s.flushObjects(now, false)
	s.flushDrops(now)
	s.shrinkTables()
}

// DropPeer removes the client or worker id because its owner can no longer
// send to it (core/server: its outgoing queue stayed full). A client goes as
// if it had timed out (its tasks cancelled), a worker as if it had missed its
// heartbeats (its tasks placed again). It returns what id was: "client",
// "worker", or "" when it is neither.
func (s *Scheduler) DropPeer(id []byte, now time.Time) string {
	if s.shutdown {
		return ""
	}
	// A peer that owns tasks counts as a client even if it is not
	// registered (no heartbeat yet, or timed out).
	if _, ok := s.clients[string(id)]; ok || len(s.clientTasks[string(id)]) > 0 {
		s.dropClient(string(id), now)
		s.flushObjects(now, false)
		return "client"
	}
	if w := s.workers.byID[string(id)]; w != nil {
		s.removeWorker(w)
		return "worker"
	}
	return ""
}

// ---- clients ----

func (s *Scheduler) onClientHeartbeat(from []byte, m *protocol.ClientHeartbeat, now time.Time) {
	s.out.Send(from, &protocol.ClientHeartbeatEcho{ObjectStorage: s.cfg.ObjectStorage, InstanceID: s.cfg.InstanceID})
	id := string(from)
	c := s.clients[id]
	if c == nil {
		c = &client{id: id, idb: from, nested: m.Nested}
		s.clients[id] = c
		if _, ok := s.refused[id]; ok {
			c.rejoined = true
			s.dropped(dropRejoined, from, m.Kind())
		}
		if _, ok := s.departed[id]; ok {
			delete(s.departed, id)
			s.clientLog(c).Str("client", id).Int("objects", len(s.clientObjects[id])).Msg("client reconnected within the object retention time; its objects are kept")
		} else {
			s.clientLog(c).Str("client", id).Msg("client connected")
		}
	}
	c.lastSeen = now
}

// clientLog is the level for a client's arrival and departure: info, but
// debug for the clients of nested tasks, which come and go with every task,
// for clients that rejoined (counted instead) and for peers that were no
// client at all.
func (s *Scheduler) clientLog(c *client) *zerolog.Event {
	if c == nil || c.nested || c.rejoined {
		return s.log.Debug()
	}
	return s.log.Info()
}

func (s *Scheduler) onClientDisconnect(from []byte, m *protocol.ClientDisconnect, now time.Time) {
	id := string(from)
	switch m.Type {
	case protocol.DisconnectClient:
		s.clientLog(s.clients[id]).Str("client", id).Msg("client disconnected")
		s.dropClient(id, now)
		// It has shown itself a client: its identity may not turn worker.
		s.refusePeer(id, now)
	case protocol.DisconnectShutdown:
		if s.cfg.Protected {
			s.dropped(dropShutdownRefused, from, m.Kind())
			s.out.Send(from, &protocol.ClientShutdownResponse{Accepted: false,
				Reason: "scheduler is in protected mode; start it with -p False to allow shutdown requests"})
			return
		}
		s.log.Info().Str("client", id).Msg("client asked for shutdown; accepted, stopping workers and scheduler")
		s.out.Send(from, &protocol.ClientShutdownResponse{Accepted: true})
		// Set first: removing one worker must not re-place its tasks on the
		// others, which are about to go too.
		s.shutdown = true
		for len(s.workers.order) > 0 {
			w := s.workers.order[0]
			s.out.Send(w.idb, &protocol.ClientDisconnect{Type: protocol.DisconnectShutdown})
			s.removeWorker(w)
		}
	default:
		s.dropped(dropBadValue, from, m.Kind())
	}
}

// dropClient cancels every task of the client and forgets it. Running tasks
// are cancelled with force: nobody waits for their results, and a long one
// would keep its worker's slot busy. Its objects are released after the
// object retention time (at once without one).
func (s *Scheduler) dropClient(id string, now time.Time) {
	_, known := s.clients[id]
	delete(s.clients, id)
	s.dropParked(id)
	if owned := s.clientTasks[id]; len(owned) > 0 {
		ids := make([]string, 0, len(owned))
		for tid := range owned {
			ids = append(ids, tid)
		}
		for _, tid := range ids {
			if g := s.graphs[tid]; g != nil {
				s.cancelGraph(g)
				continue
			}
			if t := s.tasks[tid]; t != nil {
				s.cancelTask(t, true)
			}
		}
	}
	if s.cfg.ObjectRetention <= 0 {
		s.releaseClientObjects(id)
		return
	}
	if !known && len(s.clientObjects[id]) == 0 {
		return // never was a client: nothing to keep, nothing to remember
	}
	if _, ok := s.departed[id]; !ok {
		s.departed[id] = now.Add(s.cfg.ObjectRetention)
		s.log.Debug().Str("client", id).Int("objects", len(s.clientObjects[id])).Dur("retention", s.cfg.ObjectRetention).Msg("keeping the departed client's objects for the retention time")
	}
}

// expireDeparted frees the objects of clients departed longer than the
// retention time, in client id order.
func (s *Scheduler) expireDeparted(now time.Time) {
	if len(s.departed) == 0 {
		return
	}
	var due []string
	for id, at := range s.departed {
		if !now.Before(at) {
			due = append(due, id)
		}
	}
	sort.Strings(due)
	for _, id := range due {
		delete(s.departed, id)
		if n := len(s.clientObjects[id]); n > 0 {
			s.log.Info().Str("client", id).Int("objects", n).Msg("object retention time of departed client over; freeing its objects")
		}
		s.releaseClientObjects(id)
	}
}

// ---- workers ----

func (s *Scheduler) onWorkerHeartbeat(from []byte, m *protocol.WorkerHeartbeat, now time.Time) {
	id := string(from)
	w := s.workers.byID[id]
	if w == nil {
		w = &worker{id: id, idb: from, queueSize: int(m.QueueSize), caps: m.Capabilities, echoSeq: m.EchoSeq, ackedSeq: m.EchoSeq}
		if slot := string(m.Slot); slot != id {
			w.slot = slot
		}
		s.workers.add(w)
		// It may be the last worker of a group that is connecting: check
		// the scaling policy at the next tick, not a ScalingInterval
		// later, so that groups start back to back under load.
		s.scaling.nextCheck = time.Time{}
		ev := s.log.Info().Str("worker", id).Uint32("queue_size", m.QueueSize).Interface("capabilities", m.Capabilities)
		if w.slot != "" {
			ev = ev.Str("in_place_of", w.slot)
		}
		ev.Msg("worker connected")
		s.out.Publish(&protocol.StateWorker{WorkerID: from, State: protocol.WorkerConnected, Capabilities: m.Capabilities})
		w.keepLast(m)
		w.lastSeen = now
		// The echo goes before any Task: a worker that registers after a
		// restart of the scheduler learns the new instance id, and drops
		// the previous instance's work, before this instance's tasks
		// arrive (docs/protocol.md §7.2). Tasks assigned now count as sent
		// after this echo.
		s.echo(w)
		s.retryWaiting()
		s.reconcile(w, m)
		return
	}
	s.reconcile(w, m)
	w.keepLast(m)
	// Only a heartbeat that acknowledges an echo newer than the last one
	// acknowledged is a sign of life. A worker sends its next heartbeat
	// after the echo of the previous one (or resends after three
	// intervals), so a live worker's EchoSeq advances within a few
	// intervals; a peer that registers and then repeats heartbeats without
	// reading the echoes (EchoSeq 0 for ever: nothing to reconcile it by)
	// would otherwise hold its tasks for good. It times out instead, and its
	// tasks are placed again.
	if m.EchoSeq > w.ackedSeq && m.EchoSeq <= w.echoSeq {
		w.ackedSeq = m.EchoSeq
		w.lastSeen = now
	}
	s.echo(w)
}

// echo answers a heartbeat of w.
func (s *Scheduler) echo(w *worker) {
	w.echoSeq++
	s.out.Send(w.idb, &protocol.WorkerHeartbeatEcho{ObjectStorage: s.cfg.ObjectStorage, Seq: w.echoSeq, InstanceID: s.cfg.InstanceID})
}

// reconcile compares what heartbeat m says w holds with what the scheduler
// has on w. One connection delivers in order both ways, so a task sent
// before echo n reached the worker before echo n did, and the worker's
// answers about it (result, cancel confirmation) arrive before any
// heartbeat written after them. Hence a task assigned before echo n that
// a heartbeat reporting EchoSeq >= n does not list is held by nobody and
// no answer for it is on the way: it is placed again. A task listed that
// is not on w (re-placed, finished, canceled, or never known) is canceled
// on the worker, forced; the confirmation is dropped as not from the
// task's worker or for an unknown task.
func (s *Scheduler) reconcile(w *worker, m *protocol.WorkerHeartbeat) {
	if m.EchoSeq == 0 || m.EchoSeq > w.echoSeq {
		// 0: a worker that does not report its tasks (or has had no echo
		// yet). Above w.echoSeq: an echo that was never sent; nothing in
		// this heartbeat can be trusted.
		return
	}
	// Mark the listed tasks that are on w with this heartbeat's stamp
	// (no per-heartbeat map: a heartbeat lists up to a queue's worth).
	s.reconcileGen++
	gen := s.reconcileGen
	for _, id := range m.Tasks {
		if t := s.tasks[string(id)]; t != nil && t.worker == w {
			t.listed = gen
			continue
		}
		s.out.Send(w.idb, &protocol.TaskCancel{TaskID: id, Force: true})
		s.unheld++
	}
	var lost []*task
	for e := w.tasks.Front(); e != nil; e = e.Next() {
		if t := e.Value.(*task); t.listed != gen && m.EchoSeq > t.echoAtAssign {
			lost = append(lost, t)
		}
	}
	if len(lost) == 0 {
		return
	}
	s.log.Warn().Str("worker", w.id).Int("tasks", len(lost)).Hex("first", lost[0].msg.TaskID).
		Msg("worker does not hold tasks assigned to it; placing them again")
	s.lostTasks += uint64(len(lost))
	for _, t := range lost {
		s.unassign(t)
	}
	s.replaceTasks(lost)
}

func (s *Scheduler) onDisconnectRequest(from []byte, m *protocol.DisconnectRequest) {
	// A worker leaves for itself only: the worker ids are on the monitor.
	if len(m.Worker) > 0 && !bytes.Equal(m.Worker, from) {
		s.dropped(dropImpersonation, from, m.Kind())
		return
	}
	if w := s.workers.byID[string(from)]; w != nil {
		s.log.Info().Str("worker", w.id).Msg("worker disconnected")
		s.removeWorker(w)
	}
	s.out.Send(from, &protocol.DisconnectResponse{Worker: m.Worker})
}

// PeerClosed is the transport's report that the connection of peer id
// closed (transport.Socket.TakeClosed). A worker is removed at once, its
// tasks placed again: its process died or the network went, and whatever
// was on the way on that connection is lost either way (a worker that is
// still alive registers again with its next heartbeat, and reconcile then
// cancels what it still holds). A client is dropped as if it had timed
// out: the Python client stops for good on a broken connection
// (python/README.md), so it is not coming back.
func (s *Scheduler) PeerClosed(id []byte, now time.Time) {
	if s.shutdown {
		return
	}
	if w := s.workers.byID[string(id)]; w != nil {
		s.log.Info().Str("worker", w.id).Int("tasks", w.tasks.Len()).Msg("worker connection closed; removing it")
		s.removeWorker(w)
	}
	if c := s.clients[string(id)]; c != nil {
		s.clientLog(c).Str("client", c.id).Msg("client connection closed")
		s.dropClient(c.id, now)
	}
	s.flushObjects(now, false)
}

// Knows reports whether id is a registered client or worker, a peer that
// owns tasks or objects, or a client that left within the object retention
// time (it may come back): the server lets no other connection speak for it.
func (s *Scheduler) Knows(id []byte) bool {
	if s.clients[string(id)] != nil || s.workers.byID[string(id)] != nil || len(s.clientTasks[string(id)]) > 0 ||
		len(s.clientObjects[string(id)]) > 0 {
		return true
	}
	_, departed := s.departed[string(id)]
	return departed
}

// PeerUnreachable is the transport's report that messages to peer id could
// not be delivered: it is not connected (ZMQ_ROUTER_MANDATORY), or its
// backlog at the high-water mark reached its bound. A worker is removed
// (its tasks placed again; it registers again with its next heartbeat if
// it is alive). It reports whether id was a worker; for anyone else the
// caller counts the dropped messages.
func (s *Scheduler) PeerUnreachable(id []byte, now time.Time) bool {
	if s.shutdown {
		return false
	}
	w := s.workers.byID[string(id)]
	if w == nil {
		return false
	}
	s.log.Info().Str("worker", w.id).Int("tasks", w.tasks.Len()).Msg("worker unreachable; removing it")
	s.removeWorker(w)
	s.flushObjects(now, false)
	return true
}

// Reconciled returns how many tasks reconcile found lost on their worker
// (and placed again), and how many forced cancels it sent for tasks a
// worker held that the scheduler did not have on it.
func (s *Scheduler) Reconciled() (lost, unheld uint64) { return s.lostTasks, s.unheld }

// removeWorker forgets w and re-places the tasks it held.
func (s *Scheduler) removeWorker(w *worker) {
	s.workers.remove(w)
	s.out.Publish(&protocol.StateWorker{WorkerID: w.idb, State: protocol.WorkerDisconnected, Capabilities: w.caps})
	var held []*task
	for e := w.tasks.Front(); e != nil; e = e.Next() {
		held = append(held, e.Value.(*task))
	}
	w.tasks.Init()
	for _, t := range held {
		t.worker, t.welem = nil, nil
	}
	s.replaceTasks(held)
}

// replaceTasks places again the tasks (already taken off their worker)
// that a worker lost: by leaving, or as found by reconcile.
func (s *Scheduler) replaceTasks(held []*task) {
	requeue := make([]*task, 0, len(held))
	for _, t := range held {
		t.cancelsInFlight, t.forced = 0, false
		next, ok := s.transition(t, TrWorkerDisconnect)
		if !ok {
			continue
		}
		if next == protocol.TaskStateCanceled {
			s.finishCanceled(t, protocol.CancelConfirmCanceled)
			continue
		}
		// WorkerDisconnecting: the scheduler always keeps the task body.
		s.transition(t, TrSchedulerHasTask)
		requeue = append(requeue, t)
	}
	// Re-placed tasks go ahead of the tasks already waiting, oldest first.
	var rest []*task
	for _, t := range requeue {
		if w := s.workers.pick(t.msg.Capabilities); w != nil && s.groupEmpty(t) && !s.shutdown {
			s.assign(t, w)
		} else {
			rest = append(rest, t)
		}
	}
	for i := len(rest) - 1; i >= 0; i-- {
		s.enqueue(rest[i], true)
		s.publishTask(rest[i], nil)
	}
	s.retryWaiting()
}

// ---- tasks ----

func (s *Scheduler) onTask(from []byte, m *protocol.Task, now time.Time) {
	dropped, r, why := s.checkSubmission(from, m.TaskID, m.Source, m.Kind())
	if dropped {
		return
	}
	if why != "" {
		s.refuseTask(from, m.TaskID, r, why)
		return
	}
	m.Source = from
	owner := string(from)
	if r, why := s.checkTaskObjects(owner, m, nil); why != "" {
		// Objects not announced (yet): wait for them a little (parked.go),
		// unless the client is at its bound of objects (no more creates).
		if r != dropUnknownObject || len(m.FuncObjectID) == 0 ||
			len(s.clientObjects[owner]) >= s.cfg.MaxObjectsPerClient || !s.park(owner, m, now) {
			s.refuseTask(from, m.TaskID, r, why)
		}
		return
	}
	s.accept(owner, m)
}

// accept places task m of owner, checked already.
func (s *Scheduler) accept(owner string, m *protocol.Task) {
	t := s.newTask(m, owner, nil)
	s.ownTask(owner, t.id, 1)
	s.submit(t)
}

// taskIDUsed reports whether id is taken by a task, graph, node or parked
// task.
func (s *Scheduler) taskIDUsed(id string) bool {
	_, used := s.taskIDOwner(id)
	return used
}

// taskIDOwner is the client whose task, graph, graph node or parked task
// has id, if one has.
func (s *Scheduler) taskIDOwner(id string) (owner string, used bool) {
	if t := s.tasks[id]; t != nil {
		return t.owner, true
	}
	if g := s.taskToGraph[id]; g != nil {
		return g.client, true
	}
	owner, used = s.parkedIDs[id]
	return owner, used
}

// checkSubmission applies the checks every Task and GraphTask passes before
// its own: one without an id, or with an id of the sender's in use, is
// dropped (dropped true, counted, no reply: the reply would be a second
// answer for that id); otherwise r and why are checkSubmitter's, or say
// that another client uses the id (the refusal goes to the sender only),
// for the caller to refuse in its own way.
func (s *Scheduler) checkSubmission(from, id, source []byte, kind protocol.Kind) (dropped bool, r dropReason, why string) {
	if len(id) == 0 {
		s.dropped(dropNoID, from, kind)
		return true, 0, ""
	}
	if owner, used := s.taskIDOwner(string(id)); used {
		if owner == string(from) {
			s.dropped(dropDuplicate, from, kind)
			return true, 0, ""
		}
		return false, dropDuplicate, "the task id is in use by another client's task"
	}
	r, why = s.checkSubmitter(from, source)
	return false, r, why
}

// checkSubmitter is why a Task or GraphTask from peer from with the given
// source is refused ("" when it is not): the submitter must be a
// registered client and may only submit for itself.
func (s *Scheduler) checkSubmitter(from, source []byte) (dropReason, string) {
	if len(source) > 0 && !bytes.Equal(source, from) {
		return dropImpersonation, "the source names another client than the sender"
	}
	if s.clients[string(from)] == nil {
		return dropNotRegistered, "the client is not registered (no ClientHeartbeat yet, or it timed out)"
	}
	if s.clientLoad[string(from)] >= s.cfg.MaxTasksPerClient {
		return dropTooMany, "the client has " + strconv.Itoa(s.cfg.MaxTasksPerClient) + " unfinished tasks (graph nodes included), the most one client may have"
	}
	return 0, ""
}

// checkTaskObjects is why task m of owner is refused ("" when it is not):
// its function and object arguments must be objects the owner announced
// (ObjectInstruction{create}, sent before the Task by every client). A task
// naming objects that do not exist would otherwise sit on a worker whose
// processor waits for them forever. In a graph (nodes non-nil), task
// arguments name other nodes; outside one they are not valid.
func (s *Scheduler) checkTaskObjects(owner string, m *protocol.Task, nodes map[string]*gnode) (dropReason, string) {
	owned := s.clientObjects[owner]
	if len(m.FuncObjectID) == 0 {
		return dropUnknownObject, "the task has no function object"
	}
	unknown := " is not an object of this client (never created, or released)"
	if len(owned) >= s.cfg.MaxObjectsPerClient {
		unknown = " is not an object of this client (never created, released, or refused: the client has " +
			strconv.Itoa(s.cfg.MaxObjectsPerClient) + " objects, the most one client may have)"
	}
	if _, ok := owned[string(m.FuncObjectID)]; !ok {
		return dropUnknownObject, "function object " + hex.EncodeToString(m.FuncObjectID) + unknown
	}
	for i, a := range m.Arguments {
		switch a.Type {
		case protocol.ArgumentInline:
		case protocol.ArgumentObjectID:
			if _, ok := owned[string(a.Data)]; !ok {
				return dropUnknownObject, "argument " + strconv.Itoa(i) + ": object " + hex.EncodeToString(a.Data) + unknown
			}
		case protocol.ArgumentTask:
			if nodes == nil {
				return dropBadValue, "argument " + strconv.Itoa(i) + " is a task reference outside a graph"
			}
			if nodes[string(a.Data)] == nil {
				return dropBadGraph, "a node depends on a task that is not in the graph"
			}
		default:
			return dropBadValue, "argument " + strconv.Itoa(i) + " has an unknown type"
		}
	}
	return 0, ""
}

// refuseTask answers a Task that is not accepted with TaskResult{rejected}
// naming why; the peer learns at once instead of waiting forever.
func (s *Scheduler) refuseTask(to, taskID []byte, r dropReason, why string) {
	s.dropped(r, to, protocol.KindTask)
	s.out.Send(to, &protocol.TaskResult{TaskID: taskID, Type: protocol.ResultRejected, Message: "scheduler refused the task: " + why})
}

func (s *Scheduler) newTask(m *protocol.Task, owner string, g *graph) *task {
	s.nextSeq++
	t := &task{id: string(m.TaskID), msg: m, owner: owner, seq: s.nextSeq, graph: g,
		state: protocol.TaskStateInactive}
	if o := s.compactTask(m); o != nil {
		t.funcName = o.name
	}
	s.tasks[t.id] = t
	s.counts[protocol.TaskStateInactive]++
	return t
}

// compactTask drops what task m holds twice, for a task the scheduler
// keeps (it may wait for long, a million of them at once): an empty
// capability map (msgp decodes an absent or empty map as an allocated one,
// 48 bytes; nil encodes the same) and its own copy of the function object
// id, which becomes the tracked object's (32 bytes; every task of a map
// calls the same function). It returns the function object, nil when it is
// not tracked.
func (s *Scheduler) compactTask(m *protocol.Task) *object {
	if len(m.Capabilities) == 0 {
		m.Capabilities = nil
	}
	o := s.objects[string(m.FuncObjectID)]
	if o != nil && o.id != nil {
		m.FuncObjectID = o.id
	}
	return o
}

// ownTask records task or graph id as owner's, weighing load (1 for a
// task, its node count for a graph) in clientLoad.
func (s *Scheduler) ownTask(owner, id string, load int) {
	set := s.clientTasks[owner]
	if set == nil {
		set = map[string]struct{}{}
		s.clientTasks[owner] = set
	}
	set[id] = struct{}{}
	s.clientLoad[owner] += load
}

// disownTask undoes ownTask(owner, id, load).
func (s *Scheduler) disownTask(owner, id string, load int) {
	if set := s.clientTasks[owner]; set != nil {
		if _, ok := set[id]; !ok {
			return
		}
		delete(set, id)
		if len(set) == 0 {
			delete(s.clientTasks, owner)
		}
		if s.clientLoad[owner] -= load; s.clientLoad[owner] <= 0 {
			delete(s.clientLoad, owner)
		}
	}
}

// submit places an Inactive task, queues it, or refuses it when the waiting
// queue is full.
func (s *Scheduler) submit(t *task) {
	key := capKey(t.msg.Capabilities)
	if g := s.waiting[key]; g == nil || g.queue.Len() == 0 {
		if w := s.workers.pickKeyed(t.msg.Capabilities, key); w != nil {
			s.assign(t, w)
			return
		}
	}
	if s.cfg.MaxTasksWaiting >= 0 && s.numWaiting >= s.cfg.MaxTasksWaiting {
		s.transition(t, TrReject)
		s.finishResult(t, &protocol.TaskResult{TaskID: t.msg.TaskID, Type: protocol.ResultRejected,
			Message: "scheduler refused the task: max_number_of_tasks_waiting reached while all suitable workers are full"})
		return
	}
	s.enqueue(t, false)
	s.publishTask(t, nil)
}

func (s *Scheduler) enqueueFront(t *task) {
	if w := s.workers.pick(t.msg.Capabilities); w != nil && s.groupEmpty(t) {
		s.assign(t, w)
		return
	}
	s.enqueue(t, true)
	s.publishTask(t, nil)
}

func (s *Scheduler) groupEmpty(t *task) bool {
	g := s.waiting[capKey(t.msg.Capabilities)]
	return g == nil || g.queue.Len() == 0
}

func (s *Scheduler) enqueue(t *task, front bool) {
	key := capKey(t.msg.Capabilities)
	g := s.waiting[key]
	if g == nil {
		g = &waitGroup{key: key, need: t.msg.Capabilities}
		s.waiting[key] = g
	}
	t.group = g
	if front {
		g.queue.PushFront(t)
	} else {
		g.queue.PushBack(t)
	}
	s.numWaiting++
}

func (s *Scheduler) dequeue(t *task) {
	if t.group == nil {
		return
	}
	t.group.queue.Remove(t)
	if t.group.queue.Len() == 0 {
		delete(s.waiting, t.group.key)
	}
	t.group = nil
	s.numWaiting--
}

// retryWaiting places waiting tasks while slots allow, oldest group head
// first; a group whose head cannot be placed is skipped, not waited on.
func (s *Scheduler) retryWaiting() {
	if s.numWaiting == 0 || s.shutdown {
		return
	}
	var blocked map[*waitGroup]bool // made at the first blocked group: this runs after every result
	for s.workers.hasFree() {
		var best *waitGroup
		var bestSeq uint64
		for _, g := range s.waiting {
			if blocked[g] {
				continue
			}
			if h := g.queue.Front(); best == nil || h.seq < bestSeq {
				best, bestSeq = g, h.seq
			}
		}
		if best == nil {
			return
		}
		w := s.workers.pickKeyed(best.need, best.key)
		if w == nil {
			if blocked == nil {
				blocked = map[*waitGroup]bool{}
			}
			blocked[best] = true
			continue
		}
		t := best.queue.Front()
		s.dequeue(t)
		s.assign(t, w)
	}
}

// assign sends an Inactive task to w.
func (s *Scheduler) assign(t *task, w *worker) {
	if _, ok := s.transition(t, TrHasCapacity); !ok {
		return
	}
	t.worker = w
	t.welem = w.tasks.PushBack(t)
	w.assigned++
	t.echoAtAssign = w.echoSeq
	w.addOwner(t.owner)
	s.workers.fix(w)
	s.out.Send(w.idb, t.msg)
	s.publishTask(t, w.idb)
}

// unassign takes t off its worker.
func (s *Scheduler) unassign(t *task) {
	if w := t.worker; w != nil {
		w.tasks.Remove(t.welem)
		w.dropOwner(t.owner)
		t.worker, t.welem = nil, nil
		s.workers.fix(w)
	}
}

// transition moves t along the table; false (and a log line) when the
// transition is not allowed in t's state.
func (s *Scheduler) transition(t *task, tr Transition) (protocol.TaskState, bool) {
	next, ok := Next(t.state, tr)
	if !ok {
		s.log.Debug().Hex("task", t.msg.TaskID).Str("state", t.state.String()).Str("transition", tr.String()).Msg("transition not allowed; ignored")
		return t.state, false
	}
	if !t.state.Terminal() {
		s.counts[t.state]--
	}
	s.counts[next]++
	t.state = next
	return next, true
}

// publishTask publishes t's state. Every event carries the function name
// (a monitor that joined late or missed the Running event still labels the
// task); worker is the worker the task is on, or was on when it finished.
func (s *Scheduler) publishTask(t *task, worker []byte) {
	if !s.out.Listening() {
		return
	}
	s.out.Publish(&protocol.StateTask{TaskID: t.msg.TaskID, FunctionName: t.funcName, State: t.state, Worker: worker})
}

// workerOf is the id of t's worker, nil when it is on none.
func workerOf(t *task) []byte {
	if t.worker == nil {
		return nil
	}
	return t.worker.idb
}

// ownerID is t's owner as bytes for Outbox.Send: the task's Source, which
// onTask and onGraphTask set to the sender's routing identity, so that
// answering a task does not copy the owner's id each time.
func ownerID(t *task) []byte {
	if src := t.msg.Source; string(src) == t.owner {
		return src
	}
	return []byte(t.owner)
}

// forget removes a terminal task.
func (s *Scheduler) forget(t *task) {
	s.unassign(t)
	s.dequeue(t)
	delete(s.tasks, t.id)
	if t.graph == nil {
		s.disownTask(t.owner, t.id, 1)
	}
}

// finishResult ends t (already in its terminal state) with result r.
func (s *Scheduler) finishResult(t *task, r *protocol.TaskResult) {
	worker := workerOf(t) // forget takes t off its worker
	s.forget(t)
	if !t.silent {
		s.out.Send(ownerID(t), r)
	} else if len(r.Results) > 0 {
		s.releaseObjects(t.owner, r.Results)
	}
	if s.out.Listening() {
		s.out.Publish(&protocol.StateTask{TaskID: t.msg.TaskID, FunctionName: t.funcName, State: t.state, Worker: worker, Profile: r.Profile})
	}
	if t.graph != nil {
		s.nodeFinished(t.graph, t, r)
	}
	s.retryWaiting()
}

// finishCanceled ends t (already Canceled or CanceledNotFound) and confirms.
func (s *Scheduler) finishCanceled(t *task, c protocol.TaskCancelConfirmType) {
	worker := workerOf(t)
	s.forget(t)
	if !t.silent {
		s.out.Send(ownerID(t), &protocol.TaskCancelConfirm{TaskID: t.msg.TaskID, Type: c})
	}
	if s.out.Listening() {
		s.out.Publish(&protocol.StateTask{TaskID: t.msg.TaskID, FunctionName: t.funcName, State: t.state, Worker: worker})
	}
	if t.graph != nil {
		s.nodeCanceled(t.graph, t, c)
	}
	s.retryWaiting()
}

func (s *Scheduler) onTaskCancel(from []byte, m *protocol.TaskCancel) {
	id := string(m.TaskID)
	// A client cancels its own tasks only (task ids are on the monitor);
	// for anyone else the task does not exist.
	if g := s.taskToGraph[id]; g != nil {
		if g.client != string(from) {
			s.dropped(dropImpersonation, from, m.Kind())
			s.out.Send(from, &protocol.TaskCancelConfirm{TaskID: m.TaskID, Type: protocol.CancelConfirmNotFound})
			return
		}
		s.cancelGraph(g)
		return
	}
	if owner, ok := s.parkedIDs[id]; ok && owner == string(from) {
		s.unpark(id)
		s.out.Send(from, &protocol.TaskCancelConfirm{TaskID: m.TaskID, Type: protocol.CancelConfirmCanceled})
		return
	}
	t := s.tasks[id]
	if t == nil || t.owner != string(from) {
		if t != nil {
			s.dropped(dropImpersonation, from, m.Kind())
		}
		s.out.Send(from, &protocol.TaskCancelConfirm{TaskID: m.TaskID, Type: protocol.CancelConfirmNotFound})
		return
	}
	s.cancelTask(t, m.Force)
}

// cancelTask is a client's (or a departed client's) cancel of t.
func (s *Scheduler) cancelTask(t *task, force bool) {
	switch t.state {
	case protocol.TaskStateInactive:
		s.transition(t, TrTaskCancel)
		s.finishCanceled(t, protocol.CancelConfirmCanceled)
	case protocol.TaskStateRunning, protocol.TaskStateBalanceCanceling:
		s.transition(t, TrTaskCancel)
		t.cancelsInFlight++
		t.forced = t.forced || force
		s.out.Send(t.worker.idb, &protocol.TaskCancel{TaskID: t.msg.TaskID, Force: force})
		s.publishTask(t, t.worker.idb)
	case protocol.TaskStateCanceling:
		if force && !t.forced {
			// A plain cancel is pending, which the worker may refuse for a
			// running task (cancel_failed): a forced one now (the client
			// asked again, or left) must not wait on that answer. The
			// last answer settles it (onCancelConfirm).
			t.cancelsInFlight++
			t.forced = true
			s.out.Send(t.worker.idb, &protocol.TaskCancel{TaskID: t.msg.TaskID, Force: true})
			return
		}
		fallthrough
	default:
		s.log.Debug().Hex("task", t.msg.TaskID).Str("state", t.state.String()).Msg("cancel of a task already being canceled ignored")
	}
}

// workerTask is the task id that a message of kind what from worker from
// is about, or nil (logged at debug, the message dropped) when the task is
// unknown or not the sender's.
func (s *Scheduler) workerTask(from, id []byte, what string) *task {
	t := s.tasks[string(id)]
	if t == nil {
		s.log.Debug().Str("from", string(from)).Hex("task", id).Msgf("%s for unknown task dropped", what)
		return nil
	}
	if t.worker == nil || t.worker.id != string(from) {
		s.log.Debug().Str("from", string(from)).Hex("task", id).Str("state", t.state.String()).Msgf("%s not from the task's worker; dropped", what)
		return nil
	}
	return t
}

func (s *Scheduler) onCancelConfirm(from []byte, m *protocol.TaskCancelConfirm) {
	t := s.workerTask(from, m.TaskID, "TaskCancelConfirm")
	if t == nil {
		return
	}
	if t.cancelsInFlight > 0 {
		t.cancelsInFlight--
	}
	switch t.state {
	case protocol.TaskStateCanceling:
		if m.Type != protocol.CancelConfirmCanceled && t.cancelsInFlight > 0 {
			return // another cancel is still in flight; its answer decides
		}
		next, ok := s.transition(t, confirmTransition(m.Type))
		if !ok {
			return
		}
		if next == protocol.TaskStateRunning {
			s.publishTask(t, t.worker.idb) // keep running, the result is awaited
			return
		}
		c := protocol.CancelConfirmCanceled
		if next == protocol.TaskStateCanceledNotFound {
			c = protocol.CancelConfirmNotFound
		}
		s.finishCanceled(t, c)
	case protocol.TaskStateBalanceCanceling:
		next, ok := s.transition(t, confirmTransition(m.Type))
		if !ok {
			return
		}
		if next == protocol.TaskStateRunning {
			s.publishTask(t, t.worker.idb)
			return
		}
		// Inactive: the worker gave the task back; place it again.
		t.cancelsInFlight, t.forced = 0, false
		s.unassign(t)
		s.enqueueFront(t)
		s.retryWaiting()
	default:
		s.log.Debug().Hex("task", m.TaskID).Str("state", t.state.String()).Msg("unexpected TaskCancelConfirm dropped")
	}
}

func (s *Scheduler) onTaskResult(from []byte, m *protocol.TaskResult) {
	t := s.workerTask(from, m.TaskID, "TaskResult")
	if t == nil {
		return
	}
	if _, ok := s.transition(t, resultTransition(m.Type)); !ok {
		return
	}
	s.finishResult(t, m)
}

func (s *Scheduler) onTaskLog(from []byte, m *protocol.TaskLog) {
	t := s.workerTask(from, m.TaskID, "TaskLog")
	if t == nil || t.silent { // silent: its graph was answered already
		return
	}
	s.out.Send(ownerID(t), m)
}

// ---- balancing ----

// balanceAdvice is the configured policy's advice: which tasks to move
// off which workers.
func (s *Scheduler) balanceAdvice() map[*worker][]*task {
	if s.cfg.Policy == PolicyCapability {
		return balanceCapability(s.workers.order, s.cfg.MaxBalanceMoves)
	}
	return balanceEven(s.workers.order, s.cfg.MaxBalanceMoves)
}

func (s *Scheduler) balance() {
	advice := s.balanceAdvice()
	key := adviceEntries(s.workers.order, advice)
	if slices.Equal(key, s.lastAdvice) {
		s.sameAdvice++
	} else {
		s.lastAdvice = key
		s.sameAdvice = 0
	}
	if s.sameAdvice > 0 && s.sameAdvice < s.cfg.BalanceTriggerTimes {
		return
	}
	if len(advice) == 0 {
		return
	}
	for _, w := range s.workers.order {
		ts := advice[w]
		if len(ts) == 0 || !s.out.Listening() {
			continue
		}
		ids := make([][]byte, len(ts))
		for i, t := range ts {
			ids[i] = t.msg.TaskID
		}
		s.out.Publish(&protocol.StateBalanceAdvice{WorkerID: w.idb, TaskIDs: ids})
	}
	for _, w := range s.workers.order {
		for _, t := range advice[w] {
			if _, ok := s.transition(t, TrBalanceTaskCancel); !ok {
				continue
			}
			t.cancelsInFlight++
			s.out.Send(w.idb, &protocol.TaskCancel{TaskID: t.msg.TaskID, Force: false})
			s.publishTask(t, w.idb)
		}
	}
}
