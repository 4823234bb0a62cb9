// Package freeport finds a TCP port on 127.0.0.1 where nothing listens, for
// tests that need an address no server has yet (to connect first, or to
// reach nobody). Like syncbuf it imports nothing of this module, so any
// package's own tests may use it.
package freeport

import (
	"net"
	"testing"
)

// Addr returns "tcp://127.0.0.1:<port>" for a port that was free a moment
// ago: the listener that found it is closed before Addr returns (unlike a
// zmq close, synchronously). Another process may take the port meanwhile,
// as with any such helper; the port chooser is the kernel's.
func Addr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
