//go:build cgo

package malloctune

import (
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"

	"github.com/opengris/scaler/internal/mallocprobe"
)

// TestEveryThreadUsesTheHeap: with the constructor linked, a 64 MiB block
// comes from the heap on every thread, also on threads the Go runtime
// started before any Go code ran.
func TestEveryThreadUsesTheHeap(t *testing.T) {
	if mallocprobe.TunablesSetMalloc() {
		t.Skip("GLIBC_TUNABLES sets malloc: the constructor stands aside")
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // keep each probe on its thread; the thread dies with the goroutine
			mapped, err := mallocprobe.Mmaps(64 << 20)
			if err != nil || mapped {
				errs <- "a 64 MiB malloc was mmap'd (or failed) on a thread"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// TestTunablesWin: a GLIBC_TUNABLES malloc setting leaves glibc to it (here
// one that mmaps 64 MiB blocks), checked in a fresh process.
func TestTunablesWin(t *testing.T) {
	if os.Getenv("MALLOCTUNE_CHILD") != "" {
		mapped, err := mallocprobe.Mmaps(64 << 20)
		if err != nil || !mapped {
			t.Fatalf("with GLIBC_TUNABLES set, a 64 MiB malloc was not mmap'd (%v)", err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTunablesWin$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MALLOCTUNE_CHILD=1", "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
