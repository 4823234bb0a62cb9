package wait

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestForSeesTheCondition(t *testing.T) {
	var n atomic.Int32
	go func() {
		time.Sleep(20 * time.Millisecond)
		n.Store(1)
	}()
	if !For(10*time.Second, func() bool { return n.Load() == 1 }) {
		t.Fatal("For gave up on a condition that came true")
	}
	if For(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("For reported a condition that never held")
	}
}

func TestGoCancelsAndWaitsAtTheEnd(t *testing.T) {
	var task *Task
	t.Run("inner", func(t *testing.T) {
		task = Go(t, "the loop", 10*time.Second, false, func(ctx context.Context) error {
			<-ctx.Done()
			return errors.New("stopped")
		})
		select {
		case <-task.Done():
			t.Fatal("the task ended before the test did")
		case <-time.After(20 * time.Millisecond):
		}
	})
	select {
	case <-task.Done():
	default:
		t.Fatal("the task was still running after its test ended")
	}
	if err := task.Err(); err == nil || err.Error() != "stopped" {
		t.Fatalf("Err = %v", err)
	}
}
