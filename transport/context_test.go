package transport

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opengris/scaler/internal/procstat"
)

// TestInitSetsIOThreads checks in a fresh process that the io threads given
// to Init are the ones libzmq runs once a socket starts them.
func TestInitSetsIOThreads(t *testing.T) {
	for _, n := range []int{1, 3} {
		out := runChild(t, "TestInitChild", fmt.Sprint(n))
		if want := fmt.Sprintf("io threads: %d\n", n); !strings.Contains(out, want) {
			t.Fatalf("Init(%d): want %q, got:\n%s", n, want, out)
		}
	}
}

// TestInitChild is the child of TestInitSetsIOThreads.
func TestInitChild(t *testing.T) {
	var n int
	fmt.Sscan(childMode(t), &n)
	if err := Init(0); err == nil {
		t.Fatal("Init(0) accepted")
	}
	if err := Init(n); err != nil {
		t.Fatal(err)
	}
	if err := Init(n); err == nil {
		t.Fatal("a second Init accepted")
	}
	openSocket(t, Router, "tcp://127.0.0.1:0", true, Options{})
	fmt.Printf("io threads: %d\n", procstat.WaitThreads(0, "ZMQbg/IO/", n, 30*time.Second))
}
