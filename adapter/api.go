// Package adapter is the HTTP API that every worker adapter serves to the
// scheduler's scaling controller (--adapter-webhook-url), the same API as
// upstream 1.12.5's adapters so that either side can be swapped:
//
//	POST / {"action": "start_worker_group"}
//	  200 {"status": "Worker group started", "worker_group_id": ID, "worker_ids": [...]}
//	  429 {"error": "..."}  the adapter's limit is reached
//	  500 {"error": "..."}  starting failed
//	POST / {"action": "shutdown_worker_group", "worker_group_id": ID}
//	  200 {"status": "Worker group shutdown"}
//	  400 {"error": "No worker_group_id specified"}
//	  404 {"error": "Worker group with ID <id> does not exist."}
//	  500 {"error": "..."}
//	POST / without "action": 400 {"error": "No action specified"}
//	POST / with another action: 400 {"error": "Unknown action"}
//	other paths: 404; other methods on /: 405
//
// Two differences from upstream, both where upstream fails: a body that is
// not a JSON object is a 400 (upstream's handler raised, a plain 500), and
// a body larger than MaxBody is a 413.
//
// The adapters themselves (adapter/native, ...) implement Backend.
package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"
)

// Backend starts and stops worker groups. Its methods are called from
// concurrent HTTP requests and must not block for long: ShutdownGroup
// starts stopping the group's workers and returns.
type Backend interface {
	StartGroup(ctx context.Context) (Group, error)
	ShutdownGroup(id string) error
}

// Group is a started worker group: its id and the ids its workers use
// with the scheduler (the scheduler matches them against its workers).
type Group struct {
	ID        string
	WorkerIDs []string
}

// LimitError refuses a start because a limit is reached: 429 with Msg.
type LimitError struct{ Msg string }

func (e *LimitError) Error() string { return e.Msg }

// UnknownGroupError: the group to shut down does not exist: 404.
type UnknownGroupError struct{ ID string }

func (e *UnknownGroupError) Error() string {
	return fmt.Sprintf("Worker group with ID %s does not exist.", e.ID)
}

// MaxBody bounds a request body; the API's requests are a few dozen bytes.
const MaxBody = 64 << 10

// Handler serves the API on "/" for b.
func Handler(b Backend, log zerolog.Logger) http.Handler {
	return &handler{b: b, log: log}
}

type handler struct {
	b   Backend
	log zerolog.Logger
}

type answer map[string]any

func reply(w http.ResponseWriter, status int, body answer) {
	raw, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		reply(w, http.StatusNotFound, answer{"error": "Not Found"})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, answer{"error": "Method Not Allowed"})
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reply(w, http.StatusRequestEntityTooLarge, answer{"error": fmt.Sprintf("request body larger than %d bytes", MaxBody)})
			return
		}
		reply(w, http.StatusBadRequest, answer{"error": "reading the request body: " + err.Error()})
		return
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(raw, &req); err != nil || req == nil {
		reply(w, http.StatusBadRequest, answer{"error": "request body is not a JSON object"})
		return
	}
	rawAction, ok := req["action"]
	if !ok {
		reply(w, http.StatusBadRequest, answer{"error": "No action specified"})
		return
	}
	var action string
	_ = json.Unmarshal(rawAction, &action) // not a string: an unknown action
	switch action {
	case "start_worker_group":
		h.start(w, r)
	case "shutdown_worker_group":
		rawID, ok := req["worker_group_id"]
		var id string
		if ok && json.Unmarshal(rawID, &id) != nil {
			ok = false
		}
		if !ok {
			reply(w, http.StatusBadRequest, answer{"error": "No worker_group_id specified"})
			return
		}
		h.shutdown(w, id)
	default:
		reply(w, http.StatusBadRequest, answer{"error": "Unknown action"})
	}
}

func (h *handler) start(w http.ResponseWriter, r *http.Request) {
	g, err := h.b.StartGroup(r.Context())
	var limit *LimitError
	switch {
	case errors.As(err, &limit):
		h.log.Warn().Str("remote", r.RemoteAddr).Msg("refused to start a worker group: " + limit.Msg)
		reply(w, http.StatusTooManyRequests, answer{"error": limit.Msg})
	case err != nil:
		h.log.Error().Err(err).Str("remote", r.RemoteAddr).Msg("could not start a worker group")
		reply(w, http.StatusInternalServerError, answer{"error": err.Error()})
	default:
		ids := g.WorkerIDs
		if ids == nil {
			ids = []string{}
		}
		reply(w, http.StatusOK, answer{"status": "Worker group started", "worker_group_id": g.ID, "worker_ids": ids})
	}
}

func (h *handler) shutdown(w http.ResponseWriter, id string) {
	err := h.b.ShutdownGroup(id)
	var unknown *UnknownGroupError
	switch {
	case errors.As(err, &unknown):
		h.log.Warn().Str("group", id).Msg("asked to shut down an unknown worker group")
		reply(w, http.StatusNotFound, answer{"error": unknown.Error()})
	case err != nil:
		h.log.Error().Err(err).Str("group", id).Msg("could not shut the worker group down")
		reply(w, http.StatusInternalServerError, answer{"error": err.Error()})
	default:
		reply(w, http.StatusOK, answer{"status": "Worker group shutdown"})
	}
}

// Serve serves h on host:port until ctx is done, then stops accepting and
// waits (bounded) for requests in progress. ready, when not nil, is called
// with the address listened on once the listener is open.
func Serve(ctx context.Context, host string, port int, h http.Handler, log zerolog.Logger, ready func(addr string)) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("adapter HTTP server: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // a start waits for a process to exec
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	log.Info().Str("address", "http://"+ln.Addr().String()+"/").Msg("worker adapter listening")
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("adapter HTTP server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}
