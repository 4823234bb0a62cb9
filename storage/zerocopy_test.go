package storage

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengris/scaler/transport"
)

// bigPayload is larger than transport.ZeroCopyMin, so the server keeps it
// in the libzmq message it arrived in.
func bigPayload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed
	}
	return b
}

// The server holds large payloads in libzmq memory: every way an object
// goes away (overwrite, delete, the last of its duplicates, a refused set,
// the server stopping with objects and unread requests) must free it once.
func TestLargePayloadsFreed(t *testing.T) {
	if got := transport.HeldFrames(); got != 0 {
		t.Fatalf("%d held frames before the test: an earlier server leaked", got)
	}
	const size = 1 << 20
	srv, err := NewServer(Config{Address: "tcp://127.0.0.1:0", MaxMemory: 4 * size}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	c := dial(t, srv.Addr())
	tctx := testCtx(t)
	a, b, d := oid("a"), oid("b"), oid("d")
	pa, pb := bigPayload(size, 1), bigPayload(size, 2)

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Set(tctx, a, pa))
	must(c.Set(tctx, a, pb)) // overwrite frees pa's message
	must(c.Duplicate(tctx, d, a))
	must(c.Set(tctx, b, pa))
	if got := transport.HeldFrames(); got != 2 {
		t.Fatalf("held frames = %d, want 2 (pb shared by a and d, pa under b)", got)
	}
	if err := c.Set(tctx, oid("huge"), bigPayload(3*size, 3)); err == nil {
		t.Fatal("set over the memory limit accepted")
	}
	if existed, err := c.Delete(tctx, a); err != nil || !existed {
		t.Fatalf("delete a: %v %v", existed, err)
	}
	if got, err := c.Get(tctx, d); err != nil || !bytes.Equal(got, pb) {
		t.Fatalf("get d after deleting a: %d bytes, %v", len(got), err)
	}
	if got, err := c.GetMax(tctx, d, 100); err != nil || !bytes.Equal(got, pb[:100]) {
		t.Fatalf("truncated get: %d bytes, %v", len(got), err)
	}
	if got := transport.HeldFrames(); got != 2 {
		t.Fatalf("held frames = %d, want 2 (pb under d, pa under b)", got)
	}
	if existed, err := c.Delete(tctx, d); err != nil || !existed {
		t.Fatalf("delete d: %v %v", existed, err)
	}
	if got := transport.HeldFrames(); got != 1 {
		t.Fatalf("held frames = %d, want 1 (pa under b)", got)
	}
	// Requests still in flight when the server stops are released too.
	for i := 0; i < 8; i++ {
		c.SetAsync(oid("late"), pa)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not return")
	}
	if got := transport.HeldFrames(); got != 0 {
		t.Fatalf("held frames after the server stopped = %d, want 0", got)
	}
}

// A get's reply shares the stored message; deleting or overwriting the
// object while that reply is still queued must not free it under the
// transport.
func TestGetThenDeleteKeepsReplyIntact(t *testing.T) {
	srv := startServer(t, 0)
	c := dial(t, srv.Addr())
	ctx := testCtx(t)
	id := oid("x")
	for round := 0; round < 20; round++ {
		want := bigPayload(2<<20, byte(round))
		if err := c.Set(ctx, id, want); err != nil {
			t.Fatal(err)
		}
		gets := make([]<-chan Result, 4)
		for i := range gets {
			gets[i] = c.GetAsync(id, 0)
		}
		overwrite := c.SetAsync(id, bigPayload(2<<20, byte(round)+100))
		del := c.DeleteAsync(id)
		for i, ch := range gets {
			if r := await(t, ch); r.Err != nil || !bytes.Equal(r.Data, want) {
				t.Fatalf("round %d get %d: %d bytes, %v", round, i, len(r.Data), r.Err)
			}
		}
		if r := await(t, overwrite); r.Err != nil {
			t.Fatal(r.Err)
		}
		if r := await(t, del); r.Err != nil || !r.Existed {
			t.Fatalf("delete: %+v", r)
		}
	}
}
