// Package freeport finds a TCP port on 127.0.0.1 where nothing listens, for
// tests that need an address no server has yet (to connect first, or to
// reach nobody). Like syncbuf it imports nothing of this module, so any
// package's own tests may use it.
package freeport

import (
	"strconv"
	"testing"
)

// Addr returns "tcp://127.0.0.1:<port>" for a port that was free a moment
// ago and that no Ports or Addr call of this process returned before.
// Another process may take it meanwhile, as with any such helper.
func Addr(t testing.TB) string {
	t.Helper()
	return "tcp://127.0.0.1:" + strconv.Itoa(Ports(t, 1))
}
