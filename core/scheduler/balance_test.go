package scheduler

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/opengris/scaler/core/protocol"
)

// randomFleet builds workers holding tasks for the balance policies: loads
// from idle to piled up, some workers and tasks with capabilities, and
// tasks in every state a worker's list holds (only Running ones move).
func randomFleet(r *rand.Rand) []*worker {
	caps := []string{"gpu", "mem", "fpga"}
	pickCaps := func(p float64) map[string]int64 {
		var m map[string]int64
		for _, c := range caps {
			if r.Float64() < p {
				if m == nil {
					m = map[string]int64{}
				}
				m[c] = 1
			}
		}
		return m
	}
	states := []protocol.TaskState{protocol.TaskStateRunning, protocol.TaskStateRunning, protocol.TaskStateRunning,
		protocol.TaskStateBalanceCanceling, protocol.TaskStateCanceling}
	nw := 1 + r.Intn(40)
	order := make([]*worker, nw)
	id := 0
	for i := range order {
		w := &worker{id: fmt.Sprintf("w%02d", i), seq: uint64(i + 1 + r.Intn(3)*100), caps: pickCaps(0.4)}
		load := 0
		switch r.Intn(4) {
		case 0: // idle
		case 1:
			load = r.Intn(4)
		case 2:
			load = r.Intn(30)
		case 3:
			load = 50 + r.Intn(150)
		}
		for k := 0; k < load; k++ {
			id++
			var need map[string]int64
			if len(w.caps) > 0 && r.Intn(3) == 0 {
				need = map[string]int64{}
				for c := range w.caps {
					if r.Intn(2) == 0 {
						need[c] = 1
					}
				}
			}
			t := &task{id: fmt.Sprintf("t%d", id), state: states[r.Intn(len(states))], msg: &protocol.Task{Capabilities: need}}
			t.welem = w.tasks.PushBack(t)
			t.worker = w
		}
		order[i] = w
	}
	// Registration order is the seq order.
	slices.SortFunc(order, func(a, b *worker) int { return int(a.seq) - int(b.seq) })
	for i := 1; i < len(order); i++ {
		if order[i].seq == order[i-1].seq {
			order[i].seq = order[i-1].seq + 1
		}
	}
	return order
}

func describeAdvice(order []*worker, advice map[*worker][]*task) []string {
	var out []string
	for _, w := range order {
		for _, t := range advice[w] {
			out = append(out, w.id+":"+t.id)
		}
	}
	if len(out) != 0 && len(advice) == 0 || len(out) == 0 && len(advice) != 0 {
		out = append(out, fmt.Sprintf("(%d workers advised)", len(advice)))
	}
	return out
}

// TestBalanceMatchesReference pins the rewritten policies (balance.go) to
// the simple forms they replaced (balance_ref_test.go): the same tasks move
// off the same workers, in the same order, on thousands of random fleets.
func TestBalanceMatchesReference(t *testing.T) {
	r := rand.New(rand.NewSource(19))
	moved := [2]int{}
	for i := 0; i < 1000; i++ {
		order := randomFleet(r)
		for p, pair := range []struct {
			name      string
			got, want func([]*worker) map[*worker][]*task
		}{{"even", unlimited(balanceEven), refBalanceEven}, {"capability", unlimited(balanceCapability), refBalanceCapability}} {
			got, want := describeAdvice(order, pair.got(order)), describeAdvice(order, pair.want(order))
			if !slices.Equal(got, want) {
				t.Fatalf("fleet %d, %s: advice\n%v\nwant\n%v", i, pair.name, got, want)
			}
			moved[p] += len(want)
		}
	}
	// The fleets must exercise both policies, not only their early exits.
	if moved[0] < 10000 || moved[1] < 10000 {
		t.Fatalf("only %v tasks moved over all fleets", moved)
	}
}

func unlimited(policy func([]*worker, int) map[*worker][]*task) func([]*worker) map[*worker][]*task {
	return func(order []*worker) map[*worker][]*task { return policy(order, math.MaxInt) }
}

