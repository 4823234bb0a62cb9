// Package procstat reads a process's CPU time and resident memory and the
// host's available memory, for the scheduler's and the workers' status
// reports. It is the one place that knows /proc's layout.
package procstat

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

// Process statistics, read once per task, so they must be cheap: CPU time
// comes from the process's CPU-time clock (one clock_gettime, nanosecond
// resolution) and RSS from /proc/<pid>/statm (kept open, one pread). The
// /proc/<pid>/stat file that has both costs ~15 µs per read here, more than
// the agent's whole per-task budget. On systems without them the readers
// return zeros, which the protocol allows ("all zero when nothing was
// measured").

// Process reads the CPU time and RSS of one process. Its methods are for one
// goroutine at a time.
type Process struct {
	clock int32 // CPU-time clock id of the process
	page  uint64
	f     *os.File
	buf   [128]byte
}

// processCPUClock is Linux's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED):
// the clock that counts the CPU time of every thread of process pid.
func processCPUClock(pid int) int32 {
	const cpuclockSched = 2
	return int32(^uint32(pid))<<3 | cpuclockSched
}

// Open starts reading process pid; 0 is this process. Close it when done.
// It does not fail: what cannot be read reads as 0.
func Open(pid int) *Process {
	path := "/proc/self/statm"
	clock := int32(2) // CLOCK_PROCESS_CPUTIME_ID
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/statm"
		clock = processCPUClock(pid)
	}
	// statm counts pages of the kernel's size: 4 KiB on x86-64, often
	// 16 or 64 KiB on arm64.
	p := &Process{clock: clock, page: uint64(os.Getpagesize())}
	if f, err := os.Open(path); err == nil {
		p.f = f
	}
	return p
}

// OpenThread reads the CPU time of the calling OS thread, whichever thread
// calls CPU: for a loop locked to its thread (runtime.LockOSThread) that
// shares its process with others, as the combo's in-process worker agents
// do, whose process's figures are everybody's. Its RSS reads 0: a thread
// has none of its own.
func OpenThread() *Process {
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID
	return &Process{clock: clockThreadCPUTime}
}

// Close releases the open /proc file.
func (p *Process) Close() {
	if p != nil && p.f != nil {
		_ = p.f.Close()
		p.f = nil
	}
}

// CPU returns the process's CPU time (user + system, every thread) in
// nanoseconds, 0 on failure.
func (p *Process) CPU() uint64 {
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

// RSS returns the resident set size in bytes, 0 on failure.
func (p *Process) RSS() uint64 {
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
	return pages * p.page
}

// Read returns the CPU time (nanoseconds) and RSS (bytes) of process pid (0:
// this process) once, keeping no file open: for callers that sample rarely.
func Read(pid int) (cpuNS, rss uint64) {
	p := Open(pid)
	defer p.Close()
	return p.CPU(), p.RSS()
}

// Threads counts the threads of process pid (0: this process) whose name
// (/proc/<pid>/task/<tid>/comm) starts with prefix: how tests see libzmq's
// io threads, which are named ZMQbg/IO/<n>.
func Threads(pid int, prefix string) int {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/task"
	}
	tasks, _ := os.ReadDir(dir)
	n := 0
	for _, task := range tasks {
		if b, err := os.ReadFile(dir + "/" + task.Name() + "/comm"); err == nil && bytes.HasPrefix(b, []byte(prefix)) {
			n++
		}
	}
	return n
}

// WaitThreads polls Threads until it counts want threads or timeout has
// passed, and returns the last count: a thread names itself once it runs,
// a little after it was started.
func WaitThreads(pid int, prefix string, want int, timeout time.Duration) int {
	n := Threads(pid, prefix)
	for deadline := time.Now().Add(timeout); n < want && time.Now().Before(deadline); n = Threads(pid, prefix) {
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// MemAvailable returns the host's MemAvailable from /proc/meminfo, in
// bytes, 0 on failure.
func MemAvailable() uint64 {
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

// CPUMeter turns successive CPU time readings into per-mille of one core.
// The zero value is ready; the first reading gives 0.
type CPUMeter struct {
	cpuNS uint64
	at    int64 // unix nanoseconds
}

// Permille returns the CPU used since the previous reading, in per-mille of
// one core (2000 is two cores busy), capped at 65535.
func (m *CPUMeter) Permille(cpuNS uint64, nowNS int64) uint16 {
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
