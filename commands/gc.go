package commands

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// messageLoopGCPercent is the GC target of the roles that move messages
// (scheduler, worker): their live heap is a few MB, so the default of 100
// collects every few hundred tasks; 400 cuts collections by 4x for a few MB
// more memory. $GOGC, when set, wins.
const messageLoopGCPercent = 400

// A fixed 400% is a poor trade once the live heap is large: a scheduler
// holding 1,000,000 waiting tasks (about 420 MB live) may grow its heap by
// four times that before it collects. So the target shrinks as the live
// heap grows, keeping the headroom near gcHeadroom, down to gcMinPercent
// (Go's default), reached at 64 MiB live. Measured with 1,000,000 tasks
// waiting (BenchmarkScaleWaiting, docs/performance.md "Scale", interleaved,
// 2 rounds): a floor of 50% gave 608-611 B of RSS per waiting task but
// took 10-17 s to submit them, 100% 690-730 B in 3.0-3.4 s (a fixed 400%:
// 1,092-1,120 B in 3.1-3.8 s); the collections of a large live heap cost
// more than they save below 100%.
const (
	gcHeadroom   = 64 << 20
	gcMinPercent = 100
)

// gcPercentFor is the GC target for a live heap of live bytes.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return messageLoopGCPercent
	}
	p := uint64(gcHeadroom) * 100 / live
	return int(max(min(p, messageLoopGCPercent), gcMinPercent))
}

func tuneGCForMessageLoop() {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(messageLoopGCPercent)
	t := &gcTuner{set: debug.SetGCPercent, current: messageLoopGCPercent}
	t.arm()
}

// gcTuner sets the GC target after every collection from the live heap it
// left (gcPercentFor). It runs from a finalizer that re-arms itself, so it
// costs nothing between collections and sees each one: no goroutine polls.
type gcTuner struct {
	set     func(int) int
	current int
	runs    atomic.Int64 // collections seen (tests)
}

// gcSentinel is garbage whose finalizer runs after the collection that
// found it unreachable.
type gcSentinel struct {
	t *gcTuner
	_ [16]byte // not a tiny allocation: those may share a block and never be finalized alone
}

func (t *gcTuner) arm() {
	s := &gcSentinel{t: t}
	runtime.SetFinalizer(s, func(s *gcSentinel) {
		s.t.after(liveHeap())
		s.t.arm()
	})
}

// after applies the target for the live heap a collection left.
func (t *gcTuner) after(live uint64) {
	t.runs.Add(1)
	if p := gcPercentFor(live); p != t.current {
		t.current = p
		t.set(p)
	}
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
