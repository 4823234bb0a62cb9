package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Sets handed out never overlap, although nothing binds them: 300 sets of
// 3 in a range of 12,000 ports would overlap almost surely if picked
// independently.
func TestPortsDisjoint(t *testing.T) {
	seen := map[int]int{}
	for i := range 300 {
		p := Ports(t, 3)
		for q := p; q < p+3; q++ {
			if j, dup := seen[q]; dup {
				t.Fatalf("port %d handed out in set %d and again in set %d", q, j, i)
			}
			seen[q] = i
		}
	}
}

// A port taken by a listener is not handed out.
func TestPortsAreFree(t *testing.T) {
	for range 20 {
		p := Ports(t, 2)
		for q := p; q < p+2; q++ {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(q)))
			if err != nil {
				t.Fatalf("port %d from Ports: %v", q, err)
			}
			defer ln.Close()
		}
	}
}
