package storage

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/tinylib/msgp/msgp"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/transport"
)

// Bounds on parked requests. A get or duplicate parks because the set that
// creates its object travels on another connection (a client's set and the
// task that reads it, a worker's result and the TaskResult); such a wait lasts
// milliseconds. A request that waits longer than the deadline is answered
// notFound, so a client asking for ids that never appear can neither exhaust
// memory nor keep a waiter (a processor's slot) forever.
const (
	// maxWaitingRequests bounds the parked requests of all peers together.
	maxWaitingRequests = 1 << 20
	// DefaultMaxWaitingPerPeer bounds the parked requests of one peer
	// (routing identity), so one peer cannot take the global budget.
	DefaultMaxWaitingPerPeer = 1 << 16
	// DefaultWaitTimeout is how long a get or duplicate may stay parked.
	DefaultWaitTimeout = 60 * time.Second
)

// content is one stored byte string, shared by every object id that refers to
// it (a set creates one, a duplicate adds a reference). data is never
// modified once stored: replies hand it to the transport. A large data is a
// view of the libzmq message it arrived in, which the store holds with
// transport.Retain while some id refers to it and releases afterwards (for
// other slices Retain and Release do nothing).
type content struct {
	data []byte
	refs int
}

// getWaiter is a get parked until its object id exists. seq orders every
// parked request of the store: in each waiter list seqs increase (appended in
// arrival order, removed without reordering).
type getWaiter struct {
	parkedReq
	objectID []byte
	max      uint64
}

// dupWaiter is a duplicate parked until its source id exists.
type dupWaiter struct {
	parkedReq
	newID []byte
}

// parkedReq is what every parked request has: who asked, its request id,
// and its place in the store's order.
type parkedReq struct {
	peer  []byte
	reqID uint64
	seq   uint64
}

func (r parkedReq) request() parkedReq { return r }

// deadline is one parked request's expiry. Every request waits the same
// waitTimeout and the clock only moves forward, so deadlines in arrival order
// are sorted: a FIFO queue is the timer, and expiring costs O(expired).
// Entries of requests answered or dropped early stay until their time and
// are skipped then (or compacted away, see expire).
type deadline struct {
	at  time.Time
	key string // object id (get) or source id (duplicate) the request waits on
	seq uint64
	dup bool
}

// store is the object storage state and the request handler. It is owned by
// exactly one goroutine (the server loop) and has no locks. It performs no
// I/O itself: replies go through send, which takes ownership of the frames
// (frames[0] is the peer identity).
type store struct {
	maxMemory int64
	send      func(frames ...[]byte)
	log       zerolog.Logger
	bad       rateLimitedLog

	objects map[string]*content
	gets    map[string][]getWaiter // object id -> gets waiting for it
	dups    map[string][]dupWaiter // source id -> duplicates waiting for it
	waiting int                    // parked gets + duplicates

	now         func() time.Time
	waitTimeout time.Duration
	maxPerPeer  int
	peers       map[string]*peerWaits // peer identity -> its parked requests
	deadlines   []deadline            // in arrival (= deadline) order from head
	head        int                   // first live entry of deadlines
	seq         uint64                // last seq given to a parked request
	expired     int                   // parked requests expired since the last report
	dropped     int                   // parked requests of departed peers dropped since the last report
	used        int64                 // bytes of distinct contents
	contents    int                   // distinct contents
	freed       int64                 // bytes of contents dropped since the server last trimmed the heap
}

func newStore(maxMemory int64, log zerolog.Logger, send func(frames ...[]byte)) *store {
	return &store{
		maxMemory: maxMemory,
		send:      send,
		log:       log,
		bad:       rateLimitedLog{log: log, now: time.Now},
		objects:   make(map[string]*content),
		gets:      make(map[string][]getWaiter),
		dups:      make(map[string][]dupWaiter),

		now:         time.Now,
		waitTimeout: DefaultWaitTimeout,
		maxPerPeer:  DefaultMaxWaitingPerPeer,
		peers:       make(map[string]*peerWaits),
	}
}

// peerWaits counts one peer's parked requests per key (object id of a get,
// source id of a duplicate), so dropPeer visits only that peer's lists.
type peerWaits struct {
	total int
	keys  map[string]int
}

