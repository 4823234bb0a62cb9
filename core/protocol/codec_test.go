package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

func TestEnumStrings(t *testing.T) {
	// Per type: values, the last one undefined, and their names.
	tests := []struct {
		values []fmt.Stringer
		want   string
	}{
		{
			[]fmt.Stringer{
				TaskStateInactive, TaskStateRunning, TaskStateCanceling, TaskStateBalanceCanceling, TaskStateSuccess,
				TaskStateFailed, TaskStateFailedWorkerDied, TaskStateCanceled, TaskStateCanceledNotFound,
				TaskStateBalanceCanceled, TaskStateWorkerDisconnecting, TaskStateFailedTimeout,
				TaskStateFailedProcessorDied, TaskStateRejected, TaskState(200),
			},
			"Inactive Running Canceling BalanceCanceling Success Failed FailedWorkerDied Canceled " +
				"CanceledNotFound BalanceCanceled WorkerDisconnecting FailedTimeout FailedProcessorDied Rejected " +
				"TaskState(200)",
		},
		{
			[]fmt.Stringer{ObjectSet, ObjectStats, ObjectRequestType(5)},
			"set stats ObjectRequestType(5)",
		},
		{
			[]fmt.Stringer{ObjectSetOK, ObjectStatsOK, ObjectNotFound, ObjectResponseType(8)},
			"setOK stats notFound ObjectResponseType(8)",
		},
		{
			[]fmt.Stringer{
				ResultSuccess, ResultFailed, ResultFailedWorkerDied, ResultFailedTimeout, ResultFailedProcessorDied,
				ResultRejected, TaskResultType(6),
			},
			"Success Failed FailedWorkerDied FailedTimeout FailedProcessorDied Rejected TaskResultType(6)",
		},
		{
			[]fmt.Stringer{
				CancelConfirmCanceled, CancelConfirmFailed, CancelConfirmNotFound, TaskCancelConfirmType(3),
			},
			"Canceled CancelFailed CancelNotFound TaskCancelConfirmType(3)",
		},
		{
			[]fmt.Stringer{ArgumentTask, ArgumentObjectID, ArgumentInline, ArgumentType(3)},
			"Task ObjectID Inline ArgumentType(3)",
		},
		{
			[]fmt.Stringer{LogStdout, LogStderr, LogType(9)},
			"Stdout Stderr LogType(9)",
		},
		{
			[]fmt.Stringer{InstructionCreate, InstructionDelete, InstructionClear, ObjectInstructionType(3)},
			"Create Delete Clear ObjectInstructionType(3)",
		},
		{
			[]fmt.Stringer{ContentSerializer, ContentObject, ObjectContentType(2)},
			"Serializer Object ObjectContentType(2)",
		},
		{
			[]fmt.Stringer{DisconnectClient, DisconnectShutdown, DisconnectType(2)},
			"Disconnect Shutdown DisconnectType(2)",
		},
		{
			[]fmt.Stringer{NodeNormal, NodeTarget, NodeTaskType(2)},
			"Normal Target NodeTaskType(2)",
		},
		{
			[]fmt.Stringer{WorkerConnected, WorkerDisconnected, WorkerState(2)},
			"Connected Disconnected WorkerState(2)",
		},
		{
			[]fmt.Stringer{KindTask, KindStateScheduler, Kind(255)},
			"Task StateScheduler Kind(255)",
		},
	}
	for _, tt := range tests {
		names := make([]string, len(tt.values))
		for i, v := range tt.values {
			names[i] = v.String()
		}
		if got := strings.Join(names, " "); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestEnumValid(t *testing.T) {
	if !TaskStateRejected.Valid() || TaskState(NumTaskStates).Valid() {
		t.Error("TaskState.Valid wrong at the boundary")
	}
	if !ResultRejected.Valid() || TaskResultType(6).Valid() {
		t.Error("TaskResultType.Valid wrong at the boundary")
	}
	if !CancelConfirmNotFound.Valid() || TaskCancelConfirmType(3).Valid() {
		t.Error("TaskCancelConfirmType.Valid wrong at the boundary")
	}
	if !ArgumentObjectID.Valid() || ArgumentType(3).Valid() || !ArgumentInline.Valid() || !LogStderr.Valid() || LogType(2).Valid() ||
		!InstructionClear.Valid() || ObjectInstructionType(3).Valid() || !ContentObject.Valid() ||
		ObjectContentType(2).Valid() || !DisconnectShutdown.Valid() || DisconnectType(2).Valid() ||
		!NodeTarget.Valid() || NodeTaskType(2).Valid() || !WorkerDisconnected.Valid() || WorkerState(2).Valid() {
		t.Error("Valid wrong at a boundary")
	}
	terminal := map[TaskState]bool{
		TaskStateSuccess: true, TaskStateFailed: true, TaskStateFailedWorkerDied: true,
		TaskStateCanceled: true, TaskStateCanceledNotFound: true, TaskStateFailedTimeout: true,
		TaskStateFailedProcessorDied: true, TaskStateRejected: true,
	}
	for s := TaskState(0); s < NumTaskStates; s++ {
		if s.Terminal() != terminal[s] {
			t.Errorf("%v.Terminal() = %v", s, s.Terminal())
		}
	}
}

// TestRoundTrip encodes and decodes every golden message and its zero value.
func TestRoundTrip(t *testing.T) {
	for name, m := range goldenMessages() {
		frame := MustEncode(m)
		if Kind(frame[0]) != m.Kind() {
			t.Errorf("%s: first byte %d, want kind %d", name, frame[0], m.Kind())
		}
		if len(frame) > 1+m.Msgsize() {
			t.Errorf("%s: frame %d bytes exceeds 1+Msgsize() = %d", name, len(frame), 1+m.Msgsize())
		}
		got, err := Decode(frame)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: round trip differs", name)
		}
		// Encode appends to dst.
		prefixed, err := Encode([]byte("xy"), m)
		if err != nil || !bytes.Equal(prefixed[2:], frame) || string(prefixed[:2]) != "xy" {
			t.Errorf("%s: Encode does not append (err %v)", name, err)
		}

		zero := New(m.Kind())
		got, err = Decode(MustEncode(zero))
		if err != nil {
			t.Fatalf("%s zero: %v", name, err)
		}
		if !bytes.Equal(MustEncode(got), MustEncode(zero)) {
			t.Errorf("%s zero: re-encoding differs", name)
		}
	}
}

// TestDecodeDoesNotAlias checks that decoded byte slices and strings are
// copies, so callers may reuse the receive buffer.
func TestDecodeDoesNotAlias(t *testing.T) {
	frame := MustEncode(goldens["TaskResult"])
	m, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	for i := range frame {
		frame[i] = 0
	}
	if !reflect.DeepEqual(m, goldens["TaskResult"]) {
		t.Error("decoded message changed when the frame was overwritten")
	}
}

func TestDecodeErrors(t *testing.T) {
	taskFrame := MustEncode(goldens["Task"])
	// A TaskCancel whose task_id is a string and force is an int.
	wrongTypes := append([]byte{byte(KindTaskCancel)}, msgp.AppendMapHeader(nil, 2)...)
	wrongTypes = msgp.AppendString(wrongTypes, "task_id")
	wrongTypes = msgp.AppendInt(wrongTypes, 7)
	wrongTypes = msgp.AppendString(wrongTypes, "force")
	wrongTypes = msgp.AppendString(wrongTypes, "yes")
	// An enum out of uint8 range.
	bigEnum := append([]byte{byte(KindClientDisconnect)}, msgp.AppendMapHeader(nil, 1)...)
	bigEnum = msgp.AppendString(bigEnum, "type")
	bigEnum = msgp.AppendUint(bigEnum, 300)

	tests := []struct {
		name  string
		frame []byte
		is    error
	}{
		{"nil", nil, ErrEmptyFrame},
		{"empty", []byte{}, ErrEmptyFrame},
		{"invalid kind", []byte{0, 0x80}, ErrUnknownKind},
		{"unknown kind", []byte{250, 0x80}, ErrUnknownKind},
		{"no body", []byte{byte(KindTask)}, msgp.ErrShortBytes},
		{"truncated", taskFrame[:len(taskFrame)/2], msgp.ErrShortBytes},
		{"trailing", append(append([]byte{}, taskFrame...), 0xc0), ErrTrailing},
		{"body not a map", []byte{byte(KindTask), 0x93, 1, 2, 3}, nil},
		{"body is nil", []byte{byte(KindTask), 0xc0}, nil},
		{"wrong field types", wrongTypes, nil},
		{"enum overflow", bigEnum, nil},
		{"invalid prefix", []byte{byte(KindTask), 0xc1}, nil},
		{"huge array claim", []byte{byte(KindStateBalanceAdvice), 0x81, 0xa8, 't', 'a', 's', 'k', '_', 'i', 'd', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}, msgp.ErrShortBytes},
		{"huge map claim", []byte{byte(KindTask), 0xdf, 0xff, 0xff, 0xff, 0xff}, msgp.ErrShortBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(tt.frame)
			if err == nil {
				t.Fatalf("Decode succeeded: %#v", m)
			}
			if m != nil {
				t.Errorf("Decode returned a message with error %v", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

// TestDecodeIgnoresUnknownFields checks forward compatibility: a field this
// version does not know is skipped.
func TestDecodeIgnoresUnknownFields(t *testing.T) {
	b := append([]byte{byte(KindTaskCancel)}, msgp.AppendMapHeader(nil, 3)...)
	b = msgp.AppendString(b, "task_id")
	b = msgp.AppendBytes(b, gTaskID(1))
	b = msgp.AppendString(b, "future_field")
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendMapHeader(b, 0)
	b = msgp.AppendString(b, "x")
	b = msgp.AppendString(b, "force")
	b = msgp.AppendBool(b, true)
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := &TaskCancel{TaskID: gTaskID(1), Force: true}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got %#v, want %#v", m, want)
	}
}

// TestEncodingIsMapWithSnakeCaseKeys pins the documented body layout.
func TestEncodingIsMapWithSnakeCaseKeys(t *testing.T) {
	frame := MustEncode(&TaskCancel{TaskID: gTaskID(1), Force: true})
	want := []byte{byte(KindTaskCancel), 0x82, 0xa7, 't', 'a', 's', 'k', '_', 'i', 'd', 0xc4, 16}
	want = append(want, gTaskID(1)...)
	want = append(want, 0xa5, 'f', 'o', 'r', 'c', 'e', 0xc3)
	if !bytes.Equal(frame, want) {
		t.Errorf("frame\n %x\nwant\n %x", frame, want)
	}
}

// TestSmallFramesAllocateLittle feeds frames that declare huge element counts
// and checks that decoding them allocates almost nothing.
func TestSmallFramesAllocateLittle(t *testing.T) {
	var frames [][]byte
	for _, k := range registeredKinds() {
		for _, hdr := range [][]byte{
			{0xdd, 0xff, 0xff, 0xff, 0xff}, // array32 of 4G elements
			{0xdf, 0xff, 0xff, 0xff, 0xff}, // map32 of 4G pairs
			{0xc6, 0xff, 0xff, 0xff, 0xff}, // bin32 of 4 GiB
		} {
			frames = append(frames, append([]byte{byte(k)}, hdr...))
			// The same claim as the value of every field of the message.
			m := New(k)
			for _, key := range fieldKeys(m) {
				f := append([]byte{byte(k)}, msgp.AppendMapHeader(nil, 1)...)
				f = msgp.AppendString(f, key)
				frames = append(frames, append(f, hdr...))
			}
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, f := range frames {
		if _, err := Decode(f); err == nil {
			t.Errorf("frame %x decoded", f)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("decoding %d tiny hostile frames allocated %d bytes", len(frames), got)
	}
}

// fieldKeys returns the msgpack keys of m's top-level fields.
func fieldKeys(m Message) []string {
	rt := reflect.TypeOf(m).Elem()
	keys := make([]string, rt.NumField())
	for i := range keys {
		keys[i] = rt.Field(i).Tag.Get("msg")
	}
	return keys
}

func TestKindNamesMatchTypes(t *testing.T) {
	for _, k := range registeredKinds() {
		if got, want := k.String(), reflect.TypeOf(New(k)).Elem().Name(); got != want {
			t.Errorf("Kind(%d).String() = %q, type is %s", k, got, want)
		}
	}
	if New(KindInvalid) != nil {
		t.Error("KindInvalid is registered")
	}
	_ = fmt.Sprint(KindTask)
}
