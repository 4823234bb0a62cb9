// Package server runs the scheduler role: it binds the ROUTER socket that
// clients and workers connect to and the monitor PUB socket, runs the object
// storage server in-process unless one is configured, and feeds the pure
// scheduler (core/scheduler) from one goroutine.
package server

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/core/scheduler"
	"github.com/opengris/scaler/storage"
	"github.com/opengris/scaler/transport"
)

const (
	tickInterval   = 100 * time.Millisecond
	statusInterval = time.Second

	// routerHWM is the ROUTER's high-water mark per peer in each direction,
	// in messages (a message is at most one Batch of protocol.MaxBatchBytes
	// or one large message). At the receive mark libzmq stops reading that
	// peer's connection (TCP pushes back on it); at the send mark it refuses
	// the message (ROUTER_MANDATORY) and the transport keeps it in the peer's
	// backlog. Measured with bench/bench_client.py: no loss of throughput
	// against unlimited queues (docs/scheduler.md).
	routerHWM = 32
	// peerBacklogBytes bounds what the transport keeps for a peer whose
	// queue is at routerHWM. A peer past it has stopped reading and is
	// dropped (stalledPeer).
	peerBacklogBytes = 8 << 20
	// monitorHWM is the monitor's send mark per subscriber, in messages
	// (status snapshots and task/worker state changes). A message refused at
	// the mark (XPUB_NODROP lets us see it) is counted, logged once a second
	// and sent on to the subscribers that have room (see publish).
	monitorHWM = 10000
	// monitorMaxMsgSize: subscribers send only (un)subscriptions to topics.
	monitorMaxMsgSize = 4 << 10
)

// Server is a bound scheduler. Create it with New, then call Run once.
type Server struct {
	cfg *config.Scheduler
	log zerolog.Logger

	// The loop (Run) owns both sockets and waits for them in poller; other
	// goroutines (the context, the in-process storage, webhook calls) wake
	// it through waker.
	router  *transport.Socket
	monitor *transport.Socket // XPUB: its subscriptions say whether anyone listens
	// topics holds the monitor topics somebody subscribes to; while it is
	// empty nothing is encoded for the monitor (a state message per task
	// change costs the loop a few microseconds each).
	topics  map[string]struct{}
	poller  *transport.Poller
	waker   *transport.Waker
	oss     *storage.Server // nil when an external one is configured
	ossCli  *storage.Client
	ossAddr string

	core *scheduler.Scheduler
	proc procSampler

	// Adapter webhook (nil without --adapter-webhook-url). Calls run in
	// their own goroutines and answer on scaled; the loop applies them.
	hook    *webhook
	scaled  chan scheduler.ScaleResponse
	hookCtx context.Context
	hookWG  sync.WaitGroup

	received, sent [256]uint64
	recvOrder      []protocol.Kind
	sentOrder      []protocol.Kind
	malformed      uint64
	lastMalformed  uint64
	// Messages to clients (or unknown peers) that the ROUTER could not
	// deliver (transport.Socket.TakeUnreachable), logged once a tick.
	undelivered     uint64
	lastUndelivered uint64
	malformedPeer   string // the last peer that sent one
	// Object deletions and duplications the storage client refused at
	// once (storageCalled), logged once a second.
	storageRefused, lastStorageRefused uint64
	storageRefusedErr                  error

	// Messages to clients and workers are queued per peer while the loop
	// handles one batch of input and flushed at the end of the iteration,
	// several to the same peer as one Batch (docs/protocol.md §7.6).
	outPeers  map[string]int // peer -> index in outQueues
	outQueues []outQueue
	// lastSent and lastFrame are the message the core sent last and its
	// encoding: the core hands the same message to many peers (object
	// deletions to every worker), which is encoded once. The core never
	// changes a message it sent, and queued frames are never written to.
	// Cleared at each flush.
	lastSent  protocol.Message
	lastFrame []byte

	// monitorDropped counts monitor messages refused at monitorHWM since
	// start, monitorSent those published (with a subscriber); both go out
	// in StateScheduler.
	monitorDropped, lastMonitorDropped uint64
	monitorSent                        uint64

	mem memRelease

	hosted hosting // workers whose messages come and go over another connection (relay.go)

	runOnce sync.Once
}

