package scheduler

import (
	"flag"
	"strings"
	"testing"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/internal/scalertest/expect"
)

var update = flag.Bool("update", false, "rewrite testdata/scheduler/transitions.golden")

const goldenPath = "../../testdata/scheduler/transitions.golden"

// renderTable writes every (state, transition) pair of the state machine.
func renderTable() string {
	var b strings.Builder
	b.WriteString("# Task state machine: every (state, transition) pair.\n")
	b.WriteString("# Regenerate with: go test ./core/scheduler -run TestTransitionsGolden -update\n")
	for s := protocol.TaskState(0); s < protocol.NumTaskStates; s++ {
		for tr := Transition(0); tr < numTransitions; tr++ {
			if next, ok := Next(s, tr); ok {
				b.WriteString(s.String() + " -" + tr.String() + "-> " + next.String() + "\n")
			} else {
				b.WriteString(s.String() + " -" + tr.String() + "-> (rejected)\n")
			}
		}
	}
	return b.String()
}

func TestTransitionsGolden(t *testing.T) {
	expect.Golden(t, goldenPath, []byte(renderTable()), *update)
}

func TestMachineInvariants(t *testing.T) {
	// Terminal states absorb everything.
	for s := protocol.TaskState(0); s < protocol.NumTaskStates; s++ {
		if !s.Terminal() {
			continue
		}
		for tr := Transition(0); tr < numTransitions; tr++ {
			if _, ok := Next(s, tr); ok {
				t.Errorf("terminal %v has edge %v", s, tr)
			}
		}
	}
	// Every state in the table is reachable from Inactive and can reach a
	// terminal state.
	reach := map[protocol.TaskState]bool{protocol.TaskStateInactive: true}
	for changed := true; changed; {
		changed = false
		for s := range reach {
			for _, n := range table[s] {
				if !reach[n] {
					reach[n] = true
					changed = true
				}
			}
		}
	}
	for s := range table {
		if !reach[s] {
			t.Errorf("%v unreachable", s)
		}
		ends := false
		seen := map[protocol.TaskState]bool{s: true}
		queue := []protocol.TaskState{s}
		for len(queue) > 0 && !ends {
			c := queue[0]
			queue = queue[1:]
			for _, n := range table[c] {
				if n.Terminal() {
					ends = true
				}
				if !seen[n] {
					seen[n] = true
					queue = append(queue, n)
				}
			}
		}
		if !ends {
			t.Errorf("%v cannot finish", s)
		}
	}
}

// Every result and confirm type a worker may send, and values it should
// not, map to their transition (undefined ones: failed, not found).
func TestResultAndConfirmTransitions(t *testing.T) {
	results := map[protocol.TaskResultType]Transition{
		protocol.ResultSuccess: TrResultSuccess, protocol.ResultFailed: TrResultFailed,
		protocol.ResultFailedWorkerDied: TrResultWorkerDied, protocol.ResultFailedTimeout: TrResultTimeout,
		protocol.ResultFailedProcessorDied: TrResultProcessorDied, protocol.ResultRejected: TrResultFailed, 200: TrResultFailed,
	}
	for r, want := range results {
		if got := resultTransition(r); got != want {
			t.Errorf("resultTransition(%v) = %v, want %v", r, got, want)
		}
	}
	confirms := map[protocol.TaskCancelConfirmType]Transition{
		protocol.CancelConfirmCanceled: TrCancelConfirmCanceled, protocol.CancelConfirmFailed: TrCancelConfirmFailed,
		protocol.CancelConfirmNotFound: TrCancelConfirmNotFound, 9: TrCancelConfirmNotFound,
	}
	for c, want := range confirms {
		if got := confirmTransition(c); got != want {
			t.Errorf("confirmTransition(%v) = %v, want %v", c, got, want)
		}
	}
}