// TestBalanceLimit: an advice under a limit moves min(limit, unlimited)
// tasks, each off a worker the unlimited advice moves it off. Even takes
// each worker's newest (the tail of its unlimited list); capability makes
// the first moves of the unlimited advice, so its lists are prefixes.
func TestBalanceLimit(t *testing.T) {
	r := rand.New(rand.NewSource(23))
	limited := 0
	for i := 0; i < 1000; i++ {
		order := randomFleet(r)
		for _, policy := range []struct {
			name   string
			advise func([]*worker, int) map[*worker][]*task
			suffix bool
		}{{"even", balanceEven, true}, {"capability", balanceCapability, false}} {
			all := policy.advise(order, math.MaxInt)
			total := 0
			for _, ts := range all {
				total += len(ts)
			}
			for _, limit := range []int{1, 3, total / 2, total} {
				if limit < 1 {
					continue
				}
				got := policy.advise(order, limit)
				moved := 0
				for w, ts := range got {
					moved += len(ts)
					want := all[w]
					if len(ts) > len(want) {
						t.Fatalf("fleet %d, %s, limit %d: %s moves %d, unlimited %d", i, policy.name, limit, w.id, len(ts), len(want))
					}
					if policy.suffix {
						want = want[len(want)-len(ts):]
					} else {
						want = want[:len(ts)]
					}
					if !slices.Equal(ts, want) {
						t.Fatalf("fleet %d, %s, limit %d: %s moves %v, not of %v", i, policy.name, limit, w.id, ts, all[w])
					}
				}
				if moved != min(limit, total) {
					t.Fatalf("fleet %d, %s, limit %d: moved %d of %d", i, policy.name, limit, moved, total)
				}
				if limit < total {
					limited++
				}
			}
		}
	}
	if limited < 1000 {
		t.Fatalf("only %d limited advices checked", limited)
	}
}

// An advice repeats only when the same tasks move off the same workers.
func TestAdviceEntries(t *testing.T) {
	a, b := &worker{id: "a"}, &worker{id: "b"}
	t1, t2 := &task{id: "t1"}, &task{id: "t2"}
	order := []*worker{a, b}
	x := adviceEntries(order, map[*worker][]*task{a: {t1}, b: {t2}})
	for _, other := range []map[*worker][]*task{{a: {t1, t2}}, {b: {t1, t2}}, {a: {t2}, b: {t1}}, {a: {t1}}, nil} {
		if slices.Equal(x, adviceEntries(order, other)) {
			t.Fatalf("%v equals %v", describeAdvice(order, other), x)
		}
	}
	if !slices.Equal(x, adviceEntries(order, map[*worker][]*task{b: {t2}, a: {t1}})) || adviceEntries(order, nil) != nil {
		t.Fatal("same advice differs")
	}
}

// Without a monitor listening (Outbox.Listening false) the scheduler builds
// no per-task monitor messages, and what peers receive is unchanged.
func TestNoTaskEventsWithoutListeners(t *testing.T) {
	run := func(deaf bool) (peers []string, taskEvents int) {
		h := newHarness(t, nil)
		h.out.deaf = deaf
		h.lopsided()
		h.advance(time.Second) // balance: five cancels
		h.confirm("a", "t3", protocol.CancelConfirmCanceled)
		h.confirm("a", "t4", protocol.CancelConfirmFailed)
		h.result("a", "t0", protocol.ResultSuccess)
		h.cancel("c", "t1", true)
		h.confirm("a", "t1", protocol.CancelConfirmCanceled)
		h.submit("c", "t8")
		peers = describe(h.take())
		for _, m := range h.takePub() {
			switch m.(type) {
			case *protocol.StateTask, *protocol.StateBalanceAdvice:
				taskEvents++
			}
		}
		return peers, taskEvents
	}
	heard, events := run(false)
	quiet, none := run(true)
	if events == 0 || none != 0 {
		t.Fatalf("%d task events with a listener, %d without", events, none)
	}
	equal(t, "messages to peers", quiet, heard)
}
