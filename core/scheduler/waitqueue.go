package scheduler

// taskQueue is a wait group's FIFO of waiting tasks, linked through the
// tasks themselves (task.qprev, task.qnext) instead of a container/list,
// whose element is one more 48-byte allocation per waiting task: with
// 1,000,000 tasks waiting that is 48 MB of the scheduler's heap, and
// removal from the middle (a cancel) stays O(1) either way. A task is in at
// most one queue (its group's).
type taskQueue struct {
	head, tail *task
	n          int
}

func (q *taskQueue) Len() int { return q.n }

// Front is the oldest task, nil when empty.
func (q *taskQueue) Front() *task { return q.head }

func (q *taskQueue) PushBack(t *task) { q.insert(t, q.tail, nil) }

func (q *taskQueue) PushFront(t *task) { q.insert(t, nil, q.head) }

// insert links t between prev and next, neighbours in q; nil prev is the
// front, nil next the back.
func (q *taskQueue) insert(t, prev, next *task) {
	t.qprev, t.qnext = prev, next
	if prev != nil {
		prev.qnext = t
	} else {
		q.head = t
	}
	if next != nil {
		next.qprev = t
	} else {
		q.tail = t
	}
	q.n++
}

// Remove takes t, which must be in q, out of it.
func (q *taskQueue) Remove(t *task) {
	if t.qprev != nil {
		t.qprev.qnext = t.qnext
	} else {
		q.head = t.qnext
	}
	if t.qnext != nil {
		t.qnext.qprev = t.qprev
	} else {
		q.tail = t.qprev
	}
	t.qprev, t.qnext = nil, nil
	q.n--
}
