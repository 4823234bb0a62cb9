// Package web is scaler_ui: one page, served by the binary itself, that
// shows the scheduler's status feed live. The server does the aggregation
// (task stream, charts, counts) and pushes a JSON snapshot to every open
// page over server-sent events a few times a second, so the browser's
// work and the network traffic do not grow with the task rate.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/monitor/feed"
)

//go:embed assets
var assets embed.FS

// Source is where the server reads the feed; *feed.Monitor is one.
type Source interface {
	State() feed.State
}

// Options configures a Server. Zero values take the defaults below.
type Options struct {
	Source   Source
	Metrics  http.Handler  // served at /metrics when set
	Interval time.Duration // time between frames (default 500 ms)
	// MaxViewers bounds the open pages (SSE connections); more get 503.
	MaxViewers int
	// WriteTimeout drops a viewer whose frame could not be written in this
	// long (a stalled browser or network); its page reconnects by itself.
	WriteTimeout time.Duration
	Stream       streamConfig
	Log          zerolog.Logger
}

const (
	defaultInterval     = 500 * time.Millisecond
	defaultMaxViewers   = 32
	defaultWriteTimeout = 10 * time.Second
	historyWindow       = 5 * time.Minute
)

var defaultStream = streamConfig{Window: time.Minute, MaxBars: 3000, MergeGap: 100 * time.Millisecond}

// Server serves the page, its assets, the event stream and the metrics.
type Server struct {
	opt Options
	hub *hub
	mux *http.ServeMux

	mu      sync.Mutex // guards the aggregates, shared by Run and /api/snapshot
	stream  *stream
	history *history
}

// New builds a Server; Run must run for frames to flow.
func New(opt Options) *Server {
	if opt.Interval <= 0 {
		opt.Interval = defaultInterval
	}
	if opt.MaxViewers <= 0 {
		opt.MaxViewers = defaultMaxViewers
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = defaultWriteTimeout
	}
	if opt.Stream.Window <= 0 {
		opt.Stream = defaultStream
	}
	s := &Server{
		opt:     opt,
		hub:     newHub(opt.MaxViewers),
		mux:     http.NewServeMux(),
		stream:  newStream(opt.Stream),
		history: &history{window: historyWindow, every: 900 * time.Millisecond},
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(static)
	s.mux.Handle("GET /", noCache(files))
	s.mux.HandleFunc("GET /events", s.serveEvents)
	s.mux.HandleFunc("GET /api/snapshot", s.serveSnapshot)
	if opt.Metrics != nil {
		s.mux.Handle("GET /metrics", opt.Metrics)
	}
	return s
}

// noCache makes a browser fetch the page again after an upgrade of the
// binary instead of mixing old and new scripts.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP makes a Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Run aggregates the feed and publishes a frame every Interval until ctx
// is done. The aggregates advance even with no page open, so a page
// opened later shows the last minute at once.
func (s *Server) Run(ctx context.Context) {
	tick := time.NewTicker(s.opt.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			frame := s.step(now, s.hub.count() > 0)
			if frame != nil {
				s.hub.publish(frame)
			}
		}
	}
}

// step folds the current feed state into the aggregates and, when encode
// is set, returns the encoded snapshot.
func (s *Server) step(now time.Time, encode bool) []byte {
	st := s.opt.Source.State()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stream.observe(&st, now)
	s.history.observe(&st, now)
	if !encode {
		return nil
	}
	b, err := json.Marshal(buildSnapshot(&st, s.stream, s.history, now))
	if err != nil {
		s.opt.Log.Error().Err(err).Msg("cannot encode the snapshot")
		return nil
	}
	return b
}

// current builds a snapshot of the aggregates as they are, without
// advancing them (that is Run's job).
func (s *Server) current() Snapshot {
	st := s.opt.Source.State()
	s.mu.Lock()
	defer s.mu.Unlock()
	return buildSnapshot(&st, s.stream, s.history, time.Now())
}

// serveSnapshot answers one snapshot as JSON (for scripts and tests).
func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.current())
}

// serveEvents streams frames to one page until it goes away, a write
// stalls for WriteTimeout, or the server stops.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	v := s.hub.join()
	if v == nil {
		http.Error(w, "too many open pages; close one and reload", http.StatusServiceUnavailable)
		return
	}
	defer s.hub.leave(v)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not hold frames back
	w.WriteHeader(http.StatusOK)
	// retry: how long the browser waits before reconnecting after a drop.
	if _, err := w.Write([]byte("retry: 2000\n\n")); err != nil {
		return
	}
	// A first frame at once, so that a new page does not wait for the tick.
	if first, err := json.Marshal(s.current()); err == nil {
		if writeEvent(w, "snapshot", first) != nil {
			return
		}
	}
	if err := rc.Flush(); err != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case frame := <-v.frames:
			_ = rc.SetWriteDeadline(time.Now().Add(s.opt.WriteTimeout))
			err := writeEvent(w, "snapshot", frame)
			if err == nil {
				err = rc.Flush()
			}
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					s.opt.Log.Debug().Err(err).Str("remote", r.RemoteAddr).Msg("page dropped")
				}
				return
			}
		}
	}
}

// ListenAndServe serves on addr until ctx is done, with Run alongside.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve is ListenAndServe on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Run(ctx) }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		// Open event streams end with ctx (BaseContext), so Shutdown does
		// not wait on them.
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(sctx)
		scancel()
		<-errc
	}
	cancel()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
