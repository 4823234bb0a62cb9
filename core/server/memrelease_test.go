package server

import (
	"testing"
	"time"
)

// The release rule: once per idle period, releaseAfterIdle after the last
// task, and never without work since the previous release.
func TestMemReleaseRule(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []struct {
		idle bool
		at   time.Duration
		want bool
	}{
		{true, 0, false},                         // idle from the start: nothing to give back
		{true, 2 * releaseAfterIdle, false},      // still never worked
		{false, 3 * releaseAfterIdle, false},     // tasks held
		{true, 3*releaseAfterIdle + 1, false},    // idle period starts
		{true, 4*releaseAfterIdle - 1, false},    // not long enough
		{false, 4 * releaseAfterIdle, false},     // busy again: the idle period restarts
		{true, 4*releaseAfterIdle + 1, false},    //
		{true, 5*releaseAfterIdle + 1, true},     // idle long enough after work: release
		{true, 5*releaseAfterIdle + 2, false},    // once
		{true, 20 * releaseAfterIdle, false},     // and not again while idle
		{false, 21 * releaseAfterIdle, false},    // work
		{true, 21*releaseAfterIdle + 1, false},   //
		{true, 22*releaseAfterIdle + 1, true},    // the next idle period releases again
		{true, 22*releaseAfterIdle + 100, false}, //
	}
	var m memRelease
	for i, s := range steps {
		if got := m.due(s.idle, at(s.at)); got != s.want {
			t.Fatalf("step %d (idle %v at %v): due = %v, want %v", i, s.idle, s.at, got, s.want)
		}
	}
}
