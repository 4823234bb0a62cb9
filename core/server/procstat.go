package server

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// procSampler measures this process's CPU use and RSS, and the host's
// available memory, from /proc. On systems without /proc it reports zeros.
type procSampler struct {
	lastTicks uint64
	lastAt    time.Time
}

const clockTicks = 100 // USER_HZ on every Linux we run on

// sample returns CPU use in per-mille of one core since the last call
// (capped at 1000, as upstream reports), RSS bytes and available host memory.
func (p *procSampler) sample(now time.Time) (cpu uint16, rss, free uint64) {
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			f := bytes.Fields(b[i+1:])
			// fields after ")": state(0) ... utime(11) stime(12) ... rss(21)
			if len(f) > 21 {
				ut, _ := strconv.ParseUint(string(f[11]), 10, 64)
				stt, _ := strconv.ParseUint(string(f[12]), 10, 64)
				pages, _ := strconv.ParseUint(string(f[21]), 10, 64)
				rss = pages * uint64(os.Getpagesize())
				ticks := ut + stt
				if !p.lastAt.IsZero() && now.After(p.lastAt) {
					used := float64(ticks-p.lastTicks) / clockTicks
					c := used / now.Sub(p.lastAt).Seconds() * 1000
					cpu = uint16(min(max(c, 0), 1000))
				}
				p.lastTicks, p.lastAt = ticks, now
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range bytes.Split(b, []byte("\n")) {
			if rest, ok := bytes.CutPrefix(line, []byte("MemAvailable:")); ok {
				f := bytes.Fields(rest)
				if len(f) > 0 {
					kb, _ := strconv.ParseUint(string(f[0]), 10, 64)
					free = kb * 1024
				}
				break
			}
		}
	}
	return cpu, rss, free
}

// currentRSS is this process's resident memory in bytes (0 without /proc).
func currentRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(string(f[1]), 10, 64)
	return pages * uint64(os.Getpagesize())
}
