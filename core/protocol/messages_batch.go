package protocol

//go:generate go tool msgp -tests=false

import "errors"

// Batch carries several complete frames to the same peer in one zmq message
// (docs/protocol.md §7.6). Each element is a whole frame (kind byte + body)
// of any kind except Batch. A receiver handles the elements in order, each
// exactly as if it had arrived alone; a malformed element is dropped on its
// own and the others are still handled.
type Batch struct {
	Messages [][]byte `msg:"messages"`
}

// Relay carries the frames of one worker hosted by the connection it
// travels on (docs/protocol.md §7.7): a process that runs many workers
// (a cluster's relay, the fleet benchmark's echo hosts) talks to the
// scheduler over one connection instead of one each, so that what goes to
// or comes from many workers in one loop iteration is one message, not
// one per worker. From the host, Messages are frames the worker sent, and
// Closed says the worker's own link to its host has closed (as a closed
// connection of a directly connected worker does); from the scheduler,
// Messages are frames for the worker. Elements are whole frames of any
// kind except Batch and Relay. Relays travel alone or as Batch elements.
type Relay struct {
	Worker   []byte   `msg:"worker"`
	Messages [][]byte `msg:"messages"`
	Closed   bool     `msg:"closed"`
}

// ErrNestedBatch is reported for a Batch element that is itself a Batch.
var ErrNestedBatch = errors.New("protocol: nested Batch")

// Each decodes the elements of b in order and calls fn with each decoded
// message, or with the error that made the element invalid (a nested Batch
// yields ErrNestedBatch). frame is the element's own frame; it and m do
// not alias each other.
func (b *Batch) Each(fn func(frame []byte, m Message, err error)) {
	for _, f := range b.Messages {
		if len(f) > 0 && Kind(f[0]) == KindBatch {
			fn(f, nil, ErrNestedBatch)
			continue
		}
		m, err := Decode(f)
		fn(f, m, err)
	}
}

// Batching limits: a Batch holds at most MaxBatchMessages elements and,
// unless a single element is larger, about MaxBatchBytes of element bytes.
const (
	MaxBatchMessages = 1024
	MaxBatchBytes    = 1 << 20
)

// Coalesce turns frames (complete frames for one peer, in order, none a
// Batch) into the frames to send: frames itself when there are fewer than
// two, otherwise Batch frames of at most MaxBatchMessages elements and about
// MaxBatchBytes each (pieceEnd), preserving order.
func Coalesce(frames [][]byte) [][]byte {
	if len(frames) < 2 {
		return frames
	}
	var out [][]byte
	for start := 0; start < len(frames); {
		end := pieceEnd(frames, start)
		if end-start == 1 {
			out = append(out, frames[start])
		} else {
			out = append(out, MustEncode(&Batch{Messages: frames[start:end]}))
		}
		start = end
	}
	return out
}

// Pieces splits frames, in order, into the runs pieceEnd makes: the
// elements of one Relay each.
func Pieces(frames [][]byte) [][][]byte {
	var out [][][]byte
	for start := 0; start < len(frames); {
		end := pieceEnd(frames, start)
		out = append(out, frames[start:end])
		start = end
	}
	return out
}

// pieceEnd is the end of the run of frames from start that one Batch (or
// Relay) holds: at most MaxBatchMessages frames and about MaxBatchBytes (a
// larger frame is a run of its own).
func pieceEnd(frames [][]byte, start int) int {
	end, size := start, 0
	for end < len(frames) && end-start < MaxBatchMessages && (end == start || size+len(frames[end]) <= MaxBatchBytes) {
		size += len(frames[end])
		end++
	}
	return end
}
