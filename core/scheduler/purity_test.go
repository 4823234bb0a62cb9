package scheduler

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPure keeps the package free of sockets: it must not depend on the
// transport or storage packages or on zmq (design.md §3). (net itself
// comes in through zerolog and is not used.)
func TestPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/opengris/scaler/core/scheduler").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "zmq") || strings.HasSuffix(dep, "/transport") || strings.HasSuffix(dep, "/storage") {
			t.Errorf("core/scheduler depends on %s", dep)
		}
	}
}
