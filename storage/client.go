package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/identity"
	"github.com/opengris/scaler/transport"
)

// ErrClosed is returned by calls on a closed Client and by calls still
// waiting when it is closed.
var ErrClosed = errors.New("storage client: closed")

// MaxCallsInFlight bounds a client's calls without an answer yet: a
// server that is down or never answers must not make its callers (the
// scheduler's deletes, for one) queue calls without end.
const MaxCallsInFlight = 1 << 16

// ErrBusy is the result of a call made while MaxCallsInFlight are waiting.
var ErrBusy = fmt.Errorf("storage client: %d calls wait for the server's answer, the most one client has; refused", MaxCallsInFlight)

// ErrNotFound is wrapped by the error of a get or duplicate that the server
// answered notFound: the object (the source of a duplicate) did not appear
// within the server's wait deadline.
var ErrNotFound = errors.New("object storage: not found")

// ServerError is an error reply from the server (a malformed request, a set
// over the memory limit, too many waiting requests).
type ServerError struct {
	Op      string
	Message string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("object storage %s: %s", e.Op, e.Message)
}

// Stats are the server's counters.
type Stats struct {
	Objects         uint64 // object ids stored
	Bytes           uint64 // bytes of distinct contents held
	UniqueContents  uint64 // distinct contents held
	WaitingRequests uint64 // parked gets and duplicates
	MaxMemory       uint64 // configured limit, 0 = unlimited
}

// Result is the outcome of an asynchronous request. Which fields are set
// depends on the request: Data for get, Existed for delete, Stats for stats.
type Result struct {
	Data    []byte
	Existed bool
	Stats   Stats
	Err     error
}

type call struct {
	op protocol.ObjectRequestType
	ch chan Result // capacity 1: the demultiplexer never blocks on it
	// view: a get whose caller takes the payload as received (GetView):
	// a large one stays in libzmq's memory, owned by the caller's View.
	// Otherwise the payload is copied into Go memory and the frame freed.
	view bool
}

// Client talks to one object storage server over a DEALER socket. All
// methods are safe for concurrent use. Requests are pipelined: each carries
// a request id that the server echoes, and one goroutine hands every reply
// to the caller waiting for it.
type Client struct {
	ep   *transport.Endpoint
	done chan struct{} // closed when the demultiplexer has exited

	mu      sync.Mutex
	pending map[uint64]call
	nextID  uint64
	closed  bool
}

// Dial connects to the server at addr (e.g. "tcp://127.0.0.1:8517"). Like
// any zmq connect it does not wait for the server: requests queue until the
// connection is up.
func Dial(addr string) (*Client, error) {
	id := fmt.Sprintf("storage-client|%d|%s", os.Getpid(), identity.RandomHex(8))
	// ZeroCopyRecv: a large get reply stays in the buffer libzmq read it
	// into; GetView hands that buffer out, Get copies it once (as a
	// receive without the option would).
	ep, err := transport.Connect(transport.Dealer, addr, transport.Options{Identity: []byte(id), ZeroCopyRecv: true})
	if err != nil {
		return nil, fmt.Errorf("storage client: %w", err)
	}
	c := &Client{ep: ep, done: make(chan struct{}), pending: make(map[uint64]call)}
	go c.demux()
	return c, nil
}

// Close closes the socket. Calls still waiting return ErrClosed. On a nil
// *Client it does nothing.
func (c *Client) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	var err error
	if !already {
		err = c.ep.Close()
	}
	<-c.done
	return err
}

