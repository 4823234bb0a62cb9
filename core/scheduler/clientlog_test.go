package scheduler

import (
	"bytes"
	"strings"
	"testing"

	"github.com/opengris/scaler/core/logging"
	"github.com/opengris/scaler/core/protocol"
)

// A nested task's client (ClientHeartbeat.nested) comes and goes with every
// nested task: its arrival and departure are logged at debug level, a
// top-level client's at info.
func TestNestedClientsLogAtDebug(t *testing.T) {
	h := newHarness(t, nil)
	var buf bytes.Buffer
	h.s.log = logging.ForTest("scheduler", &buf)
	h.handle("top", &protocol.ClientHeartbeat{})
	h.handle("inner", &protocol.ClientHeartbeat{Nested: true})
	h.handle("inner", &protocol.ClientDisconnect{Type: protocol.DisconnectClient})
	h.handle("top", &protocol.ClientDisconnect{Type: protocol.DisconnectClient})

	tests := []struct {
		client, event, level string
	}{
		{"top", "client connected", "[INFO]"},
		{"inner", "client connected", "[DEBG]"},
		{"inner", "client disconnected", "[DEBG]"},
		{"top", "client disconnected", "[INFO]"},
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for _, tc := range tests {
		found := false
		for _, line := range lines {
			if strings.Contains(line, tc.event) && strings.Contains(line, "client="+tc.client) {
				found = true
				if !strings.HasPrefix(line, tc.level) {
					t.Errorf("%s %s logged as %q, want level %s", tc.client, tc.event, line, tc.level)
				}
			}
		}
		if !found {
			t.Errorf("no %q line for client %s in:\n%s", tc.event, tc.client, buf.String())
		}
	}
}
