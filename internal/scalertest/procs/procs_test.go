package procs

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestAChildAndItsEnd(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	pid := cmd.Process.Pid
	// Start returns once the exec has begun, a moment before the kernel
	// writes the new program's arguments: until then cmdline reads "".
	for deadline := time.Now().Add(10 * time.Second); Cmdline(pid) == "" && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if !Alive(pid) || Parent(pid) != os.Getpid() || !strings.HasPrefix(Cmdline(pid), "sleep 30") {
		t.Fatalf("child %d: alive %v, parent %d, cmdline %q", pid, Alive(pid), Parent(pid), Cmdline(pid))
	}
	found := false
	for _, p := range Descendants(os.Getpid()) {
		found = found || p == pid
	}
	if !found {
		t.Fatalf("child %d not among the descendants", pid)
	}
	_ = cmd.Process.Kill()
	// Until it is reaped the child is a zombie, which counts as gone.
	for deadline := time.Now().Add(10 * time.Second); Alive(pid); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a killed child still counts as alive")
		}
	}
	_ = cmd.Wait()
	if Alive(pid) || Parent(pid) != 0 {
		t.Fatalf("reaped child %d: alive %v, parent %d", pid, Alive(pid), Parent(pid))
	}
}
