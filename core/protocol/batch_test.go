package protocol

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	task := gTask(1)
	inner := []Message{&task, &TaskCancel{TaskID: gTaskID(2), Force: true}, &TaskResult{TaskID: gTaskID(3), Results: [][]byte{}}}
	var frames [][]byte
	for _, m := range inner {
		frames = append(frames, MustEncode(m))
	}
	frame := MustEncode(&Batch{Messages: frames})
	if Kind(frame[0]) != KindBatch || KindBatch.String() != "Batch" {
		t.Fatalf("kind byte %d, name %s", frame[0], KindBatch)
	}
	m, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := m.(*Batch)
	if !ok || len(b.Messages) != len(inner) {
		t.Fatalf("decoded %#v", m)
	}
	i := 0
	b.Each(func(f []byte, got Message, err error) {
		if err != nil {
			t.Fatalf("element %d: %v", i, err)
		}
		if !bytes.Equal(f, frames[i]) || !bytes.Equal(MustEncode(got), frames[i]) {
			t.Fatalf("element %d differs", i)
		}
		if got.Kind() != inner[i].Kind() {
			t.Fatalf("element %d kind %s", i, got.Kind())
		}
		i++
	})
	if i != len(inner) {
		t.Fatalf("%d elements visited", i)
	}
	if again := MustEncode(b); !bytes.Equal(again, frame) {
		t.Fatal("re-encoding differs")
	}
}

func TestBatchBadElements(t *testing.T) {
	good := MustEncode(&TaskCancel{TaskID: gTaskID(1)})
	nested := MustEncode(&Batch{Messages: [][]byte{good, good}})
	frame := MustEncode(&Batch{Messages: [][]byte{good, nested, {}, {0xff, 0x80}, {byte(KindTask), 0x81}, good}})
	m, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	okCount := 0
	m.(*Batch).Each(func(_ []byte, got Message, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		if !reflect.DeepEqual(got, &TaskCancel{TaskID: gTaskID(1)}) {
			t.Fatalf("element %#v", got)
		}
		okCount++
	})
	if okCount != 2 || len(errs) != 4 {
		t.Fatalf("%d good, errors %v", okCount, errs)
	}
	if !errors.Is(errs[0], ErrNestedBatch) || !errors.Is(errs[1], ErrEmptyFrame) || !errors.Is(errs[2], ErrUnknownKind) {
		t.Fatalf("errors %v", errs)
	}
}

func TestCoalesce(t *testing.T) {
	one := [][]byte{MustEncode(&TaskCancel{TaskID: gTaskID(1)})}
	if got := Coalesce(one); len(got) != 1 || !bytes.Equal(got[0], one[0]) {
		t.Fatal("a single frame must go out unchanged")
	}
	var frames [][]byte
	for i := 0; i < MaxBatchMessages+5; i++ {
		frames = append(frames, MustEncode(&TaskCancel{TaskID: gTaskID(byte(i))}))
	}
	big := make([]byte, MaxBatchBytes)
	big[0] = byte(KindTaskLog)
	frames = append(frames, big, one[0])
	out := Coalesce(frames)
	var flat [][]byte
	for _, f := range out {
		if Kind(f[0]) != KindBatch {
			flat = append(flat, f)
			continue
		}
		m, err := Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(m.(*Batch).Messages); n < 2 || n > MaxBatchMessages {
			t.Fatalf("batch of %d", n)
		}
		flat = append(flat, m.(*Batch).Messages...)
	}
	if !reflect.DeepEqual(flat, frames) {
		t.Fatal("coalesced frames differ from the input or are out of order")
	}
}
