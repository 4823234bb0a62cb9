package logging

import (
	"testing"
	"time"
)

func TestRepeats(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := Repeats{Every: time.Minute}
	type step struct {
		key      string
		at       time.Duration
		log      bool
		repeated int
	}
	for i, s := range []step{
		{"a", 0, true, 0},
		{"a", 5 * time.Second, false, 0},
		{"a", 10 * time.Second, false, 0},
		{"a", 61 * time.Second, true, 2}, // a minute after the last logged: with the count
		{"a", 62 * time.Second, false, 0},
		{"b", 63 * time.Second, true, 0}, // another key: at once, no count
		{"a", 64 * time.Second, true, 0}, // back to a: a new key again
	} {
		log, rep := r.Allow(s.key, t0.Add(s.at))
		if log != s.log || rep != s.repeated {
			t.Fatalf("step %d %+v: got log=%v repeated=%d", i, s, log, rep)
		}
	}
	r.Reset()
	if log, _ := r.Allow("a", t0.Add(65*time.Second)); !log {
		t.Fatal("after Reset the next event is logged")
	}
}
