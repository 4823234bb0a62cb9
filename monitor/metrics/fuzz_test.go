package metrics

import (
	"net/http/httptest"
	"testing"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/monitor/feed"
)

// FuzzCollect renders whatever status a hostile scheduler could publish:
// the scrape never panics and always answers 200.
func FuzzCollect(f *testing.F) {
	f.Add(protocol.MustEncode(sampleState().Status))
	f.Add(protocol.MustEncode(&protocol.StateScheduler{Workers: []protocol.WorkerStatus{{WorkerID: []byte{0xff}}, {WorkerID: []byte{0xff}}}}))
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := protocol.Decode(frame)
		if err != nil {
			return
		}
		st, ok := m.(*protocol.StateScheduler)
		if !ok {
			return
		}
		rec := httptest.NewRecorder()
		handler(fixed(feed.State{Status: st, Updated: t0}), now).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	})
}
