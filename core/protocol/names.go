package protocol

import "strconv"

var kindNames = [256]string{
	KindInvalid:                "Invalid",
	KindTask:                   "Task",
	KindTaskCancel:             "TaskCancel",
	KindTaskCancelConfirm:      "TaskCancelConfirm",
	KindTaskResult:             "TaskResult",
	KindTaskLog:                "TaskLog",
	KindGraphTask:              "GraphTask",
	KindObjectInstruction:      "ObjectInstruction",
	KindClientHeartbeat:        "ClientHeartbeat",
	KindClientHeartbeatEcho:    "ClientHeartbeatEcho",
	KindWorkerHeartbeat:        "WorkerHeartbeat",
	KindWorkerHeartbeatEcho:    "WorkerHeartbeatEcho",
	KindDisconnectRequest:      "DisconnectRequest",
	KindDisconnectResponse:     "DisconnectResponse",
	KindClientDisconnect:       "ClientDisconnect",
	KindClientShutdownResponse: "ClientShutdownResponse",
	KindBatch:                  "Batch",
	KindRelay:                  "Relay",
	KindStateScheduler:         "StateScheduler",
	KindStateWorker:            "StateWorker",
	KindStateTask:              "StateTask",
	KindStateGraphTask:         "StateGraphTask",
	KindStateBalanceAdvice:     "StateBalanceAdvice",
	KindProcessorInitialized:   "ProcessorInitialized",
	KindProcessorTask:          "ProcessorTask",
	KindProcessorResult:        "ProcessorResult",
	KindProcessorLog:           "ProcessorLog",
	KindProcessorCancel:        "ProcessorCancel",
	KindProcessorCanceled:      "ProcessorCanceled",
	KindObjectRequest:          "ObjectRequest",
	KindObjectResponse:         "ObjectResponse",
}

// String returns the message name of k (the Go type name, as used in logs
// and in StateScheduler's message counts), or "Kind(N)" when k is unknown.
func (k Kind) String() string {
	if s := kindNames[k]; s != "" {
		return s
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}
