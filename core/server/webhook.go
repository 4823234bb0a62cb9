package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/opengris/scaler/core/scheduler"
)

// defaultWebhookTimeout bounds one adapter webhook call when the
// configuration does not (starting a worker group may take a while; the
// scheduler loop never waits for it).
const defaultWebhookTimeout = 30 * time.Second

// webhook calls a worker adapter's webhook the way upstream's scaling
// controller does: POST url with a JSON body {"action": ...} and a JSON
// answer (reference §8), so an upstream-compatible adapter works unchanged.
type webhook struct {
	url     string
	client  *http.Client
	timeout time.Duration
}

func newWebhook(url string, timeout time.Duration) *webhook {
	if timeout <= 0 {
		timeout = defaultWebhookTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &webhook{url: url, client: &http.Client{Transport: tr}, timeout: timeout}
}

func (w *webhook) close() { w.client.CloseIdleConnections() }

// webhookRequest is the body POSTed to the adapter.
type webhookRequest struct {
	Action        string `json:"action"`
	WorkerGroupID string `json:"worker_group_id,omitempty"`
}

// webhookAnswer is the adapter's JSON answer; which fields are set depends
// on the action and the outcome.
type webhookAnswer struct {
	Status        string   `json:"status"`
	Error         string   `json:"error"`
	WorkerGroupID string   `json:"worker_group_id"`
	WorkerIDs     []string `json:"worker_ids"`
}

// maxAnswer bounds the answer body read.
const maxAnswer = 1 << 20

// call makes one webhook call; it always returns a response for req, with
// Err set when no usable answer came back.
func (w *webhook) call(ctx context.Context, req scheduler.ScaleRequest) scheduler.ScaleResponse {
	resp := scheduler.ScaleResponse{ID: req.ID}
	body := webhookRequest{Action: req.Action.String()}
	if req.Action == scheduler.ScaleShutdown {
		body.WorkerGroupID = req.GroupID
	}
	b, err := json.Marshal(body)
	if err != nil {
		resp.Err = err.Error()
		return resp
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(b))
	if err != nil {
		resp.Err = err.Error()
		return resp
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	res, err := w.client.Do(hr)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			resp.Err = fmt.Sprintf("no answer within %v", w.timeout)
		} else {
			resp.Err = err.Error()
		}
		return resp
	}
	defer res.Body.Close()
	resp.Status = res.StatusCode
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if err != nil {
		resp.Err = "reading the answer: " + err.Error()
		return resp
	}
	var ans webhookAnswer
	if jerr := json.Unmarshal(raw, &ans); jerr != nil {
		resp.Message = snippet(raw)
		// Only a successful start needs the body; elsewhere the status
		// code says enough.
		if req.Action == scheduler.ScaleStart && res.StatusCode/100 == 2 {
			resp.Err = "answer is not the expected JSON: " + jerr.Error()
		}
		return resp
	}
	resp.GroupID, resp.WorkerIDs = ans.WorkerGroupID, ans.WorkerIDs
	resp.Message = ans.Error
	if resp.Message == "" {
		resp.Message = ans.Status
	}
	return resp
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