// New binds every socket: the ROUTER at cfg.SchedulerAddress, the object
// storage server at port+1 (unless cfg.ObjectStorageAddress is set) and the
// monitor PUB at port+2 (unless cfg.MonitorAddress is set). With port 0 the
// storage server and the monitor each get their own free port.
func New(cfg *config.Scheduler, log zerolog.Logger) (s *Server, err error) {
	scheme, host, port, err := transport.ParseAddress(cfg.SchedulerAddress)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if scheme != "tcp" {
		return nil, fmt.Errorf("scheduler: address %q must be tcp://host:port", cfg.SchedulerAddress)
	}
	derive := func(explicit string, offset int) (string, error) {
		if explicit != "" {
			return explicit, nil
		}
		if port == 0 {
			return "tcp://" + joinHost(host) + ":0", nil
		}
		return transport.WithPortOffset(cfg.SchedulerAddress, offset)
	}
	srv := &Server{cfg: cfg, log: log, topics: map[string]struct{}{}}
	s = srv
	defer func() {
		if err != nil {
			srv.closeAll() // s itself is nil on the error returns
		}
	}()
	maxMsg, err := config.ParseSize(cfg.MaxMessageSize)
	if err != nil {
		return nil, fmt.Errorf("scheduler: max_message_size: %w", err)
	}
	// RouterMandatory: nothing to a peer is dropped silently (see
	// deliverLosses); a peer at routerHWM gets a backlog of at most
	// peerBacklogBytes. WatchClosed: a peer whose connection closes is
	// noticed within milliseconds, not at its heartbeat timeout.
	routerOpt := transport.Options{RouterMandatory: true, WatchClosed: true, SendHWM: routerHWM, RecvHWM: routerHWM,
		MaxMsgSize: maxMsg, MaxPeerBacklogBytes: peerBacklogBytes}
	if s.router, err = transport.Open(transport.Router, cfg.SchedulerAddress, true, routerOpt); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if cfg.LocalAddress != "" {
		if err = s.router.BindAlso(cfg.LocalAddress); err != nil {
			return nil, fmt.Errorf("scheduler: local address: %w", err)
		}
	}
	if s.poller, err = transport.NewPoller(); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if s.waker, err = transport.NewWaker(); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	for _, fd := range []int{s.router.Fd(), s.waker.Fd(), s.router.ClosedFd()} {
		if err = s.poller.Add(fd, false); err != nil {
			return nil, fmt.Errorf("scheduler: %w", err)
		}
	}
	if cfg.ObjectStorageAddress != "" {
		s.ossAddr = cfg.ObjectStorageAddress
	} else {
		addr, err := derive("", 1)
		if err != nil {
			return nil, fmt.Errorf("scheduler: object storage address: %w", err)
		}
		ocfg := storage.Config{Address: addr, WaitTimeout: time.Duration(cfg.ObjectWaitSeconds) * time.Second}
		if s.oss, err = storage.NewServer(ocfg, log.With().Str("component", "object_storage").Logger()); err != nil {
			return nil, fmt.Errorf("scheduler: in-process object storage: %w", err)
		}
		s.ossAddr = s.oss.Addr()
	}
	monAddr, err := derive(cfg.MonitorAddress, 2)
	if err != nil {
		return nil, fmt.Errorf("scheduler: monitor address: %w", err)
	}
	monOpt := transport.Options{SendHWM: monitorHWM, RecvHWM: monitorHWM, MaxMsgSize: monitorMaxMsgSize, XPubNoDrop: true}
	if s.monitor, err = transport.Open(transport.XPub, monAddr, true, monOpt); err != nil {
		return nil, fmt.Errorf("scheduler: monitor: %w", err)
	}
	if err = s.poller.Add(s.monitor.Fd(), false); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if s.ossCli, err = storage.Dial(dialable(s.ossAddr)); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	announce, err := announced(s.ossAddr)
	if err != nil {
		return nil, fmt.Errorf("scheduler: object storage address: %w", err)
	}
	ccfg, err := scheduler.FromConfig(cfg, announce)
	if err != nil {
		return nil, err
	}
	if cfg.AdapterWebhookURL != "" {
		s.hook = newWebhook(cfg.AdapterWebhookURL, time.Duration(cfg.AdapterWebhookTimeout)*time.Second)
	}
	s.scaled = make(chan scheduler.ScaleResponse, 1)
	s.core = scheduler.New(ccfg, outbox{s}, log, time.Now())
	s.hosted = newHosting(func(id string) bool { return s.core.Knows([]byte(id)) },
		func(host string, n int) { s.router.SetPeerBacklogBytes([]byte(host), n) })
	return s, nil
}

