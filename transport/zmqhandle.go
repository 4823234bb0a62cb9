package transport

// This file is the only place that reaches into pebbe/zmq4's private
// state: the zero-copy paths (zerocopy.go) call libzmq directly on the
// socket that a *zmq.Socket wraps, and pebbe/zmq4 does not export that
// pointer. TestSocketHandleLayout fails loudly if a new pebbe/zmq4 version
// moves or retypes the field; until then socketHandle returns nil and the
// endpoint falls back to pebbe/zmq4's copying calls.

/*
#include "zerocopy.h"
*/
import "C"

import (
	"fmt"
	"reflect"
	"unsafe"

	zmq "github.com/pebbe/zmq4"
)

// zmq4Checked is the pebbe/zmq4 version whose zmq.Socket layout socketHandle
// was checked against; go.mod requires exactly this version, and
// TestSocketHandleLayout fails if the two part.
const zmq4Checked = "v1.4.0"

// handleLayoutProblem says what is wrong with zmq.Socket's layout for
// socketHandle, or "" if it still starts with the libzmq socket pointer
// (pebbe/zmq4 v1.4.0: type Socket struct { soc unsafe.Pointer; ... }).
func handleLayoutProblem() string {
	f, ok := reflect.TypeFor[zmq.Socket]().FieldByName("soc")
	switch {
	case !ok:
		return "has no field soc"
	case f.Type != reflect.TypeFor[unsafe.Pointer]():
		return "has field soc of type " + f.Type.String() + ", not unsafe.Pointer"
	case f.Offset != 0:
		return fmt.Sprintf("has field soc at offset %d, not 0", f.Offset)
	}
	return ""
}

// handleLayoutOK is checked once: socketHandle runs on every zero-copy call.
var handleLayoutOK = handleLayoutProblem() == ""

// socketHandle returns the libzmq socket (the void* of zmq_socket) that s
// wraps, or nil if the layout check failed. Only the goroutine that owns s
// may use the handle, and only while s is open.
func socketHandle(s *zmq.Socket) unsafe.Pointer {
	if !handleLayoutOK || s == nil {
		return nil
	}
	return *(*unsafe.Pointer)(unsafe.Pointer(s))
}

// rawSocketType asks libzmq, through the raw handle, for the socket's
// ZMQ_TYPE: the test compares it with what pebbe/zmq4 reports.
func rawSocketType(s *zmq.Socket) (zmq.Type, error) {
	h := socketHandle(s)
	if h == nil {
		return -1, errNoHandle
	}
	t, err := C.tp_socket_type(h)
	if t < 0 {
		return -1, zmqErr(err)
	}
	return zmq.Type(t), nil
}
