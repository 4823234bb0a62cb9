package commands

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mb = 1 << 20
	cases := []struct {
		live uint64
		want int
	}{
		{0, messageLoopGCPercent}, // no figure yet
		{1 * mb, messageLoopGCPercent},
		{16 * mb, messageLoopGCPercent}, // 64 MB of headroom is exactly 400%
		{32 * mb, 200},
		{48 * mb, 133},
		{64 * mb, gcMinPercent},
		{128 * mb, gcMinPercent},
		{1024 * mb, gcMinPercent}, // never below the floor
	}
	for _, c := range cases {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d MB) = %d, want %d", c.live/mb, got, c.want)
		}
	}
}

// The tuner sets a new target only when the live heap calls for another,
// and it runs after every collection, re-arming itself.
func TestGCTunerFollowsCollections(t *testing.T) {
	var mu sync.Mutex
	var set []int
	tu := &gcTuner{set: func(p int) int { mu.Lock(); set = append(set, p); mu.Unlock(); return 0 }, current: messageLoopGCPercent}
	tu.after(1 << 20)
	tu.after(32 << 20)
	tu.after(32 << 20)
	tu.after(1 << 20)
	if want := []int{200, messageLoopGCPercent}; len(set) != 2 || set[0] != want[0] || set[1] != want[1] {
		t.Fatalf("targets set %v, want %v", set, want)
	}

	live := &gcTuner{set: func(int) int { return 0 }, current: messageLoopGCPercent}
	live.arm()
	deadline := time.Now().Add(30 * time.Second)
	for live.runs.Load() < 3 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := live.runs.Load(); n < 3 {
		t.Fatalf("tuner ran after %d of the collections", n)
	}
}
