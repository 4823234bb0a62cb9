package scheduler

import (
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// role is which side of the protocol sends a message kind to the scheduler.
type role uint8

const (
	roleAny role = iota // ObjectInstruction: both (checked in onObjectInstruction)
	roleClient
	roleWorker
)

// kindRoles is who may send each kind (docs/protocol.md §6). Kinds not
// listed are not accepted from peers at all (Handle's default case).
var kindRoles = map[protocol.Kind]role{
	protocol.KindClientHeartbeat:   roleClient,
	protocol.KindClientDisconnect:  roleClient,
	protocol.KindTask:              roleClient,
	protocol.KindGraphTask:         roleClient,
	protocol.KindTaskCancel:        roleClient,
	protocol.KindWorkerHeartbeat:   roleWorker,
	protocol.KindDisconnectRequest: roleWorker,
	protocol.KindTaskCancelConfirm: roleWorker,
	protocol.KindTaskResult:        roleWorker,
	protocol.KindTaskLog:           roleWorker,
}

// maxWorkerQueueSize bounds the queue size a worker may announce: far
// above any real worker's (default 1000), far below what a peer sending
// random values would claim to make itself the sink for every task.
const maxWorkerQueueSize = 1 << 20

// maxRefusedPeers bounds the table of peers refused as workers.
const maxRefusedPeers = 4096

// admit applies the role rules before m is handled; false means m was
// dropped (and counted). A registered client's worker messages are
// dropped. A registered worker that sends a client's message is no worker
// of ours (real workers never do; a peer sending random messages does):
// it is removed, its tasks are placed again at once, and like any peer
// that sent a client's message it may not register as a worker until it
// has been quiet for the worker timeout. So a noisy peer cannot become a
// sink that holds tasks and never answers.
func (s *Scheduler) admit(from []byte, m protocol.Message, now time.Time) bool {
	k := m.Kind()
	// Lookups index with string(from) directly, which does not allocate:
	// this runs for every message.
	switch kindRoles[k] {
	case roleClient:
		if s.clients[string(from)] != nil && s.workers.byID[string(from)] == nil {
			return true // the common case, kept cheap
		}
		id := string(from)
		if w := s.workers.byID[id]; w != nil {
			s.dropped(dropWrongRole, from, k)
			s.log.Warn().Str("worker", id).Str("kind", k.String()).Int("tasks", w.tasks.Len()).
				Msg("worker sent a client's message; removed, its tasks placed again, refused as a worker for the worker timeout")
			s.refusePeer(id, now)
			s.removeWorker(w)
			return false
		}
		if k != protocol.KindClientHeartbeat && s.clients[id] == nil {
			s.refusePeer(id, now)
		}
	case roleWorker:
		if s.clients[string(from)] != nil {
			s.dropped(dropWrongRole, from, k)
			return false
		}
		if _, ok := s.refused[string(from)]; ok {
			s.refusePeer(string(from), now) // still talking: the refusal lasts
			s.dropped(dropRefusedPeer, from, k)
			return false
		}
		if hb, ok := m.(*protocol.WorkerHeartbeat); ok && s.workers.byID[string(from)] == nil &&
			(hb.QueueSize == 0 || hb.QueueSize > maxWorkerQueueSize) {
			s.dropped(dropBadHeartbeat, from, k)
			return false
		}
	}
	return true
}

// refusePeer keeps id from registering as a worker until the worker
// timeout has passed without a message from it. At the table's bound an
// arbitrary entry makes room: the table is a guard against noisy peers,
// not a record.
func (s *Scheduler) refusePeer(id string, now time.Time) {
	if _, ok := s.refused[id]; !ok && len(s.refused) >= maxRefusedPeers {
		for other := range s.refused {
			delete(s.refused, other)
			break
		}
	}
	s.refused[id] = now.Add(s.cfg.WorkerTimeout)
}

// expireRefused forgets refused peers quiet for the worker timeout.
func (s *Scheduler) expireRefused(now time.Time) {
	for id, until := range s.refused {
		if !now.Before(until) {
			delete(s.refused, id)
		}
	}
}
