package web

import (
	"bytes"
	"io"
	"sync"
)

// hub fans each encoded snapshot out to the connected browsers. Every
// viewer holds at most one pending frame: when a browser reads slower than
// frames are published, the frame it has not taken yet is replaced by the
// newer one (it skips frames), so a slow viewer costs one frame of memory
// and never delays the others. The number of viewers is bounded.
type hub struct {
	mu      sync.Mutex
	max     int
	viewers map[*viewer]struct{}
}

type viewer struct {
	frames  chan []byte // capacity 1: the newest frame not yet written
	skipped uint64      // frames replaced before this viewer took them (under hub.mu)
}

func newHub(max int) *hub {
	return &hub{max: max, viewers: make(map[*viewer]struct{})}
}

// join adds a viewer, or returns nil when max viewers are connected.
func (h *hub) join() *viewer {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.viewers) >= h.max {
		return nil
	}
	v := &viewer{frames: make(chan []byte, 1)}
	h.viewers[v] = struct{}{}
	return v
}

func (h *hub) leave(v *viewer) {
	h.mu.Lock()
	delete(h.viewers, v)
	h.mu.Unlock()
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.viewers)
}

// publish hands frame to every viewer without ever blocking: a viewer that
// still holds an older frame gets it replaced.
func (h *hub) publish(frame []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for v := range h.viewers {
		select {
		case <-v.frames:
			v.skipped++
		default:
		}
		// Only publish sends, under h.mu, and the slot was just emptied.
		v.frames <- frame
	}
}

// writeEvent writes one server-sent event. A line break inside data would
// end the field early, so each line of data gets its own "data:" field, as
// the SSE format prescribes; the browser joins them with "\n" again.
func writeEvent(w io.Writer, event string, data []byte) error {
	var b bytes.Buffer
	b.Grow(len(data) + len(event) + 16)
	if event != "" {
		b.WriteString("event: ")
		b.WriteString(event)
		b.WriteByte('\n')
	}
	for {
		line, rest, more := bytes.Cut(data, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		b.WriteString("data: ")
		b.Write(line)
		b.WriteByte('\n')
		if !more {
			break
		}
		data = rest
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}