// Request validation errors; each becomes the text of an error reply.
var (
	errNoHeader     = errors.New("message without header frame")
	errNotRequest   = errors.New("header frame is not an ObjectRequest")
	errFrameCount   = errors.New("wrong number of frames")
	errObjectID     = fmt.Errorf("object_id must be %d to %d bytes", protocol.MinObjectIDLength, protocol.MaxObjectIDLength)
	errSourceID     = fmt.Errorf("source_id must be %d to %d bytes", protocol.MinObjectIDLength, protocol.MaxObjectIDLength)
	errPayloadLen   = errors.New("payload_length does not match the payload frame")
	errTooManyWaits = fmt.Errorf("too many waiting requests (limit %d)", maxWaitingRequests)
	errPeerWaits    = errors.New("too many waiting requests from this peer")
)

// handle processes one message from the ROUTER socket: msg[0] is the peer
// identity, msg[1] the request header, msg[2] the payload of a set. It never
// panics on any input and never blocks. It borrows msg: the caller releases
// its frames afterwards, and handle retains the payload it stores.
func (s *store) handle(msg [][]byte) {
	if len(msg) == 0 {
		s.bad.report(nil, "", errNoHeader)
		return
	}
	peer, body := msg[0], msg[1:]
	if len(body) == 0 {
		s.bad.report(peer, "", errNoHeader)
		return
	}
	m, err := protocol.Decode(body[0])
	if err != nil {
		if id, ok := salvageRequestID(body[0]); ok {
			s.replyError(peer, id, nil, "malformed request header: "+err.Error())
		}
		s.bad.report(peer, "", err)
		return
	}
	req, ok := m.(*protocol.ObjectRequest)
	if !ok {
		s.bad.report(peer, "", errNotRequest)
		return
	}
	if err := validate(req, body); err != nil {
		// The id is echoed as far as an id goes: a bad one may be megabytes.
		s.replyError(peer, req.RequestID, req.ObjectID[:min(len(req.ObjectID), protocol.MaxObjectIDLength)], fmt.Sprintf("%s request: %v", req.Type, err))
		s.bad.report(peer, req.Type.String(), err)
		return
	}
	if s.log.GetLevel() <= zerolog.DebugLevel {
		s.log.Debug().Str("op", req.Type.String()).Hex("object_id", req.ObjectID).
			Uint64("request_id", req.RequestID).Msg("object storage request")
	}
	switch req.Type {
	case protocol.ObjectSet:
		s.set(peer, req, body[1])
	case protocol.ObjectGet:
		s.get(peer, req)
	case protocol.ObjectDelete:
		s.delete(peer, req)
	case protocol.ObjectDuplicate:
		s.duplicate(peer, req)
	case protocol.ObjectStats:
		s.stats(peer, req)
	}
}

// validate checks the frame count, ids and lengths of a decoded request.
// body is the message without the identity frame.
func validate(req *protocol.ObjectRequest, body [][]byte) error {
	frames := 1
	switch req.Type {
	case protocol.ObjectSet:
		frames = 2
	case protocol.ObjectGet, protocol.ObjectDelete, protocol.ObjectDuplicate, protocol.ObjectStats:
	default:
		return fmt.Errorf("unknown request type %d", uint8(req.Type))
	}
	if len(body) != frames {
		return fmt.Errorf("%w: want %d, got %d", errFrameCount, frames, len(body))
	}
	if req.Type == protocol.ObjectStats {
		return nil
	}
	if !validID(req.ObjectID) {
		return errObjectID
	}
	switch req.Type {
	case protocol.ObjectSet:
		if req.PayloadLength != uint64(len(body[1])) {
			return fmt.Errorf("%w: header says %d, frame has %d bytes", errPayloadLen, req.PayloadLength, len(body[1]))
		}
	case protocol.ObjectDuplicate:
		if !validID(req.SourceID) {
			return errSourceID
		}
	}
	return nil
}

func validID(id []byte) bool {
	return len(id) >= protocol.MinObjectIDLength && len(id) <= protocol.MaxObjectIDLength
}

