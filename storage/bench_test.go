package storage

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

var benchSizes = []struct {
	name string
	size int
}{
	{"1KiB", 1 << 10},
	{"1MiB", 1 << 20},
	{"64MiB", 64 << 20},
}

// BenchmarkSetGet measures one set followed by one get of the same object
// over 127.0.0.1, one request at a time. Each op moves size bytes to the
// server and size bytes back, so MB/s counts 2*size per op, like
// BenchmarkLoopbackTCP.
func BenchmarkSetGet(b *testing.B) {
	benchSetGet(b, func(b *testing.B) string { return startServer(b, 0).Addr() })
}

// BenchmarkSetGetRemote is BenchmarkSetGet with the server in a child
// process, as for a stand-alone scaler_object_storage_server: client and
// server then do not share zmq's io thread.
func BenchmarkSetGetRemote(b *testing.B) {
	benchSetGet(b, func(b *testing.B) string { return startHelper(b).addr })
}

func benchSetGet(b *testing.B, start func(b *testing.B) string) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			c := dial(b, start(b))
			ctx := context.Background()
			data := make([]byte, bs.size)
			id := oid("bench")
			b.SetBytes(int64(2 * bs.size))
			b.ResetTimer()
			for b.Loop() {
				if err := c.Set(ctx, id, data); err != nil {
					b.Fatal(err)
				}
				got, err := c.Get(ctx, id)
				if err != nil || len(got) != bs.size {
					b.Fatalf("get: %d bytes, %v", len(got), err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

// BenchmarkSetGetPipelined keeps a window of requests in flight on one
// connection, as the scheduler and worker agent do with the async API.
func BenchmarkSetGetPipelined(b *testing.B) {
	const window = 64
	for _, bs := range benchSizes[:2] {
		b.Run(bs.name, func(b *testing.B) {
			srv := startServer(b, 0)
			c := dial(b, srv.Addr())
			data := make([]byte, bs.size)
			ids := make([][]byte, window)
			for i := range ids {
				ids[i] = oid(fmt.Sprint("bench", i))
			}
			b.SetBytes(int64(2 * bs.size))
			b.ResetTimer()
			inflight := make([]<-chan Result, 0, 2*window)
			n := 0
			drain := func() {
				for _, ch := range inflight {
					if r := <-ch; r.Err != nil {
						b.Fatal(r.Err)
					}
				}
				inflight = inflight[:0]
			}
			start := time.Now()
			for ; n < b.N; n++ {
				id := ids[n%window]
				inflight = append(inflight, c.SetAsync(id, data), c.GetAsync(id, 0))
				if (n+1)%window == 0 {
					drain()
				}
			}
			drain() // inside the timing: every reply counts
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
		})
	}
}

// BenchmarkLoopbackTCP is the yardstick: a plain TCP echo of the same bytes
// over 127.0.0.1 (size bytes there, size bytes back per op).
func BenchmarkLoopbackTCP(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				buf := make([]byte, bs.size)
				for {
					if _, err := io.ReadFull(conn, buf); err != nil {
						return
					}
					if _, err := conn.Write(buf); err != nil {
						return
					}
				}
			}()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			data := make([]byte, bs.size)
			back := make([]byte, bs.size)
			b.SetBytes(int64(2 * bs.size))
			b.ResetTimer()
			for b.Loop() {
				if _, err := conn.Write(data); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(conn, back); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
