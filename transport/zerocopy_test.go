package transport

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/opengris/scaler/internal/scalertest/wait"
)

func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], (uint64(i)+seed)*0x9e3779b97f4a7c15)
	}
	return b
}

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	wait.Until(t, 10*time.Second, what, cond)
}

// Large frames from Go memory go out pinned, without a copy; the pins are
// dropped once libzmq has written them.
func TestZeroCopySendFromGoMemory(t *testing.T) {
	r := bind(t, Router, Options{})
	d := connect(t, Dealer, r.Addr(), Options{})
	sizes := []int{ZeroCopyMin - 1, ZeroCopyMin, 1 << 20, 8<<20 + 3}
	var frames [][]byte
	for i, n := range sizes {
		frames = append(frames, pattern(n, uint64(i)))
	}
	mustSend(t, d, frames...)
	msg := recvWithin(t, r, 10*time.Second)
	if len(msg) != 1+len(sizes) {
		t.Fatalf("got %d frames", len(msg))
	}
	for i := range sizes {
		if !bytes.Equal(msg[1+i], frames[i]) {
			t.Fatalf("frame %d (%d bytes) corrupted", i, sizes[i])
		}
	}
	eventually(t, "pinned frames to be released", func() bool { return pinnedFrames() == 0 })
}

// A large frame from a dealer that never connects stays pinned until Close
// ends the linger, and is then released.
func TestZeroCopyPinnedReleasedOnClose(t *testing.T) {
	d, err := Connect(Dealer, "tcp://127.0.0.1:1", Options{}) // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	mustSend(t, d, pattern(1<<20, 1))
	eventually(t, "the frame to be handed to zmq", func() bool { return pinnedFrames() == 1 })
	_ = d.Close()
	eventually(t, "the pin to be dropped after linger", func() bool { return pinnedFrames() == 0 })
}

// With ZeroCopyRecv, large frames are held views of libzmq messages. Sending
// one shares the message; releasing it right after Send is safe.
func TestZeroCopyRecvHeldFrames(t *testing.T) {
	base := HeldFrames()
	r := bind(t, Router, Options{ZeroCopyRecv: true})
	d := connect(t, Dealer, r.Addr(), Options{})
	big := pattern(4<<20, 7)
	small := pattern(ZeroCopyMin-1, 8)
	mustSend(t, d, []byte("head"), big, small)
	msg := recvWithin(t, r, 10*time.Second)
	if len(msg) != 4 || string(msg[1]) != "head" || !bytes.Equal(msg[2], big) || !bytes.Equal(msg[3], small) {
		t.Fatalf("bad message: %d frames", len(msg))
	}
	if got := HeldFrames() - base; got != 1 {
		t.Fatalf("held frames: %d, want 1 (only the large one)", got)
	}
	view := msg[2]
	if !Retain(view) || Retain(big) || Retain(small) || Retain(msg[3]) {
		t.Fatal("Retain must accept exactly the held view")
	}
	Release(view) // undo the Retain above

	// Whole frame (shared) and a large prefix (copied) back to the dealer,
	// then drop the receiver's reference before the owner has sent them.
	prefix := view[:ZeroCopyMin+5]
	mustSend(t, r, msg[0], view, prefix)
	ReleaseMessage(msg)
	back := recvWithin(t, d, 10*time.Second)
	if len(back) != 2 || !bytes.Equal(back[0], big) || !bytes.Equal(back[1], big[:ZeroCopyMin+5]) {
		t.Fatalf("echo of held frame corrupted: %d frames", len(back))
	}
	eventually(t, "the held frame to be freed", func() bool { return HeldFrames() == base })
}

// Held frames queued on an endpoint that cannot send them are released
// when it closes.
func TestZeroCopyHeldReleasedOnClose(t *testing.T) {
	base := HeldFrames()
	r := bind(t, Router, Options{ZeroCopyRecv: true})
	d := connect(t, Dealer, r.Addr(), Options{})
	mustSend(t, d, pattern(1<<20, 3))
	msg := recvWithin(t, r, 10*time.Second)

	stuck, err := Bind(Dealer, "tcp://127.0.0.1:0", Options{}) // no peer: sends wait
	if err != nil {
		t.Fatal(err)
	}
	mustSend(t, stuck, msg[1])
	mustSend(t, stuck, []byte("x"), msg[1])
	ReleaseMessage(msg)
	if HeldFrames() != base+1 {
		t.Fatalf("held frames: %d, want %d", HeldFrames(), base+1)
	}
	_ = stuck.Close() // gives up after the linger
	if HeldFrames() != base {
		t.Fatalf("held frames after Close: %d, want %d", HeldFrames(), base)
	}
}

// Messages left in the Recv channel at Close can still be released.
func TestZeroCopyRecvDrainAfterClose(t *testing.T) {
	base := HeldFrames()
	r, err := Bind(Router, "tcp://127.0.0.1:0", Options{ZeroCopyRecv: true})
	if err != nil {
		t.Fatal(err)
	}
	d := connect(t, Dealer, r.Addr(), Options{})
	for i := 0; i < 3; i++ {
		mustSend(t, d, pattern(256<<10, uint64(i)))
	}
	eventually(t, "three held frames", func() bool { return HeldFrames() == base+3 })
	_ = r.Close()
	for msg := range r.Recv() {
		ReleaseMessage(msg)
	}
	if HeldFrames() != base {
		t.Fatalf("held frames: %d, want %d", HeldFrames(), base)
	}
}

// Own copies a held frame (or a prefix of one) into Go memory that stays
// valid after the frame is released, and leaves other slices as they are.
func TestOwn(t *testing.T) {
	base := HeldFrames()
	r := bind(t, Router, Options{ZeroCopyRecv: true})
	d := connect(t, Dealer, r.Addr(), Options{})
	big := pattern(1<<20, 3)
	mustSend(t, d, big)
	msg := recvWithin(t, r, 10*time.Second)
	held := msg[1]
	own, prefix := Own(held), Own(held[:ZeroCopyMin])
	if &own[0] == &held[0] || Retain(own) || Retain(prefix) {
		t.Fatal("Own returned the held frame, not a copy")
	}
	ReleaseMessage(msg)
	if got := HeldFrames() - base; got != 0 {
		t.Fatalf("held frames after release: %d", got)
	}
	if !bytes.Equal(own, big) || !bytes.Equal(prefix, big[:ZeroCopyMin]) {
		t.Fatal("the copy changed after the frame was released")
	}
	plain := []byte("not held")
	if got := Own(plain); &got[0] != &plain[0] {
		t.Fatal("Own copied a slice that is not held")
	}
	if Own(nil) != nil {
		t.Fatal("Own(nil) != nil")
	}
}
