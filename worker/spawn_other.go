//go:build !linux

package worker

import (
	"os/exec"
	"syscall"
)

func setDeathSignal(*exec.Cmd, syscall.Signal) {}
