package worker

import (
	"bytes"
	"os"
	"strconv"
)

// Process statistics from Linux /proc. On other systems the readers return
// zeros, which the protocol allows ("all zero when nothing was measured").

const (
	clockTicks = 100 // USER_HZ; 100 on every Linux architecture we build for
	pageSize   = 4096
)

// procStat reads utime+stime (ticks) and RSS (bytes) of one process. It
// keeps /proc/<pid>/stat open and re-reads it with pread, one syscall.
type procStat struct {
	f   *os.File
	buf [512]byte
}

func openProcStat(pid int) *procStat {
	path := "/proc/self/stat"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	f, err := os.Open(path)
	if err != nil {
		return &procStat{}
	}
	return &procStat{f: f}
}

func (p *procStat) close() {
	if p != nil && p.f != nil {
		_ = p.f.Close()
		p.f = nil
	}
}

// read returns CPU ticks (user+system) and RSS bytes; zeros on failure.
func (p *procStat) read() (cpuTicks, rss uint64) {
	if p == nil || p.f == nil {
		return 0, 0
	}
	n, err := p.f.ReadAt(p.buf[:], 0)
	if n <= 0 && err != nil {
		return 0, 0
	}
	b := p.buf[:n]
	// The command name (field 2) may hold spaces; fields after it start
	// after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (state): utime is field 14, stime 15, rss 24.
	if len(fields) < 22 {
		return 0, 0
	}
	ut, _ := strconv.ParseUint(string(fields[11]), 10, 64)
	st, _ := strconv.ParseUint(string(fields[12]), 10, 64)
	pages, _ := strconv.ParseUint(string(fields[21]), 10, 64)
	return ut + st, pages * pageSize
}

// memAvailable returns MemAvailable from /proc/meminfo, in bytes.
func memAvailable() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		if rest, ok := bytes.CutPrefix(line, []byte("MemAvailable:")); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(string(f[0]), 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// cpuMeter turns CPU tick readings into per-mille of one core.
type cpuMeter struct {
	ticks uint64
	at    int64 // unix nanoseconds
}

func (m *cpuMeter) permille(ticks uint64, nowNS int64) uint16 {
	prevTicks, prevAt := m.ticks, m.at
	m.ticks, m.at = ticks, nowNS
	if prevAt == 0 || nowNS <= prevAt || ticks < prevTicks {
		return 0
	}
	cpuNS := float64(ticks-prevTicks) * 1e9 / clockTicks
	v := cpuNS / float64(nowNS-prevAt) * 1000
	if v > 65535 {
		v = 65535
	}
	return uint16(v)
}