// salvageRequestID digs the request id out of a header frame that failed to
// decode (truncated, a field of the wrong type, trailing bytes), so the
// client still gets an error reply instead of waiting forever.
func salvageRequestID(frame []byte) (uint64, bool) {
	if len(frame) == 0 || protocol.Kind(frame[0]) != protocol.KindObjectRequest {
		return 0, false
	}
	b := frame[1:]
	n, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return 0, false
	}
	for ; n > 0; n-- {
		var key []byte
		key, b, err = msgp.ReadMapKeyZC(b)
		if err != nil {
			return 0, false
		}
		if string(key) == "request_id" {
			id, _, err := msgp.ReadUint64Bytes(b)
			return id, err == nil
		}
		if b, err = msgp.Skip(b); err != nil {
			return 0, false
		}
	}
	return 0, false
}

func (s *store) set(peer []byte, req *protocol.ObjectRequest, payload []byte) {
	key := string(req.ObjectID)
	growth := int64(len(payload))
	if old := s.objects[key]; old != nil && old.refs == 1 {
		growth -= int64(len(old.data))
	}
	if s.maxMemory > 0 && growth > 0 && s.used+growth > s.maxMemory {
		err := fmt.Errorf("storing %d bytes would exceed the memory limit of %d bytes (%d bytes in use)",
			len(payload), s.maxMemory, s.used)
		s.replyError(peer, req.RequestID, req.ObjectID, "set refused: "+err.Error())
		s.bad.report(peer, "set", err)
		return
	}
	transport.Retain(payload)
	s.put(key, &content{data: payload})
	s.release(key)
	s.reply(peer, &protocol.ObjectResponse{RequestID: req.RequestID, Type: protocol.ObjectSetOK, ObjectID: req.ObjectID})
}

func (s *store) get(peer []byte, req *protocol.ObjectRequest) {
	key := string(req.ObjectID)
	if c := s.objects[key]; c != nil {
		s.sendContent(peer, req.RequestID, req.ObjectID, c, req.MaxLength)
		return
	}
	seq, err := s.park(peer, key, false)
	if err != nil {
		s.replyError(peer, req.RequestID, req.ObjectID, "get refused: "+err.Error())
		s.bad.report(peer, "get", err)
		return
	}
	s.gets[key] = append(s.gets[key], getWaiter{parkedReq{peer, req.RequestID, seq}, req.ObjectID, req.MaxLength})
}

func (s *store) delete(peer []byte, req *protocol.ObjectRequest) {
	key := string(req.ObjectID)
	typ := protocol.ObjectDelNotExists
	if s.objects[key] != nil {
		s.put(key, nil)
		typ = protocol.ObjectDelOK
	}
	s.reply(peer, &protocol.ObjectResponse{RequestID: req.RequestID, Type: typ, ObjectID: req.ObjectID})
}

func (s *store) duplicate(peer []byte, req *protocol.ObjectRequest) {
	src := s.objects[string(req.SourceID)]
	if src == nil {
		key := string(req.SourceID)
		seq, err := s.park(peer, key, true)
		if err != nil {
			s.replyError(peer, req.RequestID, req.ObjectID, "duplicate refused: "+err.Error())
			s.bad.report(peer, "duplicate", err)
			return
		}
		s.dups[key] = append(s.dups[key], dupWaiter{parkedReq{peer, req.RequestID, seq}, req.ObjectID})
		return
	}
	key := string(req.ObjectID)
	s.put(key, src)
	s.release(key)
	s.reply(peer, &protocol.ObjectResponse{RequestID: req.RequestID, Type: protocol.ObjectDuplicateOK, ObjectID: req.ObjectID})
}

func (s *store) stats(peer []byte, req *protocol.ObjectRequest) {
	s.reply(peer, &protocol.ObjectResponse{
		RequestID:       req.RequestID,
		Type:            protocol.ObjectStatsOK,
		ObjectID:        req.ObjectID,
		Objects:         uint64(len(s.objects)),
		Bytes:           uint64(s.used),
		UniqueContents:  uint64(s.contents),
		WaitingRequests: uint64(s.waiting),
		MaxMemory:       uint64(s.maxMemory),
	})
}

