package protocol

import (
	"errors"
	"fmt"

	"github.com/tinylib/msgp/msgp"
)

// Message is implemented by every wire message. The msgp methods are generated.
type Message interface {
	msgp.Marshaler
	msgp.Unmarshaler
	msgp.Sizer
	Kind() Kind
}

// factories maps a Kind to a constructor of its zero message; kind.go
// registers every message.
var factories [256]func() Message

// register makes each constructor's message decodable under the kind the
// message reports, so a kind is written once, in its Kind method.
func register(news ...func() Message) {
	for _, f := range news {
		k := f().Kind()
		if factories[k] != nil {
			panic(fmt.Sprintf("protocol: kind %d registered twice", k))
		}
		factories[k] = f
	}
}

// newOf is the constructor register takes, for message type T.
func newOf[T any, P interface {
	*T
	Message
}]() Message {
	return P(new(T))
}

// New returns a zero message of kind k, or nil when k is unknown.
func New(k Kind) Message {
	if f := factories[k]; f != nil {
		return f()
	}
	return nil
}

// Errors returned by Decode. They are sentinel values so callers can count
// them without string matching.
var (
	ErrEmptyFrame  = errors.New("protocol: empty frame")
	ErrUnknownKind = errors.New("protocol: unknown message kind")
	ErrTrailing    = errors.New("protocol: trailing bytes after message")
)

// Encode appends the frame for m (kind byte followed by the msgpack body) to
// dst and returns it.
func Encode(dst []byte, m Message) ([]byte, error) {
	dst = append(dst, byte(m.Kind()))
	return m.MarshalMsg(dst)
}

// MustEncode is Encode into a fresh buffer for messages built by our own code,
// whose encoding cannot fail.
func MustEncode(m Message) []byte {
	b, err := Encode(make([]byte, 0, 1+m.Msgsize()), m)
	if err != nil {
		panic(fmt.Sprintf("protocol: encoding %T: %v", m, err))
	}
	return b
}

// Decode parses one frame. It never panics on any input; every malformed
// frame yields an error. The returned message does not alias frame.
func Decode(frame []byte) (Message, error) {
	if len(frame) == 0 {
		return nil, ErrEmptyFrame
	}
	m := New(Kind(frame[0]))
	if m == nil {
		return nil, fmt.Errorf("%w %d", ErrUnknownKind, frame[0])
	}
	body := frame[1:]
	// Walk the body once before decoding it. msgp's generated decoders size
	// slices and maps from the declared element counts; the walk proves that
	// every declared element is actually present (each takes at least one
	// byte), so a tiny frame cannot make the decoder allocate gigabytes. It
	// also bounds nesting depth and rejects trailing bytes early.
	if rest, err := msgp.Skip(body); err != nil {
		return nil, fmt.Errorf("protocol: decoding kind %d: %w", frame[0], err)
	} else if len(rest) != 0 {
		return nil, fmt.Errorf("%w: kind %d, %d bytes", ErrTrailing, frame[0], len(rest))
	}
	rest, err := m.UnmarshalMsg(body)
	if err != nil {
		return nil, fmt.Errorf("protocol: decoding kind %d: %w", frame[0], err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: kind %d, %d bytes", ErrTrailing, frame[0], len(rest))
	}
	return m, nil
}
