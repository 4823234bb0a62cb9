package commands

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/internal/procstat"
	"github.com/opengris/scaler/internal/scalertest/syncbuf"
)

// TestRolesRunTheirIOThreads starts real role processes and counts their
// libzmq io threads (named ZMQbg/IO/N): --io-threads is applied, not only
// accepted.
func TestRolesRunTheirIOThreads(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go toolchain not on PATH")
	}
	bin := buildBinary(t)
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"scheduler --io-threads 3", []string{"scheduler", "--io-threads", "3", "tcp://127.0.0.1:0"}, 3},
		{"scheduler default", []string{"scheduler", "tcp://127.0.0.1:0"}, 1},
		{"object storage", []string{"object_storage_server", "tcp://127.0.0.1:0"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var out syncbuf.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}()
			// The io threads start with the first socket, before the role
			// logs that it listens: wait for that line, with a deadline for
			// a loaded machine.
			for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), "listening"); time.Sleep(50 * time.Millisecond) {
				select {
				case err := <-exited:
					exited <- err
					t.Fatalf("%s exited: %v\n%s", tc.name, err, out.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s did not say it listens within 60s\n%s", tc.name, out.String())
				}
			}
			got := procstat.WaitThreads(cmd.Process.Pid, "ZMQbg/IO/", tc.want, 30*time.Second)
			if got != tc.want {
				t.Fatalf("%s runs %d zmq io threads, want %d\n%s", tc.name, got, tc.want, out.String())
			}
		})
	}
}
