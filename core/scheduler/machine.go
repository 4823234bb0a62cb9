package scheduler

import "github.com/opengris/scaler/core/protocol"

// Transition is an event that may move a task from one state to another.
type Transition uint8

// Transitions, after upstream Scaler's TaskTransition, plus the ones this
// implementation adds (marked).
const (
	TrHasCapacity Transition = iota
	TrTaskCancel
	TrBalanceTaskCancel
	TrCancelConfirmCanceled
	TrCancelConfirmFailed
	TrCancelConfirmNotFound
	TrResultSuccess
	TrResultFailed
	TrResultWorkerDied
	TrWorkerDisconnect
	TrSchedulerHasTask
	TrSchedulerHasNoTask
	// Additions.
	TrResultTimeout       // worker reports a task timeout
	TrResultProcessorDied // worker reports its processor died
	TrReject              // no slot and the waiting queue is full
	numTransitions
)

var transitionNames = [...]string{
	"HasCapacity", "TaskCancel", "BalanceTaskCancel", "CancelConfirmCanceled",
	"CancelConfirmFailed", "CancelConfirmNotFound", "ResultSuccess", "ResultFailed",
	"ResultWorkerDied", "WorkerDisconnect", "SchedulerHasTask", "SchedulerHasNoTask",
	"ResultTimeout", "ResultProcessorDied", "Reject",
}

func (t Transition) String() string {
	if int(t) < len(transitionNames) {
		return transitionNames[t]
	}
	return "Transition(?)"
}

type (
	st = protocol.TaskState
)

// resultEnds are the transitions of a worker's result from every state in
// which the task is on a worker (running, or with a cancel in flight): the
// worker ran it, so the result stands.
var resultEnds = map[Transition]st{
	TrResultSuccess:       protocol.TaskStateSuccess,
	TrResultFailed:        protocol.TaskStateFailed,
	TrResultWorkerDied:    protocol.TaskStateFailedWorkerDied,
	TrResultTimeout:       protocol.TaskStateFailedTimeout,
	TrResultProcessorDied: protocol.TaskStateFailedProcessorDied,
}

// onWorker is a state's own transitions plus resultEnds.
func onWorker(own map[Transition]st) map[Transition]st {
	for t, next := range resultEnds {
		own[t] = next
	}
	return own
}

// table is the task state machine. It follows upstream's TRANSITION_MAP
// with the intended fixes (reference scheduler.md §3.5): a result that
// arrives while a client cancel is in flight finishes the task (the worker
// ran it first); a balance cancel answered "not found" re-places the task;
// the additional result types and Reject are terminal.
var table = map[st]map[Transition]st{
	protocol.TaskStateInactive: {
		TrHasCapacity: protocol.TaskStateRunning,
		TrTaskCancel:  protocol.TaskStateCanceled,
		TrReject:      protocol.TaskStateRejected,
	},
	protocol.TaskStateRunning: onWorker(map[Transition]st{
		TrTaskCancel:        protocol.TaskStateCanceling,
		TrBalanceTaskCancel: protocol.TaskStateBalanceCanceling,
		TrWorkerDisconnect:  protocol.TaskStateWorkerDisconnecting,
	}),
	protocol.TaskStateCanceling: onWorker(map[Transition]st{
		TrCancelConfirmCanceled: protocol.TaskStateCanceled,
		TrCancelConfirmFailed:   protocol.TaskStateRunning,
		TrCancelConfirmNotFound: protocol.TaskStateCanceledNotFound,
		TrWorkerDisconnect:      protocol.TaskStateCanceled,
	}),
	protocol.TaskStateBalanceCanceling: onWorker(map[Transition]st{
		TrTaskCancel:            protocol.TaskStateCanceling,
		TrCancelConfirmCanceled: protocol.TaskStateInactive,
		TrCancelConfirmFailed:   protocol.TaskStateRunning,
		TrCancelConfirmNotFound: protocol.TaskStateInactive,
		TrWorkerDisconnect:      protocol.TaskStateWorkerDisconnecting,
	}),
	protocol.TaskStateWorkerDisconnecting: {
		TrSchedulerHasTask:   protocol.TaskStateInactive,
		TrSchedulerHasNoTask: protocol.TaskStateFailedWorkerDied,
	},
}

// transitions is table as an array, made once from it: a transition is two
// index operations instead of two map lookups (every task makes at least
// two, and a balance pass one per task it moves).
var transitions = func() (a [protocol.NumTaskStates][numTransitions]struct {
	to st
	ok bool
}) {
	for from, row := range table {
		for tr, to := range row {
			a[from][tr].to, a[from][tr].ok = to, true
		}
	}
	return a
}()

// Next reports the state after transition t from state s, and false when t
// is not allowed in s.
func Next(s protocol.TaskState, t Transition) (protocol.TaskState, bool) {
	if int(s) >= len(transitions) || t >= numTransitions {
		return s, false
	}
	n := transitions[s][t]
	if !n.ok {
		return s, false
	}
	return n.to, true
}

// resultTransition maps a worker's result type to its transition.
func resultTransition(r protocol.TaskResultType) Transition {
	if int(r) < len(resultTransitions) {
		return resultTransitions[r]
	}
	return TrResultFailed // anything a worker should not send
}

var resultTransitions = [...]Transition{
	protocol.ResultSuccess:             TrResultSuccess,
	protocol.ResultFailed:              TrResultFailed,
	protocol.ResultFailedWorkerDied:    TrResultWorkerDied,
	protocol.ResultFailedTimeout:       TrResultTimeout,
	protocol.ResultFailedProcessorDied: TrResultProcessorDied,
}

// confirmTransition maps a cancel confirmation to its transition; a value
// not defined counts as "not found".
func confirmTransition(c protocol.TaskCancelConfirmType) Transition {
	if int(c) < len(confirmTransitions) {
		return confirmTransitions[c]
	}
	return TrCancelConfirmNotFound
}

var confirmTransitions = [...]Transition{
	protocol.CancelConfirmCanceled: TrCancelConfirmCanceled,
	protocol.CancelConfirmFailed:   TrCancelConfirmFailed,
	protocol.CancelConfirmNotFound: TrCancelConfirmNotFound,
}
