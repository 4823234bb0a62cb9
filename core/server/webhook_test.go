package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opengris/scaler/core/scheduler"
)

// TestWebhookCall pins the wire shapes of upstream's native adapter
// webhook (reference §8) and how every kind of answer is reported.
func TestWebhookCall(t *testing.T) {
	start := scheduler.ScaleRequest{ID: 7, Action: scheduler.ScaleStart}
	stop := scheduler.ScaleRequest{ID: 8, Action: scheduler.ScaleShutdown, GroupID: "native-ab"}
	cases := []struct {
		name     string
		req      scheduler.ScaleRequest
		status   int
		ctype    string
		answer   string
		wantBody string
		want     scheduler.ScaleResponse
		wantErr  string // substring of Err; "" = no error
	}{
		{name: "start", req: start, status: 200, answer: `{"status":"Worker group started","worker_group_id":"native-1f","worker_ids":["1|Worker|a|00"]}`,
			wantBody: `{"action":"start_worker_group"}`,
			want:     scheduler.ScaleResponse{ID: 7, Status: 200, GroupID: "native-1f", WorkerIDs: []string{"1|Worker|a|00"}, Message: "Worker group started"}},
		{name: "start refused 429", req: start, status: 429, answer: `{"error":"Maximum number of workers reached"}`,
			wantBody: `{"action":"start_worker_group"}`,
			want:     scheduler.ScaleResponse{ID: 7, Status: 429, Message: "Maximum number of workers reached"}},
		{name: "start 500 plain text", req: start, status: 500, ctype: "text/plain", answer: "Internal Server Error",
			wantBody: `{"action":"start_worker_group"}`,
			want:     scheduler.ScaleResponse{ID: 7, Status: 500, Message: "Internal Server Error"}},
		{name: "start 200 not JSON", req: start, status: 200, ctype: "text/html", answer: "<html>",
			wantBody: `{"action":"start_worker_group"}`, wantErr: "not the expected JSON"},
		{name: "start 200 wrong types", req: start, status: 200, answer: `{"worker_group_id":3}`,
			wantBody: `{"action":"start_worker_group"}`, wantErr: "not the expected JSON"},
		{name: "shutdown", req: stop, status: 200, answer: `{"status":"Worker group shutdown"}`,
			wantBody: `{"action":"shutdown_worker_group","worker_group_id":"native-ab"}`,
			want:     scheduler.ScaleResponse{ID: 8, Status: 200, Message: "Worker group shutdown"}},
		{name: "shutdown unknown group", req: stop, status: 404, answer: `{"error":"Worker group not found"}`,
			wantBody: `{"action":"shutdown_worker_group","worker_group_id":"native-ab"}`,
			want:     scheduler.ScaleResponse{ID: 8, Status: 404, Message: "Worker group not found"}},
		{name: "shutdown 200 empty body", req: stop, status: 200, ctype: "text/plain", answer: "",
			wantBody: `{"action":"shutdown_worker_group","worker_group_id":"native-ab"}`,
			want:     scheduler.ScaleResponse{ID: 8, Status: 200}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var gotMethod, gotType, gotBody string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				gotMethod, gotType, gotBody = r.Method, r.Header.Get("Content-Type"), string(b)
				ct := tc.ctype
				if ct == "" {
					ct = "application/json"
				}
				w.Header().Set("Content-Type", ct)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.answer)
			}))
			defer srv.Close()
			got := newWebhook(srv.URL, 0).call(context.Background(), tc.req)
			if gotMethod != http.MethodPost || gotType != "application/json" || gotBody != tc.wantBody {
				t.Fatalf("request %s %q %s, want POST application/json %s", gotMethod, gotType, gotBody, tc.wantBody)
			}
			if tc.wantErr != "" {
				if !strings.Contains(got.Err, tc.wantErr) || got.ID != tc.req.ID {
					t.Fatalf("got %+v, want error containing %q", got, tc.wantErr)
				}
				return
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tc.want)
			if string(gj) != string(wj) {
				t.Fatalf("got  %s\nwant %s", gj, wj)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + l.Addr().String() + "/"
		l.Close()
		got := newWebhook(url, 0).call(context.Background(), start)
		if got.Err == "" || got.Status != 0 || got.ID != 7 {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		h := newWebhook(srv.URL, 0)
		h.timeout = 100 * time.Millisecond
		began := time.Now()
		got := h.call(context.Background(), start)
		if !strings.Contains(got.Err, "no answer within") || time.Since(began) > 5*time.Second {
			t.Fatalf("got %+v after %v", got, time.Since(began))
		}
	})
}
