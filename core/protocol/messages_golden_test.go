package protocol

// Golden values for the messages defined in messages_*.go. Every field is
// non-zero and every value is deterministic.

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func gTaskID(i byte) []byte   { return seq(16, 0x10*i) }
func gObjectID(i byte) []byte { return seq(32, 0x80+i) }

var (
	gClient = []byte("4242|Client|0123456789abcdef0123456789abcdef")
	gWorker = []byte("4243|Worker|node-1|fedcba9876543210fedcba9876543210")
	gOSS    = Address{Host: "127.0.0.1", Port: 8517}
	gProc   = ProcessorStatus{PID: 4250, Initialized: true, HasTask: true, Suspended: true,
		Resource: Resource{CPU: 987, RSS: 123 << 20}}
	gProfile = TaskProfile{DurationS: 1.5, CPUTimeS: 0.25, MemoryPeak: 4 << 20}
)

func gTask(i byte) Task {
	return Task{
		TaskID:       gTaskID(i),
		Source:       gClient,
		Metadata:     []byte{0xca, 0xfe},
		FuncObjectID: gObjectID(i),
		Arguments: []Argument{
			{Type: ArgumentObjectID, Data: gObjectID(i + 1)},
			{Type: ArgumentTask, Data: gTaskID(i + 1)},
			{Type: ArgumentInline, Data: []byte{0x80, 0x05, 0x4b, i, 0x2e}}, // pickle of int i
		},
		Capabilities: map[string]int64{"gpu": -1},
		Priority:     3,
		StreamOutput: true,
		Profiling:    true,
		KeepResult:   true,
	}
}

