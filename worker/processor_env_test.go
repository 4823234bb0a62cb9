package worker

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/opengris/scaler/internal/mallocprobe"
	"github.com/opengris/scaler/internal/scalertest/programs"
)

func TestProcessorEnv(t *testing.T) {
	ours := "GLIBC_TUNABLES=" + processorMallocTunables
	for _, tc := range []struct {
		name    string
		environ []string
		want    []string // appended to environ
	}{
		{"none set", []string{"HOME=/h"}, []string{"SCALER_WORKER_ID=w1", ours}},
		{"other tunables kept", []string{"GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F"},
			[]string{"SCALER_WORKER_ID=w1", "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F:" + processorMallocTunables}},
		{"the user's malloc tunables stand", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=4"},
			[]string{"SCALER_WORKER_ID=w1"}},
		{"the last one counts", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=4", "GLIBC_TUNABLES="},
			[]string{"SCALER_WORKER_ID=w1", ours}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			environ := slices.Clip(tc.environ)
			got := processorEnv(environ, "w1")
			if want := append(slices.Clone(tc.environ), tc.want...); !slices.Equal(got, want) {
				t.Fatalf("processorEnv(%q) = %q, want %q", tc.environ, got, want)
			}
		})
	}
}

// A processor's Python gets 64 MiB blocks from the heap, on a thread started
// after the interpreter (as pyzmq's io thread is), not from a fresh mmap;
// with the worker's own environment (glibc's defaults) it gets an mmap.
func TestProcessorMallocsLargeBlocksFromTheHeap(t *testing.T) {
	python := programs.Python(t)
	const probe = `
import ctypes, threading
libc = ctypes.CDLL(None)
class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
out = []
def probe():
    before = libc.mallinfo2().hblks
    p = libc.malloc(64 << 20)
    out.append("mmap" if libc.mallinfo2().hblks > before else "heap")
    libc.free(p)
t = threading.Thread(target=probe)
t.start(); t.join()
print(out[0])
`
	run := func(env []string) string {
		cmd := exec.Command(python, "-c", probe)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if mallocprobe.TunablesSetMalloc() {
		t.Skip("GLIBC_TUNABLES sets malloc: processors keep the user's settings")
	}
	if got := run(os.Environ()); got != "mmap" {
		t.Skipf("with glibc's defaults a 64 MiB block came from the %s: nothing to tell apart", got)
	}
	a := &agent{cfg: Config{Python: python, WorkerID: "w1"}}
	if got := run(a.processorCommand("p1").Env); got != "heap" {
		t.Fatalf("with a processor's environment a 64 MiB block came from an %s", got)
	}
}
