package server

import (
	"time"

	"github.com/opengris/scaler/internal/procstat"
)

// procSampler measures this process's CPU use and RSS, and the host's
// available memory (internal/procstat). On systems without /proc it reports
// zeros.
type procSampler struct {
	cpu procstat.CPUMeter
}

// sample returns CPU use in per-mille of one core since the last call
// (capped at 1000, as upstream reports), RSS bytes and available host memory.
// It runs once per status report, so it keeps no file open.
func (p *procSampler) sample(now time.Time) (cpu uint16, rss, free uint64) {
	cpuNS, rss := procstat.Read(0)
	cpu = min(p.cpu.Permille(cpuNS, now.UnixNano()), 1000)
	return cpu, rss, procstat.MemAvailable()
}

// currentRSS is this process's resident memory in bytes (0 without /proc).
func currentRSS() uint64 {
	_, rss := procstat.Read(0)
	return rss
}