func init() {
	task := gTask(1)
	addGolden(&task)
	addGolden(&TaskCancel{TaskID: gTaskID(1), Force: true})
	addGolden(&TaskCancelConfirm{TaskID: gTaskID(1), Type: CancelConfirmNotFound})
	addGolden(&TaskResult{
		TaskID:  gTaskID(1),
		Type:    ResultFailed,
		Profile: gProfile,
		Results: [][]byte{gObjectID(9)},
		Inline:  []byte("result bytes"),
		Message: "ZeroDivisionError: division by zero",
	})
	addGolden(&TaskLog{TaskID: gTaskID(1), Type: LogStderr, Content: "hello\n"})
	addGolden(&GraphTask{
		TaskID:  gTaskID(7),
		Source:  gClient,
		Targets: [][]byte{gTaskID(2)},
		Graph:   []Task{gTask(1), gTask(2)},
	})
	addGolden(&ObjectInstruction{
		Type:       InstructionDelete,
		ObjectUser: gClient,
		Metadata: ObjectMetadata{
			ObjectIDs:    [][]byte{gObjectID(1), gObjectID(2)},
			ContentTypes: []ObjectContentType{ContentSerializer, ContentObject},
			Names:        [][]byte{[]byte("serializer"), []byte("my_function")},
			Contents:     [][]byte{[]byte("s"), []byte("f")},
		},
	})

	addGolden(&ClientHeartbeat{Resource: Resource{CPU: 12, RSS: 50 << 20}, LatencyUS: 250, Nested: true})
	addGolden(&ClientHeartbeatEcho{ObjectStorage: gOSS, InstanceID: seq(16, 0x40)})
	addGolden(&WorkerHeartbeat{
		Agent:        Resource{CPU: 5, RSS: 30 << 20},
		RSSFree:      8 << 30,
		QueuedTasks:  2,
		QueueSize:    1000,
		LatencyUS:    700,
		TaskLock:     true,
		Processors:   []ProcessorStatus{gProc},
		Capabilities: map[string]int64{"linux": -1},
		Tasks:        [][]byte{gTaskID(1), gTaskID(2)},
		EchoSeq:      41,
		Slot:         gWorker,
	})
	addGolden(&WorkerHeartbeatEcho{ObjectStorage: gOSS, Seq: 42, InstanceID: seq(16, 0x40)})
	addGolden(&DisconnectRequest{Worker: gWorker})
	addGolden(&DisconnectResponse{Worker: gWorker})
	addGolden(&ClientDisconnect{Type: DisconnectShutdown})
	addGolden(&ClientShutdownResponse{Accepted: true, Reason: "scheduler is in protected mode"})
	addGolden(&Batch{Messages: [][]byte{
		MustEncode(&TaskCancel{TaskID: gTaskID(1), Force: true}),
		MustEncode(&TaskCancelConfirm{TaskID: gTaskID(2), Type: CancelConfirmCanceled}),
	}})

	addGolden(&Relay{Worker: gWorker, Messages: [][]byte{
		MustEncode(&TaskResult{TaskID: gTaskID(1), Type: ResultSuccess, Results: [][]byte{gObjectID(1)}}),
	}, Closed: true})

	addGolden(&StateScheduler{
		Binder: BinderStatus{
			Received: []MessageCount{{Name: "ClientHeartbeat", Count: 12}},
			Sent:     []MessageCount{{Name: "ClientHeartbeatEcho", Count: 12}},
		},
		Scheduler:   Resource{CPU: 1000, RSS: 37 << 20},
		RSSFree:     10 << 30,
		Clients:     []ClientTaskCount{{Client: gClient, Tasks: 3}},
		ObjectCount: 24,
		TaskStates:  []TaskStateCount{{State: TaskStateSuccess, Count: 200000}},
		Workers: []WorkerStatus{{
			WorkerID:   gWorker,
			Agent:      Resource{CPU: 5, RSS: 100 << 20},
			RSSFree:    8 << 30,
			Free:       998,
			Sent:       2,
			Queued:     1,
			Suspended:  1,
			LagUS:      700,
			LastS:      2,
			ITL:        "111",
			Processors: []ProcessorStatus{gProc},
		}},
		WorkerGroups:   []WorkerGroup{{GroupID: []byte("native-0a1b"), WorkerIDs: [][]byte{gWorker}}},
		MonitorDropped: 3,
		MonitorSent:    5000,
		InstanceID:     seq(16, 0x40),
	})
	addGolden(&StateWorker{WorkerID: gWorker, State: WorkerDisconnected, Capabilities: map[string]int64{"gpu": 2}})
	addGolden(&StateTask{
		TaskID:       gTaskID(1),
		FunctionName: []byte("my_function"),
		State:        TaskStateRunning,
		Worker:       gWorker,
		Profile:      gProfile,
	})
	addGolden(&StateGraphTask{
		GraphTaskID:   gTaskID(7),
		TaskID:        gTaskID(2),
		NodeType:      NodeTarget,
		ParentTaskIDs: [][]byte{gTaskID(1)},
	})
	addGolden(&StateBalanceAdvice{WorkerID: gWorker, TaskIDs: [][]byte{gTaskID(1), gTaskID(2)}})

	addGolden(&ProcessorInitialized{PID: 4250, Error: "preload failed: ModuleNotFoundError"})
	addGolden(&ProcessorTask{
		TaskID:        gTaskID(1),
		Source:        gClient,
		SerializerID:  gObjectID(0),
		FuncObjectID:  gObjectID(1),
		ArgumentIDs:   [][]byte{gObjectID(2), gObjectID(3)},
		Metadata:      []byte{0xca, 0xfe},
		Priority:      3,
		StreamOutput:  true,
		ObjectStorage: gOSS,
		Arguments: []Argument{
			{Type: ArgumentObjectID, Data: gObjectID(2)},
			{Type: ArgumentInline, Data: []byte{0x80, 0x05, 0x4b, 0x03, 0x2e}},
		},
		KeepResult: true,
	})
	addGolden(&ProcessorResult{
		TaskID:           gTaskID(1),
		Type:             ResultFailed,
		ResultObjectID:   gObjectID(9),
		ResultObjectName: []byte("<res 89>"),
		Inline:           []byte("result bytes"),
		Message:          "ZeroDivisionError: division by zero",
	})
	addGolden(&ProcessorLog{TaskID: gTaskID(1), Type: LogStderr, Content: "hello\n"})
	addGolden(&ProcessorCancel{TaskID: gTaskID(2)})
	addGolden(&ProcessorCanceled{TaskID: gTaskID(2)})
}
