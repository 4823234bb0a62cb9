package scheduler

import (
	"sort"
	"strings"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// object is a tracked object: its name (for StateTask function names), the
// clients that own it, and how many unfinished graph nodes need it (pins).
// It is deleted when it has neither owners nor pins: an owner's release
// takes effect once the last node that needs the object is done.
type object struct {
	id     []byte // the id, shared by the tasks that name it as their function (compactTask)
	name   []byte
	owners []string
	pins   int
}

// capKey is a canonical string for a set of capability names.
func capKey(caps map[string]int64) string {
	switch len(caps) {
	case 0:
		return ""
	case 1:
		for k := range caps {
			return k
		}
	}
	names := make([]string, 0, len(caps))
	for k := range caps {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, "\x00")
}

func (s *Scheduler) onObjectInstruction(from []byte, m *protocol.ObjectInstruction) {
	if len(m.ObjectUser) == 0 {
		m.ObjectUser = from
	}
	user := string(m.ObjectUser)
	// A client creates and releases its own objects only; a worker creates
	// the result objects of the tasks it holds (for their owners) and
	// nothing else. Anything else claims another peer's identity.
	if w := s.workers.byID[string(from)]; w != nil {
		if m.Type != protocol.InstructionCreate || w.owners[user] == 0 {
			s.dropped(dropImpersonation, from, m.Kind())
			if m.Type == protocol.InstructionCreate {
				// Most likely a late result of a task taken away from this
				// worker: nobody will read these objects.
				s.deleteUntracked(m.Metadata.ObjectIDs)
			}
			return
		}
	} else if user != string(from) {
		s.dropped(dropImpersonation, from, m.Kind())
		return
	}
	switch m.Type {
	case protocol.InstructionCreate:
		n := len(s.clientObjects[user]) + len(m.Metadata.ObjectIDs)
		if s.workers.byID[string(from)] == nil && n > s.cfg.MaxObjectsPerClient {
			// Refused whole; the tasks naming them are refused in turn,
			// with a message naming the bound.
			s.dropped(dropTooMany, from, m.Kind())
			return
		}
		if n > 2*s.cfg.MaxObjectsPerClient {
			// A worker's result objects may take a client past its own
			// bound (its tasks' results must not be lost to its inputs),
			// but not without end: past twice the bound they are refused
			// and deleted, and the client never hears of them.
			s.dropped(dropTooMany, from, m.Kind())
			s.deleteUntracked(m.Metadata.ObjectIDs)
			return
		}
		_, known := s.clients[user]
		if _, ok := s.departed[user]; ok {
			// Within the retention time: kept with the client's other
			// objects (a late result of a task it had; it may come back).
			known = true
		}
		if !known {
			// The owner is gone (or never registered): nobody will read or
			// delete these objects, so delete them now instead of leaking.
			s.log.Debug().Str("from", string(from)).Str("client", user).Int("objects", len(m.Metadata.ObjectIDs)).Msg("objects created for an unknown client; deleting them")
			s.deleteUntracked(m.Metadata.ObjectIDs)
			return
		}
		for i, id := range m.Metadata.ObjectIDs {
			var name []byte
			if i < len(m.Metadata.Names) {
				name = m.Metadata.Names[i]
			}
			s.addObject(user, id, name)
		}
		if len(s.parked[user]) > 0 {
			s.unparkReady(user)
		}
	case protocol.InstructionDelete:
		s.releaseObjects(user, m.Metadata.ObjectIDs)
	default: // clear is not accepted from peers either
		s.dropped(dropBadValue, from, m.Kind())
	}
}

// deleteUntracked queues the ids the scheduler does not track for deletion
// from storage (tracked ones belong to someone).
func (s *Scheduler) deleteUntracked(ids [][]byte) {
	for _, id := range ids {
		if _, tracked := s.objects[string(id)]; !tracked {
			s.toDelete = append(s.toDelete, id)
		}
	}
}

func (s *Scheduler) addObject(owner string, id, name []byte) {
	key := string(id)
	o := s.objects[key]
	if o == nil {
		o = &object{id: id}
		s.objects[key] = o
	}
	o.name = name
	for _, w := range o.owners {
		if w == owner {
			return
		}
	}
	o.owners = append(o.owners, owner)
	set := s.clientObjects[owner]
	if set == nil {
		set = map[string]struct{}{}
		s.clientObjects[owner] = set
	}
	set[key] = struct{}{}
}

// releaseObjects drops owner's ownership of ids; objects left without an
// owner are queued for deletion.
func (s *Scheduler) releaseObjects(owner string, ids [][]byte) {
	set := s.clientObjects[owner]
	for _, id := range ids {
		key := string(id)
		o := s.objects[key]
		if o == nil {
			continue
		}
		s.dropOwner(o, key, owner)
		if set != nil {
			delete(set, key)
		}
	}
	if set != nil && len(set) == 0 {
		delete(s.clientObjects, owner)
	}
}

func (s *Scheduler) dropOwner(o *object, key, owner string) {
	for i, w := range o.owners {
		if w == owner {
			o.owners = append(o.owners[:i], o.owners[i+1:]...)
			break
		}
	}
	s.maybeDelete(o, key)
}

// maybeDelete queues o for deletion when nobody owns or needs it.
func (s *Scheduler) maybeDelete(o *object, key string) {
	if len(o.owners) > 0 {
		return
	}
	if o.pins > 0 {
		s.log.Debug().Hex("object", []byte(key)).Int("pins", o.pins).Msg("object released but still needed by graph nodes; deletion deferred")
		return
	}
	delete(s.objects, key)
	s.toDelete = append(s.toDelete, []byte(key))
}

// pin marks the tracked object id as needed; it returns false (and pins
// nothing) when the object is not tracked.
func (s *Scheduler) pin(id []byte) bool {
	o := s.objects[string(id)]
	if o == nil {
		return false
	}
	o.pins++
	return true
}

// unpin undoes one pin; the object is deleted if it was released meanwhile.
func (s *Scheduler) unpin(key string) {
	o := s.objects[key]
	if o == nil || o.pins == 0 {
		return
	}
	o.pins--
	if o.pins == 0 && len(o.owners) == 0 {
		s.log.Debug().Hex("object", []byte(key)).Msg("no graph node needs the released object any more; deleting it")
	}
	s.maybeDelete(o, key)
}

func (s *Scheduler) releaseClientObjects(owner string) {
	set := s.clientObjects[owner]
	delete(s.clientObjects, owner)
	for key := range set {
		if o := s.objects[key]; o != nil {
			s.dropOwner(o, key, owner)
		}
	}
}

// flushObjects sends the queued deletions, at most once per flush interval
// (force ignores the interval): one ObjectInstruction{delete} per batch to
// every worker, then one storage delete per id.
func (s *Scheduler) flushObjects(now time.Time, force bool) {
	if len(s.toDelete) == 0 || (!force && now.Before(s.nextFlush)) {
		return
	}
	s.nextFlush = now.Add(s.cfg.ObjectFlushInterval)
	ids := s.toDelete
	s.toDelete = nil
	for len(ids) > 0 {
		n := min(len(ids), s.cfg.MaxDeleteBatch)
		batch := ids[:n:n]
		ids = ids[n:]
		// One message for every worker: the outbox encodes it once, not
		// once per worker (4,096 ids are 128 KiB, a thousand workers 128 MiB).
		del := &protocol.ObjectInstruction{Type: protocol.InstructionDelete,
			Metadata: protocol.ObjectMetadata{ObjectIDs: batch}}
		for _, w := range s.workers.order {
			s.out.Send(w.idb, del)
		}
		for _, id := range batch {
			s.out.DeleteObject(id)
		}
	}
}
