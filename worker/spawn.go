package worker

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// Children are started with Pdeathsig so that they die with their parent
// even when it is killed with SIGKILL. Linux delivers that signal when the
// *thread* that forked the child exits, so every fork happens on one OS
// thread that stays locked for the life of the process.

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnRequest
)

func spawnLoop() {
	runtime.LockOSThread() // never unlocked: this thread lives as long as the process
	for req := range spawnCh {
		req.done <- req.cmd.Start()
	}
}

// startChild starts cmd on the spawner thread, with sig sent to the child
// when this process dies (Linux only; elsewhere it is a plain Start).
func startChild(cmd *exec.Cmd, sig syscall.Signal) error {
	setDeathSignal(cmd, sig)
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnRequest)
		go spawnLoop()
	})
	done := make(chan error, 1)
	spawnCh <- spawnRequest{cmd: cmd, done: done}
	return <-done
}
