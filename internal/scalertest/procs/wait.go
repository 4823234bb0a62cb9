package procs

import (
	"os/exec"
	"syscall"
	"time"
)

// WaitOrKillGroup waits for cmd, started with Setpgid, to end; when it has
// not ended after grace, its whole process group gets SIGKILL (it is then
// waited for), so a process that ignores its stop request leaves nothing
// behind.
func WaitOrKillGroup(cmd *exec.Cmd, grace time.Duration) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}
