package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest"
)

// BenchmarkEndToEnd pushes tasks through a real scheduler on 127.0.0.1 to
// Go echo workers and back: one client keeps `window` tasks in flight.
func BenchmarkEndToEnd(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			s := scalertest.StartScheduler(b, nil)
			for i := 0; i < workers; i++ {
				w, err := scalertest.StartWorker(s.Addr(), scalertest.WorkerOptions{Name: fmt.Sprint(i), QueueSize: 100000})
				if err != nil {
					b.Fatal(err)
				}
				defer w.Stop()
			}
			c, err := scalertest.NewClient(s.Addr())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			// Wait until every worker is registered: one round trip each.
			if !scalertest.WaitFor(10*time.Second, func() bool {
				t := c.Task(1 << 40)
				_ = c.Send(t)
				_, err := c.Expect(time.Second, isResult(t.TaskID))
				return err == nil
			}) {
				b.Fatal("no worker")
			}
			const window = 4000
			sent, done := 0, 0
			b.ResetTimer()
			for sent < b.N && sent < window {
				_ = c.Send(c.Task(uint64(sent)))
				sent++
			}
			for done < b.N {
				m, err := c.Recv(10 * time.Second)
				if err != nil {
					b.Fatalf("after %d results: %v", done, err)
				}
				if m.Kind() != protocol.KindTaskResult {
					continue
				}
				done++
				if sent < b.N {
					_ = c.Send(c.Task(uint64(sent)))
					sent++
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
