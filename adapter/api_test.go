package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opengris/scaler/core/logging"
)

// fakeBackend answers by the group id asked for, so every branch shows.
type fakeBackend struct{ startErr error }

func (f *fakeBackend) StartGroup(context.Context) (Group, error) {
	if f.startErr != nil {
		return Group{}, f.startErr
	}
	return Group{ID: "native-1", WorkerIDs: []string{"1|Worker|a|b"}}, nil
}

func (f *fakeBackend) ShutdownGroup(id string) error {
	switch id {
	case "native-1":
		return nil
	case "broken":
		return errors.New("it broke")
	}
	return &UnknownGroupError{ID: id}
}

func serve(b Backend, method, path, body string) (int, string) {
	rec := httptest.NewRecorder()
	Handler(b, logging.ForTest("adapter", io.Discard)).ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

func TestHandler(t *testing.T) {
	ok := &fakeBackend{}
	for _, tc := range []struct {
		name         string
		b            Backend
		method, path string
		body         string
		code         int
		want         string
	}{
		{"no action", ok, "POST", "/", `{}`, 400, `{"error":"No action specified"}`},
		{"unknown action", ok, "POST", "/", `{"action":"fly"}`, 400, `{"error":"Unknown action"}`},
		{"action not a string", ok, "POST", "/", `{"action":[1]}`, 400, `{"error":"Unknown action"}`},
		{"start", ok, "POST", "/", `{"action":"start_worker_group"}`, 200,
			`{"status":"Worker group started","worker_group_id":"native-1","worker_ids":["1|Worker|a|b"]}`},
		{"start at the limit", &fakeBackend{startErr: &LimitError{Msg: "Maximum number of workers (4) reached."}}, "POST", "/",
			`{"action":"start_worker_group"}`, 429, `{"error":"Maximum number of workers (4) reached."}`},
		{"start fails", &fakeBackend{startErr: errors.New("exec: no such file")}, "POST", "/",
			`{"action":"start_worker_group"}`, 500, `{"error":"exec: no such file"}`},
		{"shutdown without id", ok, "POST", "/", `{"action":"shutdown_worker_group"}`, 400, `{"error":"No worker_group_id specified"}`},
		{"shutdown with a non-string id", ok, "POST", "/", `{"action":"shutdown_worker_group","worker_group_id":3}`, 400, `{"error":"No worker_group_id specified"}`},
		{"shutdown unknown", ok, "POST", "/", `{"action":"shutdown_worker_group","worker_group_id":"x"}`, 404, `{"error":"Worker group with ID x does not exist."}`},
		{"shutdown fails", ok, "POST", "/", `{"action":"shutdown_worker_group","worker_group_id":"broken"}`, 500, `{"error":"it broke"}`},
		{"shutdown", ok, "POST", "/", `{"action":"shutdown_worker_group","worker_group_id":"native-1"}`, 200, `{"status":"Worker group shutdown"}`},
		{"other path", ok, "POST", "/x", `{}`, 404, `{"error":"Not Found"}`},
		{"GET", ok, "GET", "/", ``, 405, `{"error":"Method Not Allowed"}`},
		{"not JSON", ok, "POST", "/", `{`, 400, `{"error":"request body is not a JSON object"}`},
		{"JSON null", ok, "POST", "/", `null`, 400, `{"error":"request body is not a JSON object"}`},
		{"too big", ok, "POST", "/", `{"action":"` + strings.Repeat("x", MaxBody) + `"}`, 413, `{"error":"request body larger than 65536 bytes"}`},
	} {
		code, body := serve(tc.b, tc.method, tc.path, tc.body)
		if code != tc.code || body != tc.want {
			t.Errorf("%s: %d %s, want %d %s", tc.name, code, body, tc.code, tc.want)
		}
	}
}

// Any body gets one of the API's statuses and a JSON object; nothing panics.
func FuzzHandler(f *testing.F) {
	for _, s := range []string{`{}`, `{"action":"start_worker_group"}`, `{"action":"shutdown_worker_group","worker_group_id":"x"}`, `[`, `null`, `{"action":null}`} {
		f.Add(s)
	}
	b := &fakeBackend{}
	f.Fuzz(func(t *testing.T, body string) {
		code, out := serve(b, "POST", "/", body)
		switch code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusInternalServerError, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q", code, body)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil || m == nil {
			t.Fatalf("answer %q is not a JSON object", out)
		}
	})
}
