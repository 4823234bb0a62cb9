// Package wait holds the two waits that tests of goroutines and processes
// repeat: poll a condition until it holds, and run something in the
// background until the test ends. Like freeport it imports nothing of this
// module, so any package's own tests may use it.
package wait

import (
	"context"
	"testing"
	"time"
)

// pollEvery is short next to any deadline the tests give, and long enough
// not to spin on a shared machine.
const pollEvery = 5 * time.Millisecond

// For polls cond until it holds or within has passed; it reports whether
// it held (cond is asked once more at the deadline).
func For(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(pollEvery)
	}
	return cond()
}

// Until is For that fails the test, naming what it waited for, when cond
// does not hold within the deadline.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !For(within, cond) {
		t.Fatalf("timed out after %v waiting for %s", within, what)
	}
}

// Task is something Go runs in the background for a test.
type Task struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Go runs run on its own goroutine with a context that is cancelled when
// the test ends; the test then waits up to stopWithin for run to return and
// fails, naming what, if it does not. A non-nil error from run after the
// cancel fails the test only when failOnError is set.
func Go(t testing.TB, what string, stopWithin time.Duration, failOnError bool, run func(context.Context) error) *Task {
	ctx, cancel := context.WithCancel(context.Background())
	task := &Task{cancel: cancel, done: make(chan struct{})}
	go func() {
		task.err = run(ctx)
		close(task.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-task.done:
			if failOnError && task.err != nil {
				t.Errorf("%s: %v", what, task.err)
			}
		case <-time.After(stopWithin):
			t.Errorf("%s did not stop within %v", what, stopWithin)
		}
	})
	return task
}

// Cancel cancels the task's context without waiting.
func (task *Task) Cancel() { task.cancel() }

// Done is closed once run has returned.
func (task *Task) Done() <-chan struct{} { return task.done }

// Err waits for run to return and gives its error.
func (task *Task) Err() error {
	<-task.done
	return task.err
}

// Ended waits up to within for run to return: it gives run's error and
// true, or nil and false if run is still going.
func (task *Task) Ended(within time.Duration) (error, bool) {
	select {
	case <-task.done:
		return task.err, true
	case <-time.After(within):
		return nil, false
	}
}