func joinHost(h string) string {
	for i := 0; i < len(h); i++ {
		if h[i] == ':' {
			return "[" + h + "]"
		}
	}
	return h
}

// dialable turns a bound wildcard address into one we can connect to.
func dialable(addr string) string {
	_, host, port, err := transport.ParseAddress(addr)
	if err != nil {
		return addr
	}
	if host == "*" || host == "0.0.0.0" {
		return "tcp://127.0.0.1:" + strconv.Itoa(port)
	}
	if host == "::" {
		return "tcp://[::1]:" + strconv.Itoa(port)
	}
	return addr
}

// announced is the object storage address sent in heartbeat echoes. A
// wildcard host is sent as is; peers then use the host they reached the
// scheduler at (docs/scheduler.md).
func announced(addr string) (protocol.Address, error) {
	_, host, port, err := transport.ParseAddress(addr)
	if err != nil {
		return protocol.Address{}, err
	}
	if port <= 0 || port > 65535 {
		return protocol.Address{}, fmt.Errorf("%q has no usable port", addr)
	}
	return protocol.Address{Host: host, Port: uint16(port)}, nil
}

// ListenAlso accepts clients and workers at addr too, as LocalAddress does;
// the combo gives its in-process workers an inproc:// endpoint this way
// (inproc is for this process only, so it is no configuration option).
// Call it before Run.
func (s *Server) ListenAlso(addr string) error {
	if err := s.router.BindAlso(addr); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	return nil
}

// Addr is the bound ROUTER address (with the real port).
func (s *Server) Addr() string { return s.router.Addr() }

// StorageAddr is the object storage address (in-process or configured).
func (s *Server) StorageAddr() string { return s.ossAddr }

// MonitorAddr is the bound monitor PUB address.
func (s *Server) MonitorAddr() string { return s.monitor.Addr() }

