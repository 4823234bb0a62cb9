package scheduler

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

func TestShrinkDue(t *testing.T) {
	cases := []struct {
		n, peak int
		want    bool
	}{
		{0, 0, false},
		{0, shrinkMinPeak - 1, false}, // small tables stay
		{0, shrinkMinPeak, true},
		{shrinkMinPeak / shrinkFactor, shrinkMinPeak, true},
		{shrinkMinPeak/shrinkFactor + 1, shrinkMinPeak, false},
		{6000, 100000, true},
		{7000, 100000, false},
	}
	for _, c := range cases {
		if got := shrinkDue(c.n, c.peak); got != c.want {
			t.Errorf("shrinkDue(%d, %d) = %v, want %v", c.n, c.peak, got, c.want)
		}
	}
}

// The task table is made again once the tasks of a burst are gone, keeping
// the tasks still held; a table that did not shrink enough is kept.
func TestTaskTableShrinks(t *testing.T) {
	h := newHarness(t, nil)
	h.client("c")
	n := shrinkMinPeak + 100
	for i := 0; i < n; i++ {
		h.submit("c", fmt.Sprintf("t%d", i)) // no worker: all wait
	}
	h.advance(100 * time.Millisecond)
	if h.s.tasksPeak != n {
		t.Fatalf("peak %d, want %d", h.s.tasksPeak, n)
	}
	table := reflect.ValueOf(h.s.tasks).UnsafePointer()
	keep := n / shrinkFactor
	for i := 0; i < n-keep-1; i++ { // one too many left
		h.cancel("c", fmt.Sprintf("t%d", i), false)
	}
	h.advance(100 * time.Millisecond)
	if reflect.ValueOf(h.s.tasks).UnsafePointer() != table {
		t.Fatal("table made again before it shrank to peak/shrinkFactor")
	}
	h.cancel("c", fmt.Sprintf("t%d", n-keep-1), false)
	h.advance(100 * time.Millisecond)
	if reflect.ValueOf(h.s.tasks).UnsafePointer() == table {
		t.Fatal("table not made again")
	}
	if len(h.s.tasks) != keep || h.s.tasksPeak != keep || h.s.tasks[fmt.Sprintf("t%d", n-1)] == nil {
		t.Fatalf("after the re-make: %d tasks, peak %d", len(h.s.tasks), h.s.tasksPeak)
	}
	// The kept tasks still run.
	h.take()
	h.worker("w", uint32(keep))
	h.advance(100 * time.Millisecond)
	sent := 0
	for _, s := range h.take() {
		if _, ok := s.msg.(*protocol.Task); ok {
			sent++
		}
	}
	if sent != keep {
		t.Fatalf("%d tasks sent to the worker, want %d", sent, keep)
	}
	checkInvariants(t, h.s)
}
