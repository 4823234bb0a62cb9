package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
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

// BenchmarkVsLoopback is the large-object figure (docs/performance.md,
// "Large objects"). One op moves size bytes from the client to the server
// and size bytes back, twice: through object storage (a set, acknowledged,
// then a get of the same object) and through a plain TCP echo over
// 127.0.0.1 (write, then read the echo into one reused buffer). The two run
// alternately, the order swapped every op, so drift of the machine hits both
// alike. It reports the mean time of each and ratio = echo / storage (the
// target is >= 0.5). Variants: the server in this process or in a child
// (as a stand-alone server runs), and the get as GetView (the bytes stay
// where libzmq received them, as the echo's reader reads into its buffer)
// or as Get (one more copy, into fresh Go memory).
func BenchmarkVsLoopback(b *testing.B) {
	for _, size := range []int{1 << 20, 64 << 20} {
		for _, where := range []string{"local", "remote"} {
			for _, get := range []string{"view", "copy"} {
				name := fmt.Sprintf("%dMiB/%s/%s", size>>20, where, get)
				b.Run(name, func(b *testing.B) {
					var addr string
					serverPid := 0 // the server's CPU is this process's
					if where == "local" {
						addr = startServer(b, 0).Addr()
					} else {
						h := startHelper(b)
						addr, serverPid = h.addr, h.cmd.Process.Pid
					}
					benchVsLoopback(b, dial(b, addr), serverPid, size, get == "view")
				})
			}
		}
	}
}

func benchVsLoopback(b *testing.B, c *Client, serverPid, size int, view bool) {
	echo := startEcho(b, size)
	ctx := context.Background()
	data := make([]byte, size)
	back := make([]byte, size)
	id := oid("bench")
	viaStorage := func() {
		if err := c.Set(ctx, id, data); err != nil {
			b.Fatal(err)
		}
		if view {
			v, err := c.GetView(ctx, id)
			if err != nil || len(v.Bytes()) != size {
				b.Fatalf("get: %v", err)
			}
			v.Release()
			return
		}
		got, err := c.Get(ctx, id)
		if err != nil || len(got) != size {
			b.Fatalf("get: %d bytes, %v", len(got), err)
		}
	}
	viaEcho := func() {
		if _, err := echo.Write(data); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(echo, back); err != nil {
			b.Fatal(err)
		}
	}
	// One of each first: connections up, buffers allocated.
	viaStorage()
	viaEcho()
	// Wall time, and CPU time of every process involved (this one, and the
	// server's when it is a child): on a loaded machine the CPU figure
	// moves less than the wall clock.
	var tStorage, tEcho, cpuStorage, cpuEcho time.Duration
	cpu := func() time.Duration {
		t := cpuTime(b, 0)
		if serverPid != 0 {
			t += cpuTime(b, serverPid)
		}
		return t
	}
	timed := func(f func(), wall, used *time.Duration) {
		c, t := cpu(), time.Now()
		f()
		*wall += time.Since(t)
		*used += cpu() - c
	}
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if n%2 == 0 {
			timed(viaStorage, &tStorage, &cpuStorage)
			timed(viaEcho, &tEcho, &cpuEcho)
		} else {
			timed(viaEcho, &tEcho, &cpuEcho)
			timed(viaStorage, &tStorage, &cpuStorage)
		}
		n++
	}
	mbps := func(t time.Duration) float64 { return float64(2*size*n) / t.Seconds() / 1e6 }
	b.ReportMetric(mbps(tStorage), "storage-MB/s")
	b.ReportMetric(mbps(tEcho), "echo-MB/s")
	b.ReportMetric(float64(tEcho)/float64(tStorage), "ratio")
	b.ReportMetric(float64(cpuStorage.Microseconds())/1e3/float64(n), "storage-cpu-ms/op")
	b.ReportMetric(float64(cpuEcho.Microseconds())/1e3/float64(n), "echo-cpu-ms/op")
}

// cpuTime is the user+system CPU time so far of process pid (0: this one),
// all its threads.
func cpuTime(b *testing.B, pid int) time.Duration {
	if pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command (which may hold spaces) start after the last ')'.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times (100 on Linux).
const clockTicks = 100

// startEcho starts a TCP echo of size-byte messages on 127.0.0.1 and
// returns the client's connection.
func startEcho(b *testing.B, size int) net.Conn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, size)
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
	b.Cleanup(func() { _ = conn.Close() })
	return conn
}

// BenchmarkLoopbackTCP is the yardstick: a plain TCP echo of the same bytes
// over 127.0.0.1 (size bytes there, size bytes back per op).
func BenchmarkLoopbackTCP(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			conn := startEcho(b, bs.size)
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