// Run serves until ctx is done or a client's shutdown is accepted; both
// return nil. It closes every socket before returning.
func (s *Server) Run(ctx context.Context) error {
	first := false
	s.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("scheduler: Run called twice")
	}
	defer s.closeAll()
	// The loop blocks only in epoll_wait and zmq calls: on its own thread
	// it does not move between threads after each of them.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	hookCtx, stopHooks := context.WithCancel(ctx)
	s.hookCtx = hookCtx
	defer func() {
		stopHooks()
		s.hookWG.Wait()
		if s.hook != nil {
			s.hook.close()
		}
	}()

	// Outside events reach the loop through channels, each send followed
	// by a wake-up.
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		select {
		case <-ctx.Done():
			s.waker.Wake()
		case <-stopWatch:
		}
	}()
	var ossDone chan error
	if s.oss != nil {
		ossCtx, cancel := context.WithCancel(context.Background())
		ossDone = make(chan error, 1)
		go func() {
			ossDone <- s.oss.Run(ossCtx)
			s.waker.Wake()
		}()
		defer func() {
			cancel()
			<-ossDone
		}()
	}
	s.log.Info().Str("object_storage", s.ossAddr).Str("monitor", s.MonitorAddr()).
		Str("allocate_policy", s.cfg.AllocatePolicy).Bool("protected", s.cfg.Protected).
		Str("adapter_webhook_url", s.cfg.AdapterWebhookURL).Str("local_address", s.cfg.LocalAddress).
		Hex("instance", s.core.InstanceID()).Msgf("listening on %s", s.Addr())

	nextTick := time.Now().Add(tickInterval)
	nextStatus := time.Now().Add(statusInterval)
	for {
		if ctx.Err() != nil {
			s.log.Info().Msg("stopping")
			return nil
		}
		select {
		case err := <-ossDone:
			ossDone = nil
			if err != nil {
				return fmt.Errorf("scheduler: in-process object storage stopped: %w", err)
			}
		case r := <-s.scaled:
			s.core.OnScaleResponse(r, time.Now())
		default:
		}
		// Closes are taken before the messages are read and applied after,
		// so that what a peer sent just before its connection closed (a
		// worker's last results) is handled first.
		closed, err := s.router.TakeClosed()
		if err != nil {
			return fmt.Errorf("scheduler: router socket failed: %w", err)
		}
		// The router's descriptor is only a hint (transport.Socket): read
		// everything that is there, answer it, then ask whether to sleep.
		for i := 0; i < 4096; i++ {
			frames, err := s.router.TryRecv()
			if err != nil {
				return fmt.Errorf("scheduler: router socket failed: %w", err)
			}
			if frames == nil {
				break
			}
			s.handle(frames)
		}
		for _, id := range closed {
			if s.hosted.claimed(id) {
				// A direct connection under a hosted worker's id: never
				// that worker's (handleOne dropped what it sent).
				continue
			}
			s.hostClosed(id, time.Now())
			s.core.PeerClosed(id, time.Now())
		}
		now := time.Now()
		if !now.Before(nextTick) {
			nextTick = now.Add(tickInterval)
			// Sends on the monitor may consume its descriptor's signal:
			// subscriptions are also read once a tick.
			s.readSubscriptions()
			s.core.Tick(now)
			s.hosted.nextTick()
			if s.mem.due(s.core.NumTasks() == 0, now) {
				s.releaseMemory()
			}
			if !now.Before(nextStatus) {
				nextStatus = now.Add(statusInterval)
				s.publishStatus(now)
				// Once a second at most, like the core's counted drops: a
				// peer sending garbage must not flood the log.
				if n := s.malformed - s.lastMalformed; n > 0 {
					s.lastMalformed = s.malformed
					s.log.Warn().Uint64("count", n).Str("example_peer", s.malformedPeer).Msg("dropped malformed messages")
				}
				s.reportRefusals()
				if n := s.storageRefused - s.lastStorageRefused; n > 0 {
					s.lastStorageRefused = s.storageRefused
					s.log.Warn().Uint64("count", n).Err(s.storageRefusedErr).Msg("object deletions or duplications not sent to object storage")
				}
				if n := s.monitorDropped - s.lastMonitorDropped; n > 0 {
					s.lastMonitorDropped = s.monitorDropped
					s.log.Warn().Uint64("count", n).Uint64("total", s.monitorDropped).
						Msg("a monitor subscriber is not reading: monitor messages dropped for it")
				}
			}
			if n := s.undelivered - s.lastUndelivered; n > 0 {
				s.lastUndelivered = s.undelivered
				s.log.Warn().Uint64("count", n).Msg("messages to clients (or unknown peers) that are not connected dropped")
			}

		}
		s.flush()
		s.deliverLosses()
		if s.core.ShutdownAccepted() {
			s.log.Info().Msg("shutdown accepted; exiting")
			return nil
		}
		wait, err := s.router.PollWait(time.Until(nextTick), len(s.scaled) > 0 || len(s.outQueues) > 0)
		if err != nil {
			return fmt.Errorf("scheduler: router socket failed: %w", err)
		}
		ready, err := s.poller.Wait(wait)
		if err != nil {
			return fmt.Errorf("scheduler: %w", err)
		}
		for _, r := range ready {
			switch r.Fd {
			case s.waker.Fd():
				s.waker.Drain()
			case s.monitor.Fd():
				s.readSubscriptions()
			}
		}
	}
}

