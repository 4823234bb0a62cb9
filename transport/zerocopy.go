package transport

// Zero-copy paths for large frames (at least ZeroCopyMin bytes).
//
// pebbe/zmq4 copies every frame twice on its way through a process: zmq_send
// copies the Go slice into a new zmq message, and a receive copies the zmq
// message into a new (zeroed) Go slice. For a 64 MiB object that goes
// client -> storage server -> client that was four user-space copies plus
// two zeroings, against no copies at all in libzmq itself, which reads large
// messages from the kernel straight into their buffer and writes them from
// it. This file removes them, calling libzmq directly on the socket handle
// (zmqhandle.go):
//
//   - Sending a large frame from Go memory: the frame is pinned
//     (runtime.Pinner, so C may keep the pointer) and handed to libzmq with
//     zmq_msg_init_data; libzmq calls back (transportUnpin) when it no longer
//     needs the bytes, and only then is the frame unpinned. Send's contract
//     already forbids changing frames after Send.
//   - Receiving on an endpoint with Options.ZeroCopyRecv: a large frame is
//     delivered as a view of the libzmq message's memory, which the
//     transport holds (see Retain and Release). Sending such a held frame
//     shares the message (zmq_msg_copy: a reference count, no copy).
//   - Receiving elsewhere: one copy into a Go slice (see recvMessage).

/*
#cgo pkg-config: libzmq
#include "zerocopy.h"
*/
import "C"

import (
	"errors"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	zmq "github.com/pebbe/zmq4"
)

// ZeroCopyMin is the size from which frames are sent without a copy, and
// from which an endpoint with Options.ZeroCopyRecv holds received frames in
// libzmq's memory instead of copying them. Frames this large always have a
// libzmq buffer of their own (smaller ones may share the 8 KiB batch buffer
// they were read into). Round trips of frames up to 1 MiB are bound by
// latency, not copies: thresholds from 16 KiB to 256 KiB measured the same.
const ZeroCopyMin = 64 << 10

var errNoHandle = errors.New("transport: libzmq socket handle unavailable")

// zmqErr turns the errno of a failed libzmq call into a zmq.Errno, as
// pebbe/zmq4 reports errors.
func zmqErr(err error) error {
	var n syscall.Errno
	if errors.As(err, &n) {
		return zmq.Errno(n)
	}
	if err == nil {
		return zmq.Errno(syscall.EINVAL)
	}
	return err
}

// --- Go memory lent to libzmq ---

var pins struct {
	mu   sync.Mutex
	next uintptr
	m    map[uintptr]*runtime.Pinner
}

// pin pins the memory of b for libzmq and returns the id that libzmq hands
// back to transportUnpin.
func pin(b []byte) uintptr {
	p := new(runtime.Pinner)
	p.Pin(unsafe.SliceData(b))
	pins.mu.Lock()
	pins.next++
	id := pins.next
	if pins.m == nil {
		pins.m = make(map[uintptr]*runtime.Pinner)
	}
	pins.m[id] = p
	pins.mu.Unlock()
	return id
}

// transportUnpin is libzmq's free function for pinned frames. It runs on
// whichever thread drops the last reference: a libzmq io thread after the
// bytes are written, or a Go thread inside a failed send. It must not call
// libzmq.
//
//export transportUnpin
func transportUnpin(id C.uintptr_t) {
	pins.mu.Lock()
	p := pins.m[uintptr(id)]
	delete(pins.m, uintptr(id))
	pins.mu.Unlock()
	if p != nil {
		p.Unpin()
	}
}

// pinnedFrames is the number of frames libzmq still holds in Go memory.
func pinnedFrames() int {
	pins.mu.Lock()
	defer pins.mu.Unlock()
	return len(pins.m)
}

// --- libzmq messages held for Go ---

// zmsg holds a zmq_msg_t in Go memory. libzmq keeps no pointer to the
// zmq_msg_t itself (only the message's buffer, which libzmq allocates, is
// shared), and the C pointers inside are invisible to the garbage
// collector, so Go memory is fine and keeps small long-lived mallocs out
// of the C heap that holds the large buffers. [8]uint64 gives the 8-byte
// alignment libzmq asks for.
type zmsg [8]uint64

func init() {
	if unsafe.Sizeof(zmsg{}) != C.sizeof_zmq_msg_t {
		panic("transport: zmq_msg_t is not 64 bytes")
	}
}

func (m *zmsg) c() *C.zmq_msg_t { return (*C.zmq_msg_t)(unsafe.Pointer(m)) }

// heldFrame is a received libzmq message that Go code refers to through a
// view of its bytes. refs counts the owners (the receiver, whoever called
// Retain, and each queued Send); the message is closed when it drops to 0.
type heldFrame struct {
	msg  *zmsg
	size int
	refs int
}

var held struct {
	mu sync.Mutex
	m  map[uintptr]*heldFrame // keyed by the address of the bytes
}

