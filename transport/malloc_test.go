package transport

import (
	"testing"

	"github.com/opengris/scaler/internal/mallocprobe"
)

// TestLinkingLeavesMallocAlone: transport does not change glibc's allocator
// (internal/malloctune does, for the scaler binary only), so in this test
// process a 64 MiB block is mmap'd as glibc does by default.
func TestLinkingLeavesMallocAlone(t *testing.T) {
	if mallocprobe.TunablesSetMalloc() {
		t.Skip("GLIBC_TUNABLES sets malloc")
	}
	mapped, err := mallocprobe.Mmaps(64 << 20)
	if err != nil || !mapped {
		t.Fatalf("a 64 MiB malloc in a process that links transport was not mmap'd (%v): is glibc tuned on import again?", err)
	}
}
