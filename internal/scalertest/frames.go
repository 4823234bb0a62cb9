package scalertest

import "github.com/opengris/scaler/core/protocol"

// DecodeFrames decodes a message that came as one frame; false for any
// other number of frames or a frame that does not decode (both are dropped
// by the peers these helpers stand in for).
func DecodeFrames(frames [][]byte) (protocol.Message, bool) {
	if len(frames) != 1 {
		return nil, false
	}
	m, err := protocol.Decode(frames[0])
	if err != nil {
		return nil, false
	}
	return m, true
}

// EachMessage calls fn on the message in frames, or on each message of it
// when it is a Batch, as a worker handles what the scheduler sends. An
// error from fn on a lone message is returned; on a message of a batch it
// is dropped and the batch goes on, so one bad entry does not hide the rest.
// Frames that do not decode are dropped (nil).
func EachMessage(frames [][]byte, fn func(protocol.Message) error) error {
	m, ok := DecodeFrames(frames)
	if !ok {
		return nil
	}
	if b, ok := m.(*protocol.Batch); ok {
		b.Each(func(_ []byte, m protocol.Message, err error) {
			if err == nil {
				_ = fn(m)
			}
		})
		return nil
	}
	return fn(m)
}
