//go:build !race

package storage

// The scaler binary runs object storage with internal/malloctune's glibc
// settings (package commands links it), so the tests and benchmarks here do
// too: they measure and check what runs in production (BenchmarkVsLoopback:
// without them every 64 MiB receive page-faults a fresh mmap in, and the
// figure is about 2.5x worse). Not under the race detector, where the same
// tests ran several times slower with them (TestGetThenDeleteKeepsReplyIntact:
// 1.4 s without, over 10 s with).
import (
	"testing"

	"github.com/opengris/scaler/internal/mallocprobe"
	_ "github.com/opengris/scaler/internal/malloctune"
)

// TestRunsWithTheBinarysMalloc: the benchmarks here measure what runs in
// production only if a 64 MiB block (a large object's receive buffer) comes
// from the heap, as internal/malloctune arranges, not from a fresh mmap.
func TestRunsWithTheBinarysMalloc(t *testing.T) {
	if mallocprobe.TunablesSetMalloc() {
		t.Skip("GLIBC_TUNABLES sets malloc: malloctune stands aside")
	}
	mapped, err := mallocprobe.Mmaps(64 << 20)
	if err != nil || mapped {
		t.Fatalf("a 64 MiB malloc was mmap'd (%v): storage's tests run with glibc's defaults, not the binary's settings", err)
	}
}
