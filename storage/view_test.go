package storage

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengris/scaler/transport"
)

// These tests run the server in a child process, so transport.HeldFrames
// counts the client's frames only.

// awaitHeld polls until the process holds want received frames (a frame
// is released by the client's demultiplexer goroutine, a moment after the
// caller got its answer).
func awaitHeld(t *testing.T, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for transport.HeldFrames() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d held frames, want %d", what, transport.HeldFrames(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// GetView hands out the buffer the reply was received into: the View holds
// one frame until Release, and a copy is nowhere made (Bytes is that frame).
// Get returns Go memory and holds nothing.
func TestGetViewHoldsTheReceivedFrame(t *testing.T) {
	c, ctx := startViewTest(t)
	big, small := bigPayload(2<<20, 7), []byte("small stays in Go memory")
	mustSet(t, ctx, c, oid("big"), big)
	mustSet(t, ctx, c, oid("small"), small)

	v, err := c.GetView(ctx, oid("big"))
	if err != nil || !bytes.Equal(v.Bytes(), big) {
		t.Fatalf("GetView: %d bytes, %v", len(v.Bytes()), err)
	}
	awaitHeld(t, 1, "with a view")
	if !transport.Retain(v.Bytes()) {
		t.Fatal("the view's bytes are not the received frame")
	}
	transport.Release(v.Bytes())

	// Forwarding the view: the set sends the frame itself; releasing right
	// after Set is allowed (the transport holds its own reference).
	mustSet(t, ctx, c, oid("copy-of-big"), v.Bytes())
	v.Release()
	v.Release() // idempotent
	if v.Bytes() != nil {
		t.Fatal("Bytes after Release")
	}
	awaitHeld(t, 0, "after Release")
	var nilView *View
	nilView.Release()

	got, err := c.Get(ctx, oid("copy-of-big"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("get of the forwarded object: %d bytes, %v", len(got), err)
	}
	if transport.Retain(got) {
		t.Fatal("Get returned a held frame")
	}
	awaitHeld(t, 0, "after Get")

	sv, err := c.GetView(ctx, oid("small"))
	if err != nil || !bytes.Equal(sv.Bytes(), small) {
		t.Fatalf("GetView small: %q, %v", sv.Bytes(), err)
	}
	sv.Release()
	if _, err := c.GetView(ctx, nil); err == nil || !strings.Contains(err.Error(), "object_id") {
		t.Fatalf("GetView with an empty id: %v", err)
	}
	awaitHeld(t, 0, "at the end")
}

// A reply nobody takes any more is freed: a GetView whose context ends
// while it waits on the server (its reply comes later), and replies that
// race with their context's end.
func TestGetViewAbandonedRepliesFreed(t *testing.T) {
	c, ctx := startViewTest(t)
	big := bigPayload(1<<20, 3)

	// Parked on the server, abandoned, then answered.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, err := c.GetView(short, oid("later")); err == nil {
		t.Fatal("GetView of a missing object returned")
	}
	cancel()
	mustSet(t, ctx, c, oid("later"), big)
	awaitWaiting(t, c, 0, "the abandoned get answered")
	awaitHeld(t, 0, "after the abandoned reply")

	// Contexts that end around the time the reply arrives.
	mustSet(t, ctx, c, oid("race"), big)
	for i := 0; i < 200; i++ {
		rctx, cancel := context.WithTimeout(ctx, time.Duration(i%20)*50*time.Microsecond)
		v, err := c.GetView(rctx, oid("race"))
		cancel()
		if err == nil {
			if !bytes.Equal(v.Bytes(), big) {
				t.Fatalf("round %d: wrong content", i)
			}
			v.Release()
		}
	}
	if _, err := c.Stats(ctx); err != nil { // every reply before this one is in
		t.Fatal(err)
	}
	awaitHeld(t, 0, "after the racing gets")
}

// The narrow case of the above, made certain: the demultiplexer has taken
// the call and delivered its reply when the caller's context ends. wait's
// select then picks either; whichever it picks, the frame must be released
// exactly once (by the caller, or by wait when it returns the ctx error).
func TestWaitReleasesAReplyDeliveredAsCtxEnds(t *testing.T) {
	c, ctx := startViewTest(t)
	mustSet(t, ctx, c, oid("x"), bigPayload(1<<20, 5))
	v, err := c.GetView(ctx, oid("x"))
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	byCtx := 0
	for i := 0; i < 64; i++ {
		transport.Retain(v.Bytes()) // the delivered reply's reference
		ch := make(chan Result, 1)
		ch <- Result{Data: v.Bytes()}
		const taken = 1 << 62 // an id not pending: the demultiplexer had it
		if r := c.wait(cancelled, taken, ch); r.Err == nil {
			transport.Release(r.Data) // the caller got it and releases it
		} else {
			byCtx++
		}
	}
	v.Release()
	awaitHeld(t, 0, fmt.Sprintf("after %d of 64 replies were dropped by wait", byCtx))
}

// Frees under load: goroutines fetch views, forward them, overwrite and
// delete the objects they read, and release; every view must keep its
// content until its own Release (checked byte for byte), whatever the
// others free meanwhile, and nothing may stay held. Run with -race.
func TestGetViewFreesUnderLoad(t *testing.T) {
	c, ctx := startViewTest(t)
	const workers, rounds, size = 4, 12, 1 << 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			id, fwd := oid(fmt.Sprint("load", w)), oid(fmt.Sprint("fwd", w))
			var kept []*View
			var want [][]byte
			defer func() { // also when a round fails: no leak to blame on later tests
				for _, k := range kept {
					k.Release()
				}
			}()
			for r := 0; r < rounds; r++ {
				p := bigPayload(size, byte(w*rounds+r))
				if err := c.Set(ctx, id, p); err != nil {
					errs <- err
					return
				}
				v, err := c.GetView(ctx, id)
				if err != nil {
					errs <- err
					return
				}
				kept, want = append(kept, v), append(want, p)
				// Free the stored object and overwrite the forward while
				// views of both are alive.
				if err := c.Set(ctx, fwd, v.Bytes()); err != nil {
					errs <- err
					return
				}
				if _, err := c.Delete(ctx, id); err != nil {
					errs <- err
					return
				}
				if r%3 == 2 { // release some early, out of order
					kept[0].Release()
					kept, want = kept[1:], want[1:]
				}
				for i, k := range kept {
					if !bytes.Equal(k.Bytes(), want[i]) {
						errs <- fmt.Errorf("worker %d round %d: view %d changed", w, r, i)
						return
					}
				}
			}
			got, err := c.Get(ctx, fwd)
			if err != nil || !bytes.Equal(got, want[len(want)-1]) {
				errs <- fmt.Errorf("worker %d: forwarded object: %d bytes, %v", w, len(got), err)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	awaitHeld(t, 0, "after the load")
}

// Closing the client with views out leaves them valid until released.
func TestGetViewOutlivesClose(t *testing.T) {
	awaitHeld(t, 0, "before the test")
	h := startHelper(t)
	c, err := Dial(h.addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	big := bigPayload(1<<20, 9)
	mustSet(t, ctx, c, oid("x"), big)
	v, err := c.GetView(ctx, oid("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.Bytes(), big) {
		t.Fatal("view changed by Close")
	}
	v.Release()
	awaitHeld(t, 0, "after Release")
	if _, err := c.GetView(ctx, oid("x")); err == nil {
		t.Fatal("GetView on a closed client")
	}
}

// startViewTest checks no view is held before the test, starts a storage
// helper process and connects a client to it.
func startViewTest(t *testing.T) (*Client, context.Context) {
	t.Helper()
	awaitHeld(t, 0, "before the test")
	h := startHelper(t)
	return dial(t, h.addr), testCtx(t)
}
