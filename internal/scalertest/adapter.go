package scalertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// AdapterRequest is one webhook call an Adapter received.
type AdapterRequest struct {
	Method      string
	ContentType string
	Body        string // raw JSON
	Action      string
	GroupID     string
}

// Adapter is a fake worker adapter with the webhook of upstream's native
// adapter (POST / with {"action": ...}): start_worker_group starts one Go
// test worker and answers {"status", "worker_group_id", "worker_ids"};
// shutdown_worker_group stops it, or answers 404 for an unknown group. It
// listens on 127.0.0.1 and records every request.
type Adapter struct {
	URL string

	srv  *httptest.Server
	opt  WorkerOptions
	mu   sync.Mutex
	addr string
	reqs []AdapterRequest
	grps map[string]*Worker
	next int
	// Hook, when set, runs at the start of every request (e.g. to stall).
	Hook func(action string)
}

// NewAdapter starts an adapter whose workers use opt. Call SetScheduler
// before the scheduler asks for workers. Everything stops with the test.
func NewAdapter(t testing.TB, opt WorkerOptions) *Adapter {
	a := &Adapter{opt: opt, grps: map[string]*Worker{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	a.URL = a.srv.URL + "/"
	t.Cleanup(func() {
		a.srv.Close()
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, w := range a.grps {
			w.Kill()
		}
	})
	return a
}

// SetScheduler sets the address started workers connect to.
func (a *Adapter) SetScheduler(addr string) {
	a.mu.Lock()
	a.addr = addr
	a.mu.Unlock()
}

// Requests returns the requests received so far.
func (a *Adapter) Requests() []AdapterRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AdapterRequest(nil), a.reqs...)
}

// Group returns the worker of a running group, or nil.
func (a *Adapter) Group(id string) *Worker {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.grps[id]
}

func (a *Adapter) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body struct {
		Action        string `json:"action"`
		WorkerGroupID string `json:"worker_group_id"`
	}
	_ = json.Unmarshal(raw, &body)
	a.mu.Lock()
	a.reqs = append(a.reqs, AdapterRequest{Method: r.Method, ContentType: r.Header.Get("Content-Type"), Body: string(raw),
		Action: body.Action, GroupID: body.WorkerGroupID})
	hook := a.Hook
	a.mu.Unlock()
	if hook != nil {
		hook(body.Action)
	}
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch body.Action {
	case "start_worker_group":
		a.mu.Lock()
		a.next++
		id := fmt.Sprintf("native-%d", a.next)
		addr := a.addr
		opt := a.opt
		a.mu.Unlock()
		opt.Name = id
		wk, err := StartWorker(addr, opt)
		if err != nil {
			answer(http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		a.mu.Lock()
		a.grps[id] = wk
		a.mu.Unlock()
		answer(http.StatusOK, map[string]any{"status": "Worker group started", "worker_group_id": id,
			"worker_ids": []string{string(wk.ID)}})
	case "shutdown_worker_group":
		a.mu.Lock()
		wk := a.grps[body.WorkerGroupID]
		delete(a.grps, body.WorkerGroupID)
		a.mu.Unlock()
		if wk == nil {
			answer(http.StatusNotFound, map[string]string{"error": "Worker group not found"})
			return
		}
		wk.Stop()
		answer(http.StatusOK, map[string]string{"status": "Worker group shutdown"})
	default:
		answer(http.StatusBadRequest, map[string]string{"error": "Unknown action"})
	}
}