// demux is the only reader of the socket: it matches replies to calls.
// Every message it takes is released (transport.ReleaseMessage), except the
// payload of a GetView reply, which the View owns from then on.
func (c *Client) demux() {
	defer close(c.done)
	for msg := range c.ep.Recv() {
		c.dispatch(msg)
	}
	c.mu.Lock()
	c.closed = true
	for id, cl := range c.pending {
		cl.ch <- Result{Err: ErrClosed}
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

// dispatch hands one reply to the call waiting for it.
func (c *Client) dispatch(msg [][]byte) {
	if len(msg) == 0 {
		return
	}
	m, err := protocol.Decode(msg[0])
	if err != nil {
		transport.ReleaseMessage(msg)
		return
	}
	resp, ok := m.(*protocol.ObjectResponse)
	if !ok {
		transport.ReleaseMessage(msg)
		return
	}
	c.mu.Lock()
	cl, ok := c.pending[resp.RequestID]
	delete(c.pending, resp.RequestID)
	c.mu.Unlock()
	if !ok {
		transport.ReleaseMessage(msg) // cancelled by its caller, or not ours
		return
	}
	r := decodeResult(cl.op, resp, msg[1:])
	if r.Err == nil && r.Data != nil {
		if cl.view {
			transport.Retain(r.Data) // the View's reference, dropped by View.Release
		} else {
			r.Data = transport.Own(r.Data)
		}
	}
	transport.ReleaseMessage(msg)
	cl.ch <- r
}

// decodeResult turns a reply to a request of type op into a Result.
func decodeResult(op protocol.ObjectRequestType, resp *protocol.ObjectResponse, extra [][]byte) Result {
	if resp.Type == protocol.ObjectError {
		return Result{Err: &ServerError{Op: op.String(), Message: resp.Error}}
	}
	if resp.Type == protocol.ObjectNotFound && (op == protocol.ObjectGet || op == protocol.ObjectDuplicate) {
		return Result{Err: fmt.Errorf("%w: %s", ErrNotFound, resp.Error)}
	}
	if op == protocol.ObjectDelete {
		switch resp.Type {
		case protocol.ObjectDelOK:
			return Result{Existed: true}
		case protocol.ObjectDelNotExists:
			return Result{}
		}
	} else if resp.Type == okReply(op) {
		switch op {
		case protocol.ObjectGet:
			if resp.PayloadLength == 0 && len(extra) == 0 {
				return Result{Data: []byte{}}
			}
			if len(extra) != 1 || uint64(len(extra[0])) != resp.PayloadLength {
				return Result{Err: fmt.Errorf("storage client: get reply with %d payload frames for payload_length %d", len(extra), resp.PayloadLength)}
			}
			return Result{Data: extra[0]}
		case protocol.ObjectStats:
			return Result{Stats: Stats{
				Objects: resp.Objects, Bytes: resp.Bytes, UniqueContents: resp.UniqueContents,
				WaitingRequests: resp.WaitingRequests, MaxMemory: resp.MaxMemory,
			}}
		}
		return Result{}
	}
	return Result{Err: fmt.Errorf("storage client: unexpected %s reply to %s", resp.Type, op)}
}

// okReply is the success reply type for a request type other than delete.
func okReply(op protocol.ObjectRequestType) protocol.ObjectResponseType {
	switch op {
	case protocol.ObjectSet:
		return protocol.ObjectSetOK
	case protocol.ObjectGet:
		return protocol.ObjectGetOK
	case protocol.ObjectDuplicate:
		return protocol.ObjectDuplicateOK
	case protocol.ObjectStats:
		return protocol.ObjectStatsOK
	}
	return protocol.ObjectError
}

// start registers a call and sends its request. It returns the request id
// and the channel that will receive exactly one Result.
func (c *Client) start(req *protocol.ObjectRequest, payload []byte) (uint64, <-chan Result) {
	return c.startCall(req, payload, false)
}

// startCall is start; view asks for a get's payload as received (GetView).
func (c *Client) startCall(req *protocol.ObjectRequest, payload []byte, view bool) (uint64, <-chan Result) {
	ch := make(chan Result, 1)
	if req.Type != protocol.ObjectStats && !validID(req.ObjectID) {
		ch <- Result{Err: fmt.Errorf("storage client: %w, got %d", errObjectID, len(req.ObjectID))}
		return 0, ch
	}
	if req.Type == protocol.ObjectDuplicate && !validID(req.SourceID) {
		ch <- Result{Err: fmt.Errorf("storage client: %w, got %d", errSourceID, len(req.SourceID))}
		return 0, ch
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		ch <- Result{Err: ErrClosed}
		return 0, ch
	}
	if len(c.pending) >= MaxCallsInFlight {
		c.mu.Unlock()
		ch <- Result{Err: ErrBusy}
		return 0, ch
	}
	c.nextID++
	id := c.nextID
	req.RequestID = id
	c.pending[id] = call{op: req.Type, ch: ch, view: view}
	c.mu.Unlock()

	hdr := protocol.MustEncode(req)
	var err error
	if req.Type == protocol.ObjectSet {
		if payload == nil {
			payload = []byte{}
		}
		err = c.ep.Send(hdr, payload)
	} else {
		err = c.ep.Send(hdr)
	}
	if err != nil {
		if errors.Is(err, transport.ErrClosed) {
			err = ErrClosed
		}
		c.fail(id, err)
	}
	return id, ch
}

// fail delivers err to call id unless a reply or Close got there first.
func (c *Client) fail(id uint64, err error) {
	c.mu.Lock()
	cl, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ok {
		cl.ch <- Result{Err: err}
	}
}

// forget drops call id; a reply arriving later is discarded. It reports
// whether the call was still waiting: if not, its Result is in ch or on its
// way there.
func (c *Client) forget(id uint64) bool {
	c.mu.Lock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	return ok
}

// wait blocks for the result of call id or for ctx. A GetView result that
// arrives as ctx ends is released, as nobody will take it.
func (c *Client) wait(ctx context.Context, id uint64, ch <-chan Result) Result {
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		if !c.forget(id) && id != 0 {
			// Delivered, or being delivered (exactly once): free what it holds.
			r := <-ch
			transport.Release(r.Data)
		}
		return Result{Err: ctx.Err()}
	}
}

func (c *Client) do(ctx context.Context, req *protocol.ObjectRequest, payload []byte) Result {
	if err := ctx.Err(); err != nil {
		return Result{Err: err}
	}
	id, ch := c.start(req, payload)
	return c.wait(ctx, id, ch)
}

// SetAsync stores data under id, replacing any previous content. data must
// not be modified afterwards: it is sent without copying and the server may
// keep it.
func (c *Client) SetAsync(id, data []byte) <-chan Result {
	_, ch := c.start(&protocol.ObjectRequest{Type: protocol.ObjectSet, ObjectID: id, PayloadLength: uint64(len(data))}, data)
	return ch
}

// GetAsync fetches the content of id, waiting on the server until it exists
// (at most the server's wait timeout, then the error wraps ErrNotFound).
// max > 0 limits the reply to the first max bytes.
func (c *Client) GetAsync(id []byte, max uint64) <-chan Result {
	_, ch := c.start(&protocol.ObjectRequest{Type: protocol.ObjectGet, ObjectID: id, MaxLength: max}, nil)
	return ch
}

// DeleteAsync removes id; Result.Existed says whether it was there.
func (c *Client) DeleteAsync(id []byte) <-chan Result {
	_, ch := c.start(&protocol.ObjectRequest{Type: protocol.ObjectDelete, ObjectID: id}, nil)
	return ch
}

// DuplicateAsync makes newID refer to the content of srcID, waiting on the
// server until srcID exists.
func (c *Client) DuplicateAsync(newID, srcID []byte) <-chan Result {
	_, ch := c.start(&protocol.ObjectRequest{Type: protocol.ObjectDuplicate, ObjectID: newID, SourceID: srcID}, nil)
	return ch
}

// StatsAsync asks for the server's counters.
func (c *Client) StatsAsync() <-chan Result {
	_, ch := c.start(&protocol.ObjectRequest{Type: protocol.ObjectStats}, nil)
	return ch
}

// Set stores data under id, replacing any previous content. data must not
// be modified afterwards: it is sent without copying.
func (c *Client) Set(ctx context.Context, id, data []byte) error {
	return c.do(ctx, &protocol.ObjectRequest{Type: protocol.ObjectSet, ObjectID: id, PayloadLength: uint64(len(data))}, data).Err
}

// Get returns the content of id, waiting until some client sets it, or an
// error wrapping ErrNotFound after the server's wait timeout. If ctx
// ends first it returns ctx.Err(); the request stays parked on the server
// and its eventual reply is discarded.
func (c *Client) Get(ctx context.Context, id []byte) ([]byte, error) {
	return c.GetMax(ctx, id, 0)
}

// GetMax is Get returning at most max bytes (0 = all).
func (c *Client) GetMax(ctx context.Context, id []byte, max uint64) ([]byte, error) {
	r := c.do(ctx, &protocol.ObjectRequest{Type: protocol.ObjectGet, ObjectID: id, MaxLength: max}, nil)
	return r.Data, r.Err
}

// View is an object's content fetched without copying (GetView): for a
// payload of at least transport.ZeroCopyMin bytes, Bytes is the buffer
// libzmq received it into. The View owns that buffer until Release; Bytes
// must not be used after Release, nor modified.
type View struct {
	data atomic.Pointer[[]byte]
}

// Bytes returns the content; nil after Release.
func (v *View) Bytes() []byte {
	if p := v.data.Load(); p != nil {
		return *p
	}
	return nil
}

// Release frees the content's buffer. It is idempotent and safe from any
// goroutine; a nil *View does nothing.
func (v *View) Release() {
	if v == nil {
		return
	}
	if p := v.data.Swap(nil); p != nil {
		transport.Release(*p)
	}
}

// GetView is Get without the copy into Go memory: a large content stays
// in the buffer it was received into until the View is released, and the
// caller must call Release. Passing Bytes (all of it) to a Set of this or
// another client sends it without copying either. Use it for large objects
// that are read once or forwarded; Get costs one copy per byte more.
func (c *Client) GetView(ctx context.Context, id []byte) (*View, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rid, ch := c.startCall(&protocol.ObjectRequest{Type: protocol.ObjectGet, ObjectID: id}, nil, true)
	r := c.wait(ctx, rid, ch)
	if r.Err != nil {
		return nil, r.Err
	}
	v := new(View)
	v.data.Store(&r.Data)
	return v, nil
}

// Delete removes id and reports whether it existed.
func (c *Client) Delete(ctx context.Context, id []byte) (existed bool, err error) {
	r := c.do(ctx, &protocol.ObjectRequest{Type: protocol.ObjectDelete, ObjectID: id}, nil)
	return r.Existed, r.Err
}

// Duplicate makes newID refer to the content of srcID without copying it,
// waiting until srcID exists.
func (c *Client) Duplicate(ctx context.Context, newID, srcID []byte) error {
	return c.do(ctx, &protocol.ObjectRequest{Type: protocol.ObjectDuplicate, ObjectID: newID, SourceID: srcID}, nil).Err
}

// Stats returns the server's counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	r := c.do(ctx, &protocol.ObjectRequest{Type: protocol.ObjectStats}, nil)
	return r.Stats, r.Err
}
