package scheduler

import (
	"slices"
	"testing"
)

func queueIDs(t *testing.T, q *taskQueue) []string {
	t.Helper()
	var fwd, back []string
	for e := q.Front(); e != nil; e = e.qnext {
		fwd = append(fwd, e.id)
	}
	for e := q.tail; e != nil; e = e.qprev {
		back = append(back, e.id)
	}
	slices.Reverse(back)
	if !slices.Equal(fwd, back) || len(fwd) != q.Len() {
		t.Fatalf("links disagree: forward %v, backward %v, Len %d", fwd, back, q.Len())
	}
	return fwd
}

// The intrusive queue keeps FIFO order with front insertion (re-placed
// tasks) and O(1) removal anywhere, and leaves a removed task unlinked.
func TestTaskQueue(t *testing.T) {
	tasks := map[string]*task{}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		tasks[id] = &task{id: id}
	}
	var q taskQueue
	if q.Front() != nil || q.Len() != 0 {
		t.Fatal("zero queue not empty")
	}
	q.PushBack(tasks["b"])
	q.PushBack(tasks["c"])
	q.PushFront(tasks["a"])
	q.PushBack(tasks["d"])
	q.PushFront(tasks["e"])
	steps := []struct {
		remove string
		want   []string
	}{
		{"", []string{"e", "a", "b", "c", "d"}},
		{"b", []string{"e", "a", "c", "d"}}, // middle
		{"e", []string{"a", "c", "d"}},      // head
		{"d", []string{"a", "c"}},           // tail
		{"a", []string{"c"}},
		{"c", nil},
	}
	for _, s := range steps {
		if s.remove != "" {
			r := tasks[s.remove]
			q.Remove(r)
			if r.qprev != nil || r.qnext != nil {
				t.Fatalf("%s still linked after Remove", s.remove)
			}
		}
		if got := queueIDs(t, &q); !slices.Equal(got, s.want) {
			t.Fatalf("after removing %q: %v, want %v", s.remove, got, s.want)
		}
	}
	if q.head != nil || q.tail != nil {
		t.Fatal("empty queue keeps links")
	}
	q.PushFront(tasks["a"]) // an emptied queue takes tasks again
	if got := queueIDs(t, &q); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("reused queue: %v", got)
	}
}
