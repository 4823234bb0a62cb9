package freeport

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Ports handed out are picked in [portLow, portHigh): below Linux's
// ephemeral range (32768 and up), so that no outgoing connection takes one
// between the check and the bind; the same range as the Python tests'
// free_port.
const (
	portLow  = 20000
	portHigh = 32000
)

var (
	portsMu sync.Mutex
	given   = map[int]bool{} // every port handed out by this process
)

// Ports returns P such that P..P+n-1 were free on 127.0.0.1 a moment
// ago and overlap no port Ports returned before in this process: a
// test that asks for a scheduler's three ports (P, P+1 object storage, P+2
// monitor) and then for a web port gets four different ports although
// nothing listens on them yet. Another process may still take one; tests
// that can bind port 0 should do that instead.
func Ports(t testing.TB, n int) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := portLow + rand.IntN(portHigh-portLow-n)
		ok := true
		for q := p; q < p+n && ok; q++ {
			ok = !given[q] && bindable(q)
		}
		if ok {
			for q := p; q < p+n; q++ {
				given[q] = true
			}
			return p
		}
	}
	t.Fatalf("no %d consecutive free ports on 127.0.0.1 in %d-%d", n, portLow, portHigh)
	return 0
}

func bindable(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}
