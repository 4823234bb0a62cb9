package worker

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// Process statistics, read once per task, so they must be cheap: CPU time
// comes from the process's CPU-time clock (one clock_gettime, nanosecond
// resolution) and RSS from /proc/<pid>/statm (kept open, one pread). The
// /proc/<pid>/stat file that has both costs ~15 µs per read here, more than
// the agent's whole per-task budget. On systems without them the readers
// return zeros, which the protocol allows ("all zero when nothing was
// measured").

const pageSize = 4096

// procStat reads the CPU time and RSS of one process.
type procStat struct {
	clock int32 // CPU-time clock id of the process
	f     *os.File
	buf   [128]byte
}

// processCPUClock is Linux's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED):
// the clock that counts the CPU time of every thread of process pid.
func processCPUClock(pid int) int32 {
	const cpuclockSched = 2
	return int32(^uint32(pid))<<3 | cpuclockSched
}

func openProcStat(pid int) *procStat {
	path := "/proc/self/statm"
	clock := int32(2) // CLOCK_PROCESS_CPUTIME_ID
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/statm"
		clock = processCPUClock(pid)
	}
	p := &procStat{clock: clock}
	if f, err := os.Open(path); err == nil {
		p.f = f
	}
	return p
}

func (p *procStat) close() {
	if p != nil && p.f != nil {
		_ = p.f.Close()
		p.f = nil
	}
}

// cpu returns the process's CPU time (user + system) in nanoseconds, 0 on
// failure.
func (p *procStat) cpu() uint64 {
	if p == nil {
		return 0
	}
	var ts syscall.Timespec
	_, _, errno := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, uintptr(int64(p.clock)), uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return 0
	}
	return uint64(ts.Sec)*1e9 + uint64(ts.Nsec)
}

// rss returns the resident set size in bytes, 0 on failure.
func (p *procStat) rss() uint64 {
	if p == nil || p.f == nil {
		return 0
	}
	n, err := p.f.ReadAt(p.buf[:], 0)
	if n <= 0 && err != nil {
		return 0
	}
	// statm: size resident shared text lib data dt (pages).
	b := p.buf[:n]
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return 0
	}
	b = b[i+1:]
	if j := bytes.IndexByte(b, ' '); j >= 0 {
		b = b[:j]
	}
	pages, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0
	}
	return pages * pageSize
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

// cpuMeter turns CPU time readings into per-mille of one core.
type cpuMeter struct {
	cpuNS uint64
	at    int64 // unix nanoseconds
}

func (m *cpuMeter) permille(cpuNS uint64, nowNS int64) uint16 {
	prevCPU, prevAt := m.cpuNS, m.at
	m.cpuNS, m.at = cpuNS, nowNS
	if prevAt == 0 || nowNS <= prevAt || cpuNS < prevCPU {
		return 0
	}
	v := float64(cpuNS-prevCPU) / float64(nowNS-prevAt) * 1000
	if v > 65535 {
		v = 65535
	}
	return uint16(v)
}
