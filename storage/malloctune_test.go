//go:build !race

package storage

// The scaler binary runs object storage with internal/malloctune's glibc
// settings (package commands links it), so the tests and benchmarks here do
// too: they measure and check what runs in production (BenchmarkVsLoopback:
// without them every 64 MiB receive page-faults a fresh mmap in, and the
// figure is about 2.5x worse). Not under the race detector, where the same
// tests ran several times slower with them (TestGetThenDeleteKeepsReplyIntact:
// 1.4 s without, over 10 s with).
import _ "github.com/opengris/scaler/internal/malloctune"
