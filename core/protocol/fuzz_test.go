package protocol

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that Decode never panics and that whatever it accepts
// re-encodes to a frame that decodes to the same encoding.
//
//	go test -run='^$' -fuzz=FuzzDecode -fuzztime=60s ./core/protocol/
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.msgpack"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, m := range goldenMessages() {
		f.Add(MustEncode(m))
		f.Add(MustEncode(New(m.Kind())))
	}
	for _, b := range [][]byte{
		nil, {0}, {1}, {255, 0x80}, {1, 0xc1}, {1, 0x80, 0x80},
		{32, 0xdd, 0xff, 0xff, 0xff, 0xff},
		{32, 0x81, 0xa7, 'w', 'o', 'r', 'k', 'e', 'r', 's', 0xdc, 0xff, 0xff},
		{1, 0x81, 0xac, 'c', 'a', 'p', 'a', 'b', 'i', 'l', 'i', 't', 'i', 'e', 's', 0xdf, 0xff, 0xff, 0xff, 0xff},
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := Decode(frame)
		if err != nil {
			if m != nil {
				t.Fatal("message returned with an error")
			}
			return
		}
		if m.Kind() != Kind(frame[0]) {
			t.Fatalf("kind %d decoded as %T", frame[0], m)
		}
		again, err := Encode(nil, m)
		if err != nil {
			t.Fatalf("re-encoding a decoded message: %v", err)
		}
		m2, err := Decode(again)
		if err != nil {
			t.Fatalf("decoding a re-encoded message: %v", err)
		}
		if third := MustEncode(m2); !bytes.Equal(third, again) && !hasMapField(m) {
			t.Fatalf("encoding is not stable:\n%x\n%x", again, third)
		}
	})
}

// hasMapField reports whether m may hold a Go map, whose msgpack key order is
// not deterministic.
func hasMapField(m Message) bool {
	switch m.(type) {
	case *Task, *GraphTask, *WorkerHeartbeat, *StateWorker:
		return true
	}
	return false
}
