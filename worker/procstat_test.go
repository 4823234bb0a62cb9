package worker

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestProcStatOfSelfAndChild(t *testing.T) {
	self := openProcStat(0)
	defer self.close()
	c0 := self.cpu()
	for spin := time.Now(); time.Since(spin) < 30*time.Millisecond; {
	}
	if c1 := self.cpu(); c1 < c0+10_000_000 {
		t.Errorf("own CPU time grew by %d ns over a 30 ms spin, want >= 10 ms", c1-c0)
	}
	if rss := self.rss(); rss < 1<<20 {
		t.Errorf("own RSS %d bytes, want >= 1 MiB", rss)
	}

	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5")
	if err := cmd.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	child := openProcStat(cmd.Process.Pid)
	defer child.close()
	deadline := time.Now().Add(10 * time.Second)
	for child.cpu() < 20_000_000 {
		if time.Now().After(deadline) {
			t.Fatalf("child CPU clock reads %d ns after its busy loop, want >= 20 ms", child.cpu())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if child.rss() == 0 {
		t.Error("child RSS reads 0")
	}

	gone := openProcStat(4194303) // above any default pid_max: no such process
	if syscall.Kill(4194303, 0) == nil {
		return // it exists here after all
	}
	if gone.cpu() != 0 || gone.rss() != 0 {
		t.Errorf("missing process: cpu %d rss %d, want zeros", gone.cpu(), gone.rss())
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
		var m cpuMeter
		if tc.at0 != 0 {
			m.permille(tc.cpu0, tc.at0)
		}
		if got := m.permille(tc.cpu1, tc.at1); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}