// put makes key refer to c (nil removes key), keeping refcounts and the byte
// count right. The old content of key is released when no id refers to it.
func (s *store) put(key string, c *content) {
	old := s.objects[key]
	if old == c {
		return
	}
	if c != nil {
		if c.refs == 0 {
			s.used += int64(len(c.data))
			s.contents++
		}
		c.refs++
		s.objects[key] = c
	} else {
		delete(s.objects, key)
	}
	if old != nil {
		old.refs--
		if old.refs == 0 {
			s.used -= int64(len(old.data))
			s.contents--
			s.freed += int64(len(old.data))
			transport.Release(old.data)
		}
	}
}

// release answers everything waiting for key, which now exists: parked gets
// receive the content; parked duplicates whose source is key are applied and
// answered, and their new ids are released in turn (chains of duplicates).
// A work list instead of recursion keeps long chains off the stack.
func (s *store) release(key string) {
	work := []string{key}
	for len(work) > 0 {
		k := work[len(work)-1]
		work = work[:len(work)-1]
		c := s.objects[k]
		if c == nil {
			continue
		}
		if ws, ok := s.gets[k]; ok {
			delete(s.gets, k)
			for _, w := range ws {
				s.unpark(w.peer, k)
				s.sendContent(w.peer, w.reqID, w.objectID, c, w.max)
			}
		}
		if ds, ok := s.dups[k]; ok {
			delete(s.dups, k)
			for _, d := range ds {
				s.unpark(d.peer, k)
				nk := string(d.newID)
				s.put(nk, c)
				s.reply(d.peer, &protocol.ObjectResponse{RequestID: d.reqID, Type: protocol.ObjectDuplicateOK, ObjectID: d.newID})
				work = append(work, nk)
			}
		}
	}
}

// sendContent replies getOK with at most max bytes (0 = all) of c. The
// whole content is handed to the transport as it is (for a held frame the
// transport shares the libzmq message); a truncated one is copied, as the
// transport asks for pieces of held frames.
func (s *store) sendContent(peer []byte, reqID uint64, objectID []byte, c *content, max uint64) {
	data := c.data
	if max > 0 && max < uint64(len(data)) {
		data = bytes.Clone(data[:max])
	}
	hdr := protocol.MustEncode(&protocol.ObjectResponse{
		RequestID: reqID, Type: protocol.ObjectGetOK, ObjectID: objectID, PayloadLength: uint64(len(data)),
	})
	if len(data) == 0 {
		s.send(peer, hdr)
		return
	}
	s.send(peer, hdr, data)
}

// releaseAll drops every object (when the server stops), releasing the
// contents held in libzmq memory. Parked requests are forgotten.
func (s *store) releaseAll() {
	for key := range s.objects {
		s.put(key, nil)
	}
	clear(s.gets)
	clear(s.dups)
	clear(s.peers)
	s.deadlines, s.head = nil, 0
	s.waiting = 0
}

func (s *store) reply(peer []byte, resp *protocol.ObjectResponse) {
	s.send(peer, protocol.MustEncode(resp))
}

func (s *store) replyError(peer []byte, reqID uint64, objectID []byte, text string) {
	s.reply(peer, &protocol.ObjectResponse{RequestID: reqID, Type: protocol.ObjectError, ObjectID: objectID, Error: text})
}

// rateLimitedLog logs refused and malformed requests at most once per
// second, counting the ones it suppressed in between.
type rateLimitedLog struct {
	log        zerolog.Logger
	now        func() time.Time
	last       time.Time
	suppressed int
}

func (r *rateLimitedLog) report(peer []byte, op string, err error) {
	t := r.now()
	if !r.last.IsZero() && t.Sub(r.last) < time.Second {
		r.suppressed++
		return
	}
	if len(peer) > 64 {
		peer = peer[:64]
	}
	ev := r.log.Warn().Str("peer", fmt.Sprintf("%q", peer)).Err(err)
	if op != "" {
		ev = ev.Str("op", op)
	}
	if r.suppressed > 0 {
		ev = ev.Int("suppressed", r.suppressed)
	}
	ev.Msg("request refused")
	r.last = t
	r.suppressed = 0
}