// handle decodes one ROUTER message ([identity, payload]) and hands it to
// the core. Anything else is counted and dropped.
func (s *Server) handle(frames [][]byte) {
	if len(frames) != 2 || len(frames[0]) == 0 {
		s.malformed++
		if len(frames) > 0 {
			s.malformedPeer = string(frames[0])
		}
		s.log.Debug().Int("frames", len(frames)).Msg("message with wrong frame count dropped")
		return
	}
	m, err := protocol.Decode(frames[1])
	if err != nil {
		s.dropMalformed(frames[0], err, "undecodable message dropped")
		return
	}
	s.count(m.Kind())
	b, ok := m.(*protocol.Batch)
	if !ok {
		s.handleOne(frames[0], m)
		return
	}
	// The core never sees a Batch: each element is handled as if it had
	// arrived alone, in order; a bad element is dropped on its own.
	b.Each(func(_ []byte, m protocol.Message, err error) {
		if err != nil {
			s.dropMalformed(frames[0], err, "undecodable message in a Batch dropped")
			return
		}
		s.count(m.Kind())
		s.handleOne(frames[0], m)
	})
}

// handleOne hands one message from peer to the core, or unwraps it when it
// is a Relay; a direct message from an id that a host has claimed is not
// that peer's and is dropped.
func (s *Server) handleOne(peer []byte, m protocol.Message) {
	if r, ok := m.(*protocol.Relay); ok {
		s.onRelay(peer, r)
		return
	}
	if s.hosted.claimed(peer) {
		s.hosted.refuse("a direct message from a worker id that a connection hosts")
		return
	}
	s.core.Handle(peer, m, time.Now())
}

// dropMalformed counts a message (or Batch element) from peer that does not
// decode; the count and the last such peer go into the periodic report.
func (s *Server) dropMalformed(peer []byte, err error, what string) {
	s.malformed++
	s.malformedPeer = string(peer)
	s.log.Debug().Err(err).Str("from", string(peer)).Msg(what)
}

func (s *Server) count(k protocol.Kind) {
	if s.received[k] == 0 {
		s.recvOrder = append(s.recvOrder, k)
	}
	s.received[k]++
}

type outQueue struct {
	to     []byte
	frames [][]byte
}

// queue adds frame to the messages going to peer to at the next flush.
func (s *Server) queue(to []byte, frame []byte) {
	if s.outPeers == nil {
		s.outPeers = make(map[string]int)
	}
	i, ok := s.outPeers[string(to)]
	if !ok {
		// to is kept as given, as router.Send did before queueing existed:
		// the transport may still hold it after the flush, so it is never
		// reused here.
		i = len(s.outQueues)
		if i < cap(s.outQueues) {
			s.outQueues = s.outQueues[:i+1]
			s.outQueues[i].to = to
		} else {
			s.outQueues = append(s.outQueues, outQueue{to: to})
		}
		s.outPeers[string(to)] = i
	}
	s.outQueues[i].frames = append(s.outQueues[i].frames, frame)
}

// flush sends everything queued, in order per peer: a lone message as it
// is, several as Batch messages. A peer at routerHWM gets its messages kept
// in the router's backlog (transport RouterMandatory); see deliverLosses.
func (s *Server) flush() {
	if len(s.outQueues) == 0 {
		return
	}
	s.wrapHosted()
	for i := range s.outQueues {
		q := &s.outQueues[i]
		for _, f := range protocol.Coalesce(q.frames) {
			if protocol.Kind(f[0]) == protocol.KindBatch {
				if k := protocol.KindBatch; s.sent[k] == 0 {
					s.sentOrder = append(s.sentOrder, k)
				}
				s.sent[protocol.KindBatch]++
			}
			_ = s.router.Send(q.to, f)
		}
		clear(q.frames)
		q.frames = q.frames[:0]
		delete(s.outPeers, string(q.to))
		q.to = nil
	}
	// Deleted one by one above: clear would visit every slot of a map
	// grown to the most peers ever sent to in one iteration (a fleet's
	// thousand workers), at every iteration.
	s.outQueues = s.outQueues[:0]
	s.lastSent, s.lastFrame = nil, nil
}

