package transport

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Cross-process round trips: the echoing ROUTER runs in a child process (this
// test binary re-executed), so the two sides do not share a Go scheduler or
// zmq io threads, as between the scheduler, worker agents and clients.

const echoHelperEnv = "TRANSPORT_ECHO_HELPER" // "raw" or "transport"

// TestEchoHelperProcess is not a real test: it is the child process's main.
// It binds a ROUTER, prints its address and echoes every message until its
// stdin is closed (the parent exiting closes it too).
func TestEchoHelperProcess(t *testing.T) {
	mode := os.Getenv(echoHelperEnv)
	if mode == "" {
		t.Skip("helper process only")
	}
	os.Exit(echoHelperMain(mode))
}

func echoHelperMain(mode string) int {
	switch mode {
	case "transport":
		r, err := Bind(Router, "tcp://127.0.0.1:0", Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		echo(r)
		fmt.Println(r.Addr())
	case "raw":
		ctx, err := sharedContext()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		r, err := ctx.NewSocket(zmq.ROUTER)
		if err == nil {
			err = r.Bind("tcp://127.0.0.1:0")
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		addr, _ := r.GetLastEndpoint()
		go func() {
			for {
				msg, err := r.RecvMessageBytes(0)
				if err != nil {
					return
				}
				_, _ = r.SendMessage(msg)
			}
		}()
		fmt.Println(addr)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		return 1
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// startEcho runs an echo child of the given mode and returns its address.
func startEcho(tb testing.TB, mode string) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEchoHelperProcess$")
	cmd.Env = append(os.Environ(), echoHelperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case addr := <-line:
		if !strings.HasPrefix(addr, "tcp://") {
			tb.Fatalf("echo helper printed %q", addr)
		}
		return addr
	case <-time.After(10 * time.Second):
		tb.Fatal("echo helper did not report its address")
	}
	return ""
}

// BenchmarkCrossProcessRoundTrip: ns/op is the round-trip latency of one
// 64-byte message from a DEALER here to the echoing ROUTER in a child
// process and back. "raw" sub-benchmarks use blocking zmq4 calls, without
// this package, as the floor.
func BenchmarkCrossProcessRoundTrip(b *testing.B) {
	payload := make([]byte, 64)
	for _, peer := range []string{"raw", "transport"} {
		b.Run("client=raw/peer="+peer, func(b *testing.B) {
			addr := startEcho(b, peer)
			d := rawSocket(b, zmq.DEALER)
			_ = d.SetLinger(0)
			if err := d.Connect(addr); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := d.SendBytes(payload, 0); err != nil {
					b.Fatal(err)
				}
				if _, err := d.RecvMessageBytes(0); err != nil {
					b.Fatal(err)
				}
			}
		})
		// idle is the number of other live endpoints in this process, as in
		// the scheduler (ROUTER, PUB, storage ROUTER, storage DEALER).
		for _, idle := range []int{0, 3} {
			b.Run(fmt.Sprintf("client=transport/peer=%s/idle=%d", peer, idle), func(b *testing.B) {
				addr := startEcho(b, peer)
				for range idle {
					bind(b, Router, Options{})
				}
				d := connect(b, Dealer, addr, Options{})
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if err := d.Send(payload); err != nil {
						b.Fatal(err)
					}
					if _, ok := <-d.Recv(); !ok {
						b.Fatal(d.Err())
					}
				}
			})
		}
	}
}