func frameKey(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// hold registers a received message and returns the view of its bytes.
func hold(m *zmsg, p *C.tp_part) []byte {
	b := unsafe.Slice((*byte)(p.data), int(p.size))
	held.mu.Lock()
	if held.m == nil {
		held.m = make(map[uintptr]*heldFrame)
	}
	held.m[frameKey(b)] = &heldFrame{msg: m, size: len(b), refs: 1}
	held.mu.Unlock()
	return b
}

// lookupHeld returns the held frame that b is a view of (all of it or a
// prefix), or nil.
func lookupHeld(b []byte) *heldFrame {
	if len(b) == 0 {
		return nil
	}
	held.mu.Lock()
	defer held.mu.Unlock()
	if f := held.m[frameKey(b)]; f != nil && len(b) <= f.size {
		return f
	}
	return nil
}

// Retain adds a reference to the held frame that b views (the whole frame
// or a prefix of it), so that it stays valid until a matching Release. It
// reports whether b is such a view; for any other slice it does nothing.
//
// A frame received with Options.ZeroCopyRecv that is at least ZeroCopyMin
// bytes long is a view of memory that libzmq allocated. The receiver owns
// one reference, which it must drop with Release (or ReleaseMessage) when
// it is done; using the view after the last Release is a use after free.
// Send takes its own reference to a held frame passed to it, so a frame may
// be released right after Send. Send recognises a held frame by the address
// of its first byte only, and only if the slice is at least ZeroCopyMin
// long: pass other pieces of a held frame to Send as copies.
func Retain(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	held.mu.Lock()
	defer held.mu.Unlock()
	f := held.m[frameKey(b)]
	if f == nil || len(b) > f.size {
		return false
	}
	f.refs++
	return true
}

// Release drops a reference taken by receiving or by Retain. It does
// nothing for a slice that is not a view of a held frame.
func Release(b []byte) {
	if len(b) == 0 {
		return
	}
	held.mu.Lock()
	key := frameKey(b)
	f := held.m[key]
	if f == nil || len(b) > f.size {
		held.mu.Unlock()
		return
	}
	f.refs--
	if f.refs > 0 {
		held.mu.Unlock()
		return
	}
	delete(held.m, key)
	held.mu.Unlock()
	C.tp_msg_close(f.msg.c())
}

// ReleaseMessage releases the held frames of a message received with
// Options.ZeroCopyRecv (frames of at least ZeroCopyMin bytes). A receiver
// that keeps one of them calls Retain on it first.
func ReleaseMessage(msg [][]byte) {
	for _, b := range msg {
		if len(b) >= ZeroCopyMin {
			Release(b)
		}
	}
}

// Own returns b as memory the caller owns: a copy in Go memory of a held
// frame (or a prefix of one), which the caller then releases as before, and
// b itself for any other slice. The copy is made in C, as recvMessage
// copies large frames (a long Go memmove cannot be preempted).
func Own(b []byte) []byte {
	if lookupHeld(b) == nil {
		return b
	}
	out := make([]byte, len(b))
	C.tp_copy(unsafe.Pointer(unsafe.SliceData(out)), unsafe.Pointer(unsafe.SliceData(b)), C.size_t(len(b)))
	return out
}

// HeldFrames returns how many received frames are held in libzmq memory
// (for leak checks in tests).
func HeldFrames() int {
	held.mu.Lock()
	defer held.mu.Unlock()
	return len(held.m)
}

// --- endpoint hooks ---

// retainQueued takes Send's reference on the held frames of a message
// queued by Send; sendFrame or releaseUnsent drops it.
func retainQueued(frames [][]byte) {
	for _, b := range frames {
		if len(b) >= ZeroCopyMin {
			Retain(b)
		}
	}
}

// releaseQueued drops Send's references on frames that will not be sent.
func releaseQueued(frames [][]byte) {
	for _, b := range frames {
		if len(b) >= ZeroCopyMin {
			Release(b)
		}
	}
}

// releaseUnsent drops Send's references on every frame still queued or
// pending when the owner stops.
func (e *Endpoint) releaseUnsent() {
	if e.head < len(e.pending) {
		releaseQueued(e.pending[e.head][e.partial:])
		for _, msg := range e.pending[e.head+1:] {
			releaseQueued(msg)
		}
	}
	for _, msg := range e.queue {
		releaseQueued(msg)
	}
}

// sendFrame hands one frame to zmq. Large frames go without copying: a held
// frame shares its libzmq message, a Go frame is lent pinned. After success
// Send's reference on a held frame is dropped.
func (e *Endpoint) sendFrame(b []byte, flags zmq.Flag) error {
	if len(b) < ZeroCopyMin {
		_, err := e.sock.SendBytes(b, flags)
		return err
	}
	h := socketHandle(e.sock)
	if h == nil {
		_, err := e.sock.SendBytes(b, flags)
		if err == nil {
			Release(b)
		}
		return err
	}
	if f := lookupHeld(b); f != nil {
		// Send's reference keeps f.msg open until Release below.
		if rc, err := C.tp_send_shared(h, f.msg.c(), C.size_t(len(b)), C.int(flags)); rc != 0 {
			return zmqErr(err)
		}
		Release(b)
		return nil
	}
	id := pin(b)
	if rc, err := C.tp_send_pinned(h, unsafe.Pointer(unsafe.SliceData(b)), C.size_t(len(b)), C.uintptr_t(id), C.int(flags)); rc != 0 {
		return zmqErr(err) // libzmq has already unpinned b
	}
	return nil
}

// recvMessage receives one multipart message without blocking. With
// ZeroCopyRecv, frames of at least ZeroCopyMin bytes are held views;
// other frames are copied once into Go memory.
func (e *Endpoint) recvMessage() ([][]byte, error) {
	h := socketHandle(e.sock)
	e.srcfd = -1
	if h == nil {
		return e.sock.RecvMessageBytes(zmq.DONTWAIT)
	}
	var shareMin C.size_t
	if e.zeroCopyRecv {
		shareMin = ZeroCopyMin
	}
	var msg [][]byte
	var p C.tp_part
	m := new(zmsg)
	for {
		// p.data may point into *m (libzmq keeps parts of up to 33 bytes
		// inside the zmq_msg_t): clear it, cgo refuses Go pointers in p.
		p = C.tp_part{}
		if rc, err := C.tp_recv(h, C.int(zmq.DONTWAIT), shareMin, m.c(), &p); rc != 0 {
			if errors.Is(err, syscall.EINTR) {
				continue // as pebbe/zmq4 does; the rest of a message is already queued
			}
			ReleaseMessage(msg)
			return nil, zmqErr(err)
		}
		if e.watch != nil {
			// Any part may carry it (see tp_recv_parts).
			if fd := int(C.tp_msg_srcfd(m.c())); fd >= 0 {
				e.srcfd = fd
			}
		}
		var b []byte
		switch {
		case p.size == 0:
			b = []byte{}
			C.tp_msg_close(m.c())
		case shareMin > 0 && p.size >= shareMin:
			b = hold(m, &p)
			m = new(zmsg)
		case p.size >= ZeroCopyMin:
			// Copy in C: a goroutine inside a long Go memmove cannot be
			// preempted, and the garbage collector spins and signals until
			// it can (measured: ~15% of the CPU for 64 MiB gets); one in a
			// cgo call is scanned at once.
			b = make([]byte, int(p.size))
			C.tp_copy(unsafe.Pointer(unsafe.SliceData(b)), p.data, p.size)
			C.tp_msg_close(m.c())
		default:
			// append allocates without zeroing what it then overwrites.
			b = append([]byte(nil), unsafe.Slice((*byte)(p.data), int(p.size))...)
			C.tp_msg_close(m.c())
		}
		msg = append(msg, b)
		if p.more == 0 {
			return msg, nil
		}
	}
}

// partsBuf is where a Socket receives the parts of a message (see
// recvParts): owned by the Socket's goroutine, reused for every message.
type partsBuf struct {
	msgs  [4]zmsg
	parts [4]C.tp_part
	// srcfd is where the message's source descriptor goes when the
	// receiver asks for it (see closeWatch); -1 when unknown.
	srcfd C.int
}

// recvParts receives one multipart message without blocking, copying every
// part into Go memory, with two cgo calls per message (a receive and a
// close) instead of pebbe/zmq4's five or so per part: on a scheduler that
// reads two-part messages they were a fifth of the loop's CPU. Small parts
// share one allocation (each capped, so an append cannot run into the
// next); parts of at least ZeroCopyMin bytes get their own, copied in C.
// With wantFd, buf.srcfd is set to the message's source descriptor.
func recvParts(h unsafe.Pointer, buf *partsBuf, wantFd bool) ([][]byte, error) {
	var msg [][]byte
	var srcfd *C.int
	if wantFd {
		buf.srcfd = -1
		srcfd = &buf.srcfd
	}
	for {
		// parts may point into msgs (libzmq keeps small parts inside the
		// zmq_msg_t): clear them, cgo refuses Go pointers in an argument.
		buf.parts = [len(buf.parts)]C.tp_part{}
		rc, err := C.tp_recv_parts(h, C.int(zmq.DONTWAIT), buf.msgs[0].c(), &buf.parts[0], C.int(len(buf.parts)), srcfd)
		if rc < 0 {
			if errors.Is(err, syscall.EINTR) {
				continue // as pebbe/zmq4 does
			}
			return nil, zmqErr(err) // only the first call of a message can fail
		}
		n := int(rc)
		small := 0
		for _, p := range buf.parts[:n] {
			if p.size < ZeroCopyMin {
				small += int(p.size)
			}
		}
		backing := make([]byte, 0, small)
		for _, p := range buf.parts[:n] {
			size := int(p.size)
			switch {
			case size == 0:
				msg = append(msg, []byte{})
			case size >= ZeroCopyMin:
				b := make([]byte, size)
				C.tp_copy(unsafe.Pointer(unsafe.SliceData(b)), p.data, p.size)
				msg = append(msg, b)
			default:
				start := len(backing)
				backing = append(backing, unsafe.Slice((*byte)(p.data), size)...)
				msg = append(msg, backing[start:len(backing):len(backing)])
			}
		}
		more := buf.parts[n-1].more != 0
		C.tp_close_parts(buf.msgs[0].c(), C.int(n))
		if !more {
			return msg, nil
		}
	}
}
