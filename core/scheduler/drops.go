package scheduler

import (
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// dropReason is why a message from a peer was dropped or refused. Anything
// a remote peer can trigger at will is counted here instead of logged one
// line per message: a noisy or hostile peer must not flood the log.
type dropReason uint8

const (
	dropUnexpected      dropReason = iota // a kind peers do not send to the scheduler
	dropWrongRole                         // a client's message from a worker or the other way round
	dropNotRegistered                     // a client's request before its first heartbeat (or after its timeout)
	dropNoID                              // Task or GraphTask without an id
	dropDuplicate                         // Task or GraphTask id already in use
	dropImpersonation                     // the message claims another peer's identity
	dropUnknownObject                     // a task refers to an object its client does not own
	dropBadGraph                          // GraphTask refused (cycle, unknown node, ...)
	dropBadValue                          // an unknown enum value, or an instruction peers may not send
	dropBadHeartbeat                      // WorkerHeartbeat with a queue size out of bounds
	dropRefusedPeer                       // from a peer refused as a worker for misbehaving
	dropShutdownRefused                   // ClientDisconnect{shutdown} to a protected scheduler
	dropRejoined                          // a client registered again soon after its own goodbye
	dropTooMany                           // a client's tasks or objects at their bound
	numDropReasons
)

// dropNames are the reasons as logged.
var dropNames = [numDropReasons]string{
	dropUnexpected:      "unexpected message kind",
	dropWrongRole:       "message of the other role (client vs worker)",
	dropNotRegistered:   "client not registered",
	dropNoID:            "task without id",
	dropDuplicate:       "duplicate task id",
	dropImpersonation:   "claims another peer's identity",
	dropUnknownObject:   "task refers to an object its client does not own",
	dropBadGraph:        "graph refused",
	dropBadValue:        "unknown or forbidden type value",
	dropBadHeartbeat:    "worker heartbeat out of bounds",
	dropRefusedPeer:     "from a peer refused as a worker",
	dropShutdownRefused: "shutdown refused: the scheduler is protected",
	dropRejoined:        "client registered again soon after its own disconnect (not logged one by one)",
	dropTooMany:         "client at its bound of tasks or objects",
}

func (r dropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown reason"
}

// dropCount is one reason's count since the last flush, with the first
// peer seen as an example (enough to find the culprit in the log).
type dropCount struct {
	n       uint64
	example string
	kind    protocol.Kind
}

// dropped counts a message dropped or refused for reason r.
func (s *Scheduler) dropped(r dropReason, from []byte, k protocol.Kind) {
	c := &s.drops[r]
	if c.n == 0 {
		c.example = string(from)
		c.kind = k
	}
	c.n++
	s.dropTotal[r]++
}

// flushDrops logs one line per reason counted since the last flush, at
// most once per DropLogInterval.
func (s *Scheduler) flushDrops(now time.Time) {
	if now.Before(s.nextDropLog) {
		return
	}
	any := false
	for r := range s.drops {
		c := &s.drops[r]
		if c.n == 0 {
			continue
		}
		any = true
		s.log.Warn().Str("reason", dropReason(r).String()).Uint64("count", c.n).Str("example_peer", c.example).
			Str("example_kind", c.kind.String()).Msg("dropped or refused messages from peers")
		*c = dropCount{}
	}
	if any {
		s.nextDropLog = now.Add(s.cfg.DropLogInterval)
	}
}

// Dropped reports how many messages were dropped or refused for each
// reason since start (for tests and status).
func (s *Scheduler) Dropped() map[string]uint64 {
	out := map[string]uint64{}
	for r, n := range s.dropTotal {
		if n > 0 {
			out[dropReason(r).String()] = n
		}
	}
	return out
}
