package server

import "time"

// releaseAfterIdle is how long the scheduler holds no task before it gives
// its free memory back to the system.
const releaseAfterIdle = 5 * time.Second

// memRelease decides when the scheduler, idle after work, returns free
// memory to the system (runtime/debug.FreeOSMemory and transport.TrimMemory).
//
// Why: after a burst of tasks almost everything the loop allocated is
// garbage, but an idle scheduler allocates so little that no GC runs for
// minutes, so the heap stays at its peak, and glibc keeps libzmq's freed
// buffers (transport/malloc.go). Measured (bench/soak.py, 400,000 tasks in
// maps of 40,000): RSS 17 MiB at the start, 110 MiB after 60 s idle, while
// the live heap after a forced GC was 6 MiB. Held state was not the cause.
//
// The rule: once per idle period, releaseAfterIdle after the last task left,
// and only if tasks were held since the previous release, so an idle
// scheduler does not collect again and again.
type memRelease struct {
	worked    bool      // tasks were held since the last release
	idleSince time.Time // zero while tasks are held
}

// due reports whether to release now; idle is "the scheduler holds no task".
func (m *memRelease) due(idle bool, now time.Time) bool {
	if !idle {
		m.worked, m.idleSince = true, time.Time{}
		return false
	}
	if !m.worked {
		return false
	}
	if m.idleSince.IsZero() {
		m.idleSince = now
	}
	if now.Sub(m.idleSince) < releaseAfterIdle {
		return false
	}
	m.worked, m.idleSince = false, time.Time{}
	return true
}
