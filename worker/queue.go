package worker

import (
	"container/heap"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// task is a task the agent holds: queued, running or suspended.
type task struct {
	msg *protocol.Task
	key string // string(task id)

	// Queue entry. A suspended task is queued again (resume = true) so that
	// it runs again when nothing of higher priority is waiting.
	seq      uint64
	priority int64 // msg.Priority, kept here so that heap comparisons stay in the task
	index    int   // position in the heap, -1 when not queued
	resume   bool

	proc *processor // bound processor, nil before it starts

	ahead       bool   // sent to proc ahead of time, not started yet (processor.ahead)
	sentUpTo    uint64 // proc.queued once its frame was queued; noChannel if the channel was closed (processor.received)
	withdrawing bool   // a ProcessorCancel for it is unanswered

	// Profiling, from dispatch to result.
	started  time.Time
	cpu0     uint64 // processor CPU ticks at dispatch
	rss0     uint64
	rssPeak  uint64
	ran      time.Duration // running time before the current run (timeout)
	runSince time.Time     // start of the current run; zero while suspended
}

// taskQueue orders tasks by priority (higher first), then resumed before
// new, then arrival order.
type taskQueue struct {
	items []*task
	seq   uint64
}

func (q *taskQueue) Len() int { return len(q.items) }

func (q *taskQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	if a.resume != b.resume {
		return a.resume
	}
	return a.seq < b.seq
}

func (q *taskQueue) Swap(i, j int) {
	q.items[i], q.items[j] = q.items[j], q.items[i]
	q.items[i].index = i
	q.items[j].index = j
}

func (q *taskQueue) Push(x any) {
	t := x.(*task)
	t.index = len(q.items)
	q.items = append(q.items, t)
}

func (q *taskQueue) Pop() any {
	n := len(q.items) - 1
	t := q.items[n]
	q.items[n] = nil
	q.items = q.items[:n]
	t.index = -1
	return t
}

func (q *taskQueue) push(t *task) {
	q.seq++
	t.seq = q.seq
	t.priority = int64(t.msg.Priority)
	heap.Push(q, t)
}

// requeue puts back a task taken from the queue, in its old place.
func (q *taskQueue) requeue(t *task) { heap.Push(q, t) }

func (q *taskQueue) peek() *task {
	if len(q.items) == 0 {
		return nil
	}
	return q.items[0]
}

func (q *taskQueue) pop() *task { return heap.Pop(q).(*task) }

func (q *taskQueue) remove(t *task) {
	if t.index >= 0 {
		heap.Remove(q, t.index)
	}
}
