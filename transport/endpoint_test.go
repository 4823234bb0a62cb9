package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengris/scaler/internal/scalertest/freeport"
)

const testIOThreads = 2

// TestMain runs the package's tests on a context with two io threads, as
// commands would make it; a child process of runChild makes its own.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "" {
		if err := Init(testIOThreads); err != nil {
			fmt.Fprintln(os.Stderr, "transport.Init:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// --- helpers ---

func bind(t testing.TB, typ SocketType, opt Options) *Endpoint {
	t.Helper()
	e, err := Bind(typ, "tcp://127.0.0.1:0", opt)
	if err != nil {
		t.Fatalf("Bind %v: %v", typ, err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func connect(t testing.TB, typ SocketType, addr string, opt Options) *Endpoint {
	t.Helper()
	e, err := Connect(typ, addr, opt)
	if err != nil {
		t.Fatalf("Connect %v %s: %v", typ, addr, err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func recvWithin(t testing.TB, e *Endpoint, d time.Duration) [][]byte {
	t.Helper()
	select {
	case msg, ok := <-e.Recv():
		if !ok {
			t.Fatalf("Recv closed: %v", e.Err())
		}
		return msg
	case <-time.After(d):
		t.Fatalf("no message on %v %s within %v", e.Type(), e.Addr(), d)
	}
	return nil
}

func mustSend(t testing.TB, e *Endpoint, frames ...[]byte) {
	t.Helper()
	if err := e.Send(frames...); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// echo runs a ROUTER loop that sends every message back to its sender.
func echo(r *Endpoint) {
	go func() {
		for msg := range r.Recv() {
			_ = r.Send(msg...)
		}
	}()
}

// --- tests ---

// TestInitAfterFirstSocketRefused: once a socket runs on the context, Init
// cannot change its io threads any more, and says so.
func TestInitAfterFirstSocketRefused(t *testing.T) {
	bind(t, Router, Options{})
	n, err := zctx.GetIoThreads()
	if err != nil || n != testIOThreads {
		t.Fatalf("io threads = %d, %v; want %d", n, err, testIOThreads)
	}
	if err := Init(4); err == nil || !strings.Contains(err.Error(), "before the first socket") {
		t.Fatalf("Init after first socket: %v, want error", err)
	}
}

func TestBindPortZeroReportsRealPort(t *testing.T) {
	r := bind(t, Router, Options{})
	scheme, host, port, err := ParseAddress(r.Addr())
	if err != nil || scheme != "tcp" || host != "127.0.0.1" || port == 0 {
		t.Fatalf("Addr() = %q (parsed %q %q %d, %v), want tcp://127.0.0.1:<non-zero>", r.Addr(), scheme, host, port, err)
	}
	d := connect(t, Dealer, r.Addr(), Options{})
	mustSend(t, d, []byte("hi"))
	if msg := recvWithin(t, r, 5*time.Second); len(msg) != 2 || string(msg[1]) != "hi" {
		t.Fatalf("got %q", msg)
	}
}

func TestBindErrors(t *testing.T) {
	r := bind(t, Router, Options{})
	for _, addr := range []string{r.Addr(), "tcp://127.0.0.1:70000", "nope", "tcp://[::1:3"} {
		if e, err := Bind(Router, addr, Options{}); err == nil {
			_ = e.Close()
			t.Errorf("Bind(%q) succeeded", addr)
		}
	}
	if _, err := Bind(SocketType(42), "tcp://127.0.0.1:0", Options{}); err == nil {
		t.Error("Bind with unknown socket type succeeded")
	}
	if _, err := Connect(Dealer, "tcp://127.0.0.1:0", Options{RecvBuffer: -1}); err == nil {
		t.Error("negative RecvBuffer accepted")
	}
}

// 100,000 messages DEALER -> ROUTER, each answered; nothing lost or reordered.
func TestRouterDealerSequence(t *testing.T) {
	const n = 100_000
	r := bind(t, Router, Options{})
	d := connect(t, Dealer, r.Addr(), Options{Identity: []byte("dealer-1")})

	routerErr := make(chan error, 1)
	go func() {
		for want := uint64(0); want < n; want++ {
			msg, ok := <-r.Recv()
			if !ok {
				routerErr <- fmt.Errorf("router Recv closed at %d", want)
				return
			}
			if len(msg) != 3 || string(msg[0]) != "dealer-1" || string(msg[1]) != "seq" {
				routerErr <- fmt.Errorf("router got %q", msg)
				return
			}
			if got := binary.BigEndian.Uint64(msg[2]); got != want {
				routerErr <- fmt.Errorf("router got seq %d, want %d", got, want)
				return
			}
			if err := r.Send(msg[0], []byte("ack"), msg[2]); err != nil {
				routerErr <- err
				return
			}
		}
		routerErr <- nil
	}()

	for i := uint64(0); i < n; i++ {
		mustSend(t, d, []byte("seq"), u64(i))
	}
	deadline := time.After(30 * time.Second)
	routerDone := routerErr
	for want := uint64(0); want < n; {
		select {
		case msg := <-d.Recv():
			if len(msg) != 2 || string(msg[0]) != "ack" || binary.BigEndian.Uint64(msg[1]) != want {
				t.Fatalf("dealer got %q, want ack %d", msg, want)
			}
			want++
		case err := <-routerDone:
			if err != nil {
				t.Fatal(err)
			}
			routerDone = nil // router saw all n in order
		case <-deadline:
			t.Fatalf("timeout after %d replies", want)
		}
	}
	if routerDone != nil {
		if err := <-routerDone; err != nil {
			t.Fatal(err)
		}
	}
}

func TestMultipleDealersRouted(t *testing.T) {
	const dealers, perDealer = 8, 500
	r := bind(t, Router, Options{})
	echo(r)

	ds := make([]*Endpoint, dealers)
	for i := range ds {
		ds[i] = connect(t, Dealer, r.Addr(), Options{Identity: []byte(fmt.Sprintf("worker-%d", i))})
	}
	inParallel(t, dealers, func(i int) error {
		d, id := ds[i], fmt.Sprintf("worker-%d", i)
		for s := range perDealer {
			if err := d.Send([]byte(id), u64(uint64(s))); err != nil {
				return err
			}
		}
		timeout := time.After(20 * time.Second)
		for s := range perDealer {
			select {
			case msg := <-d.Recv():
				if len(msg) != 2 || string(msg[0]) != id || binary.BigEndian.Uint64(msg[1]) != uint64(s) {
					return fmt.Errorf("%s got %q, want seq %d", id, msg, s)
				}
			case <-timeout:
				return fmt.Errorf("%s: timeout at %d", id, s)
			}
		}
		return nil
	})
}

// inParallel runs f(0), ..., f(n-1) in n goroutines, waits for them all and
// reports every error they return.
func inParallel(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRouterToUnknownPeerIsDropped(t *testing.T) {
	r := bind(t, Router, Options{})
	d := connect(t, Dealer, r.Addr(), Options{Identity: []byte("known")})
	mustSend(t, r, []byte("nobody"), []byte("lost"))
	mustSend(t, d, []byte("ping"))
	recvWithin(t, r, 5*time.Second)
	mustSend(t, r, []byte("known"), []byte("pong"))
	if msg := recvWithin(t, d, 5*time.Second); string(msg[0]) != "pong" {
		t.Fatalf("got %q", msg)
	}
}

func TestPubSub(t *testing.T) {
	tests := []struct {
		name      string
		subscribe [][]byte
		want      []string // topics expected, in order, of the published a/b/c stream
	}{
		{name: "everything", subscribe: nil, want: []string{"a", "b", "c", "a", "b", "c"}},
		{name: "one topic", subscribe: [][]byte{[]byte("b")}, want: []string{"b", "b"}},
		{name: "two topics", subscribe: [][]byte{[]byte("a"), []byte("c")}, want: []string{"a", "c", "a", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := bind(t, Pub, Options{})
			topics := tt.subscribe // nil: everything
			if topics != nil {
				topics = append(topics, []byte("hello"))
			}
			sub := connect(t, Sub, pub.Addr(), Options{Subscribe: topics})

			// Slow joiner: publish until the subscription is in place.
			deadline := time.Now().Add(5 * time.Second)
		joined:
			for {
				mustSend(t, pub, []byte("hello"))
				select {
				case <-sub.Recv():
					break joined
				case <-time.After(10 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatal("subscriber never joined")
				}
			}
			for range 2 {
				for _, topic := range []string{"a", "b", "c"} {
					mustSend(t, pub, []byte(topic), []byte("payload-"+topic))
				}
			}
			mustSend(t, pub, []byte("hello"), []byte("end"))
			var got []string
			for {
				msg := recvWithin(t, sub, 5*time.Second)
				if string(msg[0]) == "hello" {
					if len(msg) == 2 && string(msg[1]) == "end" {
						break
					}
					continue // late slow-joiner probes
				}
				if len(msg) != 2 || string(msg[1]) != "payload-"+string(msg[0]) {
					t.Fatalf("bad message %q", msg)
				}
				got = append(got, string(msg[0]))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("topics %v, want %v", got, tt.want)
			}
			if err := sub.Send([]byte("x")); !errors.Is(err, ErrCannotSend) {
				t.Fatalf("Send on SUB = %v, want ErrCannotSend", err)
			}
		})
	}
}

// Connect before Bind: zmq connects lazily; the DEALER queues until the ROUTER exists.
func TestConnectBeforeBind(t *testing.T) {
	addr := freeport.Addr(t)
	d := connect(t, Dealer, addr, Options{Identity: []byte("early")})
	for i := range 10 {
		mustSend(t, d, u64(uint64(i)))
	}
	time.Sleep(50 * time.Millisecond) // let a connect attempt fail first
	r, err := Bind(Router, addr, Options{})
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	for i := range 10 {
		msg := recvWithin(t, r, 5*time.Second)
		if string(msg[0]) != "early" || binary.BigEndian.Uint64(msg[1]) != uint64(i) {
			t.Fatalf("got %q, want seq %d", msg, i)
		}
	}
}

// A bound DEALER without peers makes zmq refuse sends (EAGAIN); the owner
// must keep them and resume when a peer connects.
func TestBoundDealerQueuesUntilPeer(t *testing.T) {
	d := bind(t, Dealer, Options{})
	for i := range 5 {
		mustSend(t, d, u64(uint64(i)))
	}
	time.Sleep(20 * time.Millisecond)
	r := connect(t, Router, d.Addr(), Options{})
	for i := range 5 {
		msg := recvWithin(t, r, 5*time.Second)
		if len(msg) != 2 || binary.BigEndian.Uint64(msg[1]) != uint64(i) {
			t.Fatalf("got %q, want seq %d", msg, i)
		}
	}
}

func TestConcurrentSend(t *testing.T) {
	const senders, perSender = 16, 2000
	r := bind(t, Router, Options{})
	d := connect(t, Dealer, r.Addr(), Options{})

	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range perSender {
				if err := d.Send(u64(uint64(g)), u64(uint64(s))); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
			}
		}()
	}
	next := make([]uint64, senders)
	timeout := time.After(30 * time.Second)
	for range senders * perSender {
		select {
		case msg := <-r.Recv():
			g, s := binary.BigEndian.Uint64(msg[1]), binary.BigEndian.Uint64(msg[2])
			if s != next[g] {
				t.Fatalf("sender %d: got seq %d, want %d", g, s, next[g])
			}
			next[g]++
		case <-timeout:
			t.Fatalf("timeout; progress %v", next)
		}
	}
	wg.Wait()
}

func TestCloseWhileSending(t *testing.T) {
	r := bind(t, Router, Options{})
	d, err := Connect(Dealer, r.Addr(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; ; i++ {
				err := d.Send([]byte("x"))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Send: %v", err)
					return
				}
				if i > 10_000_000 {
					t.Error("Send never returned ErrClosed")
					return
				}
			}
		}()
	}
	close(start)
	time.Sleep(20 * time.Millisecond)
	var cwg sync.WaitGroup
	for range 3 { // concurrent Close calls
		cwg.Add(1)
		go func() { defer cwg.Done(); _ = d.Close() }()
	}
	cwg.Wait()
	wg.Wait()
	if err := d.Send([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	if _, ok := <-d.Recv(); ok {
		t.Fatal("Recv not closed after Close")
	}
	if err := d.Err(); err != nil {
		t.Fatalf("Err after Close = %v", err)
	}
}

// The owner is blocked on a full Recv channel: Send must still go out and
// Close must still return.
func TestFullRecvChannel(t *testing.T) {
	r := bind(t, Router, Options{})
	d, err := Connect(Dealer, r.Addr(), Options{Identity: []byte("slow"), RecvBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	mustSend(t, d, []byte("hello"))
	recvWithin(t, r, 5*time.Second)
	for i := range 100 {
		mustSend(t, r, []byte("slow"), u64(uint64(i)))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(d.Recv()) < cap(d.Recv()) {
		if time.Now().After(deadline) {
			t.Fatal("Recv channel never filled")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond) // owner now blocked delivering message 1

	mustSend(t, d, []byte("still sending"))
	if msg := recvWithin(t, r, 5*time.Second); string(msg[1]) != "still sending" {
		t.Fatalf("got %q", msg)
	}

	closed := make(chan error)
	go func() { closed <- d.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close blocked on an unread Recv channel")
	}
	n := 0
	for range d.Recv() { // buffered messages, then closed
		n++
	}
	if n > 1 {
		t.Fatalf("%d messages after Close, want at most the buffered one", n)
	}
}

func TestDoubleCloseAndSendErrors(t *testing.T) {
	r := bind(t, Router, Options{})
	if err := r.Send(); !errors.Is(err, ErrEmptyMessage) {
		t.Fatalf("Send() = %v, want ErrEmptyMessage", err)
	}
	for range 2 {
		if err := r.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if err := r.Send([]byte("a"), []byte("b")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v", err)
	}
}

// Messages queued just before Close are still delivered (linger).
func TestCloseFlushesQueuedSends(t *testing.T) {
	r := bind(t, Router, Options{})
	d, err := Connect(Dealer, r.Addr(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range n {
		mustSend(t, d, u64(uint64(i)))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		msg := recvWithin(t, r, 5*time.Second)
		if binary.BigEndian.Uint64(msg[1]) != uint64(i) {
			t.Fatalf("got %q, want %d", msg, i)
		}
	}
}

func TestLargeFrameRoundTrip(t *testing.T) {
	big := make([]byte, 64<<20)
	for i := 0; i < len(big); i += 8 {
		binary.LittleEndian.PutUint64(big[i:], uint64(i)*0x9e3779b97f4a7c15)
	}
	r := bind(t, Router, Options{})
	echo(r)
	d := connect(t, Dealer, r.Addr(), Options{})
	mustSend(t, d, []byte("head"), big, []byte("tail"))
	msg := recvWithin(t, d, 30*time.Second)
	if len(msg) != 3 || string(msg[0]) != "head" || string(msg[2]) != "tail" {
		t.Fatalf("bad frames: %d", len(msg))
	}
	if !bytes.Equal(msg[1], big) {
		t.Fatalf("64 MiB frame corrupted (len %d)", len(msg[1]))
	}
}

func TestEmptyFrames(t *testing.T) {
	r := bind(t, Router, Options{})
	echo(r)
	d := connect(t, Dealer, r.Addr(), Options{})
	mustSend(t, d, nil, []byte{}, []byte("x"), nil)
	msg := recvWithin(t, d, 5*time.Second)
	if len(msg) != 4 || len(msg[0]) != 0 || len(msg[1]) != 0 || string(msg[2]) != "x" || len(msg[3]) != 0 {
		t.Fatalf("got %q", msg)
	}
}

func TestIPv6Loopback(t *testing.T) {
	r, err := Bind(Router, "tcp://[::1]:0", Options{})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if !strings.HasPrefix(r.Addr(), "tcp://[::1]:") {
		t.Fatalf("Addr() = %q", r.Addr())
	}
	echo(r)
	d := connect(t, Dealer, r.Addr(), Options{})
	mustSend(t, d, []byte("v6"))
	if msg := recvWithin(t, d, 5*time.Second); string(msg[0]) != "v6" {
		t.Fatalf("got %q", msg)
	}
}

func TestInproc(t *testing.T) {
	r, err := Bind(Router, "inproc://transport-test", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	echo(r)
	d := connect(t, Dealer, "inproc://transport-test", Options{})
	mustSend(t, d, []byte("in"))
	if msg := recvWithin(t, d, 5*time.Second); string(msg[0]) != "in" {
		t.Fatalf("got %q", msg)
	}
}
