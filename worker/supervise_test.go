package worker

import "testing"

// TestExitVerdict pins what a supervisor does about a worker that ended,
// for every exit action and state.
func TestExitVerdict(t *testing.T) {
	cases := []struct {
		act                          action
		stopping, ownStop, noRestart bool
		want                         verdict
	}{
		{restartWorker, false, false, false, restartIt},
		{restartWorker, false, false, true, leaveDead},
		{restartWorker, true, true, false, noteExit},    // our own stop ended it
		{restartWorker, true, true, true, noteExit},     // likewise, restarts off or not
		{restartWorker, true, false, false, recordLoss}, // a death while the scheduler ends the cluster
		{restartWorker, true, false, true, recordLoss},
		{endCluster, false, false, false, beginEnd},
		{endCluster, false, false, true, beginEnd},
		{endCluster, true, false, false, noteExit},
		{endCluster, true, true, false, noteExit},
		{failWorker, false, false, false, recordFailure},
		{failWorker, true, true, false, recordFailure},
		{failWorker, false, false, true, recordFailure},
		{keepEnded, false, false, false, noteExit},
		{keepEnded, true, false, true, noteExit},
	}
	for _, c := range cases {
		if got := exitVerdict(c.act, c.stopping, c.ownStop, c.noRestart); got != c.want {
			t.Errorf("exitVerdict(action %d, stopping %v, own stop %v, no restart %v) = %d, want %d",
				c.act, c.stopping, c.ownStop, c.noRestart, got, c.want)
		}
	}
}
