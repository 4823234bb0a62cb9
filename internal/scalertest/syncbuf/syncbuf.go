// Package syncbuf is a buffer that a child process (or any goroutine) may
// write while a test reads it: the stdout and stderr of processes started
// by tests. It imports nothing of this module, so any package's own tests
// may use it (internal/scalertest imports core/server and storage, which
// their internal tests cannot import back).
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer behind a mutex. The zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
