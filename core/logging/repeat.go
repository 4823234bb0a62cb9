package logging

import "time"

// Repeats rate-limits a log line that may repeat: the first event of a key
// is logged, the same key again within Every is not (the caller logs it at
// DEBUG or drops it), and the first one logged after that carries how many
// were held back. A different key is logged at once and starts over. The
// caller passes the time, so the scheduler's pure code can use it; it is not
// safe for concurrent use (an HTTP handler guards it with its own mutex).
type Repeats struct {
	Every  time.Duration
	key    string
	logged time.Time
	quiet  int
}

// Allow reports whether the event key at now is to be logged and, when it
// is, how many events of the same key were held back since the last one
// logged (0 if none, or the key changed).
func (r *Repeats) Allow(key string, now time.Time) (log bool, repeated int) {
	if r.logged != (time.Time{}) && key == r.key && now.Sub(r.logged) < r.Every {
		r.quiet++
		return false, 0
	}
	if key == r.key {
		repeated = r.quiet
	}
	r.key, r.logged, r.quiet = key, now, 0
	return true, repeated
}

// Reset forgets the last event: the next one is logged whatever its key.
func (r *Repeats) Reset() { *r = Repeats{Every: r.Every} }
