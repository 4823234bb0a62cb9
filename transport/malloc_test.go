package transport

import (
	"fmt"
	"strings"
	"testing"
)

// TestTuneMalloc checks in fresh processes that linking transport leaves
// glibc's allocator alone and that TuneMalloc is what changes it: a 64 MiB
// block is mmap'd by default and comes from the heap once tuned, unless
// GLIBC_TUNABLES sets malloc.
func TestTuneMalloc(t *testing.T) {
	cases := []struct {
		name, probe, tunables, want string
	}{
		{"linked only", "untuned", "", "tuned=false mmapped=1"},
		{"tuned", "tuned", "", "tuned=true mmapped=0"},
		{"tunables win", "tuned", "glibc.malloc.mmap_threshold=131072", "tuned=false mmapped=1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := runChild(t, "TestMallocProbe", c.probe, "GLIBC_TUNABLES="+c.tunables)
			if !strings.Contains(out, "malloc probe: "+c.want+"\n") {
				t.Fatalf("want %q, got:\n%s", c.want, out)
			}
		})
	}
}

// TestMallocProbe is the child of TestTuneMalloc; it does nothing in a
// normal run.
func TestMallocProbe(t *testing.T) {
	tunedNow := false
	if childMode(t) == "tuned" {
		tunedNow = TuneMalloc()
	}
	mapped := mallocMmaps(64 << 20)
	if mapped < 0 {
		t.Fatal("malloc of 64 MiB failed")
	}
	fmt.Printf("malloc probe: tuned=%v mmapped=%d\n", tunedNow, mapped)
}
