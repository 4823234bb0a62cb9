package procstat

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcStatOfSelfAndChild(t *testing.T) {
	self := Open(0)
	defer self.Close()
	c0 := self.CPU()
	// Spin until the kernel's own account (getrusage) says 30 ms of CPU
	// were used, not for 30 ms of wall time: on a loaded machine a wall-time
	// spin may get only a fraction of it. /proc counts in clock ticks, so
	// allow one tick (10 ms) less.
	r0 := rusageCPU(t)
	for deadline := time.Now().Add(10 * time.Second); rusageCPU(t) < r0+30*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatal("could not use 30 ms of CPU within 10 s")
		}
	}
	if c1 := self.CPU(); c1 < c0+20_000_000 {
		t.Errorf("own CPU time grew by %d ns while getrusage counted 30 ms, want >= 20 ms", c1-c0)
	}
	if rss := self.RSS(); rss < 1<<20 {
		t.Errorf("own RSS %d bytes, want >= 1 MiB", rss)
	}

	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5")
	if err := cmd.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	child := Open(cmd.Process.Pid)
	defer child.Close()
	deadline := time.Now().Add(10 * time.Second)
	for child.CPU() < 20_000_000 {
		if time.Now().After(deadline) {
			t.Fatalf("child CPU clock reads %d ns after its busy loop, want >= 20 ms", child.CPU())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if child.RSS() == 0 {
		t.Error("child RSS reads 0")
	}

	gone := Open(4194303) // above any default pid_max: no such process
	if syscall.Kill(4194303, 0) == nil {
		return // it exists here after all
	}
	if gone.CPU() != 0 || gone.RSS() != 0 {
		t.Errorf("missing process: cpu %d rss %d, want zeros", gone.CPU(), gone.RSS())
	}
}

func TestCPUMeterPermille(t *testing.T) {
	tests := []struct {
		name       string
		cpu0, cpu1 uint64
		at0, at1   int64
		want       uint16
	}{
		{"first reading", 0, 0, 0, 0, 0},
		{"half a core", 1e9, 1.5e9, 1e9, 2e9, 500},
		{"two cores", 0, 2e9, 1e9, 2e9, 2000},
		{"clock went back", 5e9, 4e9, 1e9, 2e9, 0},
		{"no time passed", 1e9, 2e9, 2e9, 2e9, 0},
	}
	for _, tc := range tests {
		var m CPUMeter
		if tc.at0 != 0 {
			m.Permille(tc.cpu0, tc.at0)
		}
		if got := m.Permille(tc.cpu1, tc.at1); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}

// RSS is counted in the kernel's pages: it must agree with the kilobytes of
// VmRSS in /proc/self/status whatever the page size (a fixed 4096 reads
// 1/16 of the truth on a 64 KiB-page arm64 kernel).
func TestRSSAgreesWithStatus(t *testing.T) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	var vmRSS uint64
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			vmRSS, _ = strconv.ParseUint(f[0], 10, 64)
			vmRSS *= 1024
		}
	}
	_, rss := Read(0)
	if vmRSS == 0 || rss == 0 {
		t.Fatalf("VmRSS %d, RSS %d: want both > 0", vmRSS, rss)
	}
	// The two reads are moments apart; the heap may move a little between.
	if lo, hi := vmRSS/2, vmRSS*2; rss < lo || rss > hi {
		t.Errorf("RSS %d bytes, VmRSS %d bytes (page size %d): want within a factor 2", rss, vmRSS, os.Getpagesize())
	}
}

func TestMemAvailable(t *testing.T) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skip("no /proc/meminfo")
	}
	if m := MemAvailable(); m < 1<<20 {
		t.Errorf("MemAvailable %d bytes, want >= 1 MiB", m)
	}
}

// rusageCPU is this process's user+system CPU time by getrusage.
func rusageCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// OpenThread counts the CPU of the thread that asks, not of its process:
// a thread that only waits reads (almost) nothing while another burns.
func TestOpenThreadCountsTheCallingThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	th := OpenThread()
	if th.RSS() != 0 {
		t.Errorf("a thread's RSS reads %d, want 0", th.RSS())
	}
	own0 := th.CPU()
	proc0, _ := Read(0)
	busy := make(chan uint64)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		mine := OpenThread()
		start := mine.CPU()
		for deadline := time.Now().Add(10 * time.Second); mine.CPU() < start+50_000_000 && time.Now().Before(deadline); {
		}
		busy <- mine.CPU() - start
	}()
	burnt := <-busy
	proc1, _ := Read(0)
	own, proc := th.CPU()-own0, proc1-proc0
	if burnt < 50_000_000 {
		t.Fatalf("the busy thread's clock grew by %d ns within 10 s, want >= 50 ms", burnt)
	}
	if proc < burnt {
		t.Errorf("the process's CPU grew by %d ns, less than its busy thread's %d", proc, burnt)
	}
	if own > burnt/5 {
		t.Errorf("the waiting thread's CPU grew by %d ns while another burnt %d: it counts more than itself", own, burnt)
	}
}