// releaseMemory gives the heap's and the C heap's free pages back to the
// system (see memRelease); it costs one GC of the (small) live heap.
func (s *Server) releaseMemory() {
	start := time.Now()
	before := currentRSS()
	debug.FreeOSMemory()
	transport.TrimMemory()
	after := currentRSS()
	// The live heap after FreeOSMemory's collection: what the scheduler
	// still holds once idle (the scale benchmarks read it from this line).
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	var heapLive uint64
	if live[0].Value.Kind() == metrics.KindUint64 {
		heapLive = live[0].Value.Uint64()
	}
	s.log.Debug().Uint64("heap_live", heapLive).Uint64("rss_before", before).Uint64("rss_after", after).Dur("took", time.Since(start)).
		Msg("idle: free memory returned to the system")
}

// deliverLosses tells the core about the peers the ROUTER could not
// deliver to: a worker is removed (its tasks placed again, which queues
// more messages, flushed here too); messages to anyone else are counted.
// A few rounds at most: whatever is still queued goes at the next
// iteration, which then does not sleep.
func (s *Server) deliverLosses() {
	for round := 0; round < 4; round++ {
		lost := s.router.TakeUnreachable()
		if len(lost) == 0 {
			return
		}
		now := time.Now()
		for _, u := range lost {
			if s.hostLost(u, now) {
				continue
			}
			if u.Full {
				s.stalledPeer(u, now)
				continue
			}
			if !s.core.PeerUnreachable(u.Peer, now) {
				s.undelivered += uint64(u.Messages)
				s.log.Debug().Str("peer", string(u.Peer)).Int("messages", u.Messages).Msg("messages to a peer that is not connected dropped")
			}
		}
		s.flush()
	}
}

// stalledPeer drops a peer that stopped reading: its backlog (past
// peerBacklogBytes) is gone, and the core removes it: a client's tasks are
// cancelled, a worker's placed again. One line per peer and drop; zmq still
// holds up to routerHWM messages for it until it reads or disconnects.
func (s *Server) stalledPeer(u transport.Unreachable, now time.Time) {
	was := s.core.DropPeer(u.Peer, now)
	if was == "" {
		was = "peer"
		s.undelivered += uint64(u.Messages)
	}
	s.log.Warn().Str(was, string(u.Peer)).Int("dropped_messages", u.Messages).
		Msgf("%s stopped reading: its queue stayed full (%d messages in zmq, a backlog past %d bytes); dropped", was, routerHWM, peerBacklogBytes)
}

func (s *Server) publishStatus(now time.Time) {
	if len(s.topics) == 0 {
		return // nobody listens: no snapshot either
	}
	st := s.core.Snapshot(now) // includes the worker groups
	st.Scheduler.CPU, st.Scheduler.RSS, st.RSSFree = s.proc.sample(now)
	st.MonitorDropped = s.monitorDropped
	st.MonitorSent = s.monitorSent + 1 // this status included
	st.InstanceID = s.core.InstanceID()
	for _, k := range s.recvOrder {
		st.Binder.Received = append(st.Binder.Received, protocol.MessageCount{Name: k.String(), Count: s.received[k]})
	}
	for _, k := range s.sentOrder {
		st.Binder.Sent = append(st.Binder.Sent, protocol.MessageCount{Name: k.String(), Count: s.sent[k]})
	}
	s.publish(st)
}

// readSubscriptions reads the monitor's subscribe and unsubscribe messages.
// XPUB passes on the first subscription to a topic and the last
// unsubscription (a subscriber that disconnects unsubscribes), so the set of
// topics is the set somebody listens to.
func (s *Server) readSubscriptions() {
	for i := 0; i < 1024; i++ {
		frames, err := s.monitor.TryRecv()
		if err != nil || frames == nil {
			return
		}
		if len(frames) != 1 || len(frames[0]) == 0 {
			continue
		}
		topic := string(frames[0][1:])
		switch frames[0][0] {
		case 1:
			s.topics[topic] = struct{}{}
		case 0:
			delete(s.topics, topic)
		}
	}
}

func (s *Server) publish(m protocol.Message) {
	if len(s.topics) == 0 {
		return // nobody listens
	}
	b, err := protocol.Encode(make([]byte, 0, 1+m.Msgsize()), m)
	if err != nil {
		s.log.Error().Err(err).Str("type", m.Kind().String()).Msg("encoding status failed")
		return
	}
	s.monitorSent++
	if err := s.monitor.TrySend(b); errors.Is(err, transport.ErrFull) {
		// A subscriber is at monitorHWM; counted, logged once a second.
		// libzmq's no-drop mode refuses the message for everybody, so
		// send it again to those with room: one monitor that stops
		// reading must not blind the others. libzmq then skips the full
		// subscriber until it reads again, so later messages it misses
		// are not refused and not counted here: MonitorDropped is a lower
		// bound, and a subscriber finds its own exact loss from
		// MonitorSent (docs/protocol.md).
		s.monitorDropped++
		if err := s.monitor.SendLossy(b); err != nil {
			s.log.Error().Err(err).Msg("monitor send failed")
		}
	}
}

// closeAll closes what start-up made; each Close takes a nil receiver, for
// what a failed start-up did not make.
func (s *Server) closeAll() {
	_ = s.router.Close()
	_ = s.monitor.Close()
	_ = s.poller.Close()
	_ = s.waker.Close()
	_ = s.ossCli.Close()
	_ = s.oss.Close()
}

// outbox is the scheduler's Outbox over the server's sockets. It runs on
// the Run goroutine only.
type outbox struct{ s *Server }

func (o outbox) Send(to []byte, m protocol.Message) {
	b := o.s.lastFrame
	if m != o.s.lastSent || b == nil {
		var err error
		if b, err = protocol.Encode(make([]byte, 0, 1+m.Msgsize()), m); err != nil {
			o.s.log.Error().Err(err).Str("type", m.Kind().String()).Msg("encoding failed")
			return
		}
		o.s.lastSent, o.s.lastFrame = m, b
	}
	k := m.Kind()
	if o.s.sent[k] == 0 {
		o.s.sentOrder = append(o.s.sentOrder, k)
	}
	o.s.sent[k]++
	o.s.queue(to, b)
}

// Publish publishes m; a worker's removal (the core's StateWorker
// Disconnected, its only report of it) also reserves the worker's id
// (hosting.left).
func (o outbox) Publish(m protocol.Message) {
	if w, ok := m.(*protocol.StateWorker); ok && w.State == protocol.WorkerDisconnected {
		o.s.hosted.left(string(w.WorkerID))
	}
	o.s.publish(m)
}

// Listening: a monitor subscribes to some topic (readSubscriptions).
func (o outbox) Listening() bool { return len(o.s.topics) > 0 }

func (o outbox) DeleteObject(id []byte) { o.s.storageCalled(o.s.ossCli.DeleteAsync(id)) }

func (o outbox) DuplicateObject(newID, srcID []byte) {
	o.s.storageCalled(o.s.ossCli.DuplicateAsync(newID, srcID))
}

// storageCalled counts a storage call the client refused at once (too many
// calls in flight, closed), reported once a second with the last error;
// the answers of the calls that went out are not awaited.
func (s *Server) storageCalled(ch <-chan storage.Result) {
	select {
	case r := <-ch:
		if r.Err != nil {
			s.storageRefused++
			s.storageRefusedErr = r.Err
		}
	default:
	}
}

// Scale calls the adapter webhook in a goroutine; the answer comes back to
// the loop through s.scaled. The core has at most one call outstanding.
func (o outbox) Scale(r scheduler.ScaleRequest) {
	s := o.s
	if s.hook == nil || s.hookCtx == nil {
		s.scaled <- scheduler.ScaleResponse{ID: r.ID, Err: "no adapter webhook configured"}
		return
	}
	ctx := s.hookCtx
	s.hookWG.Add(1)
	go func() {
		defer s.hookWG.Done()
		resp := s.hook.call(ctx, r)
		select {
		case s.scaled <- resp:
			s.waker.Wake()
		case <-ctx.Done():
		}
	}()
}

// Run is the scheduler role's entry point for commands: New, then Run.
func Run(ctx context.Context, cfg *config.Scheduler, log zerolog.Logger) error {
	s, err := New(cfg, log)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
