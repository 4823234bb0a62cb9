package slurm

import (
	"fmt"
	"sort"
	"time"

	"github.com/opengris/scaler/adapter"
)

// MaxGroups bounds the groups listed for the scheduler (live jobs plus the
// records of jobs Slurm ended that the scheduler has not shut down yet).
const MaxGroups = 1024

// job is one submitted Slurm job, i.e. one worker group.
type job struct {
	id        string
	group     string
	workers   []string
	submitted time.Time // when sbatch answered: from then on squeue lists it
	state     string    // last state squeue showed ("" before the first poll)
	cancelled bool      // being stopped (shutdown or adapter stopping)
	signalled time.Time // when its cluster got SIGTERM (zero: it was cancelled outright)
	forced    bool      // cancelled outright after the grace (or at once)
}

// graceful says whether stopping j should SIGTERM its cluster only, so
// that it stops its workers in order, rather than scancel the job, which
// signals every process of the job at once: a processor killed while its
// worker still runs looks like a failure to the worker. A job not known to
// run yet is cancelled outright.
func (j *job) graceful() bool { return j.state == "RUNNING" }

// table is the slot accounting, with no I/O so that it can be tested as a
// table: a slot is taken from before sbatch runs (so concurrent starts
// cannot overshoot max) until squeue no longer lists the job. Pending,
// running and completing jobs all hold a slot, so --max-jobs bounds what
// squeue shows.
type table struct {
	max      int // -1: no limit
	reserved int // starts between reserve and added/unreserve
	live     map[string]*job
	groups   map[string]*job // listed for the scheduler, by group id
}

func newTable(max int) *table {
	return &table{max: max, live: map[string]*job{}, groups: map[string]*job{}}
}

// reserve takes a slot for a submission, or refuses with a LimitError.
func (t *table) reserve() error {
	if t.max != -1 && len(t.live)+t.reserved >= t.max {
		return &adapter.LimitError{Msg: fmt.Sprintf("Maximum number of Slurm jobs (%d) reached.", t.max)}
	}
	if len(t.groups)+t.reserved >= MaxGroups {
		return &adapter.LimitError{Msg: fmt.Sprintf("Maximum number of worker groups (%d) reached; shut some down first.", MaxGroups)}
	}
	t.reserved++
	return nil
}

// unreserve gives back the slot of a submission that failed.
func (t *table) unreserve() { t.reserved-- }

// added records the job a reserved submission created.
func (t *table) added(j *job) {
	t.reserved--
	t.live[j.id] = j
	t.groups[j.group] = j
}

// shutdown forgets the group; cancel says whether its job still needs a
// scancel (it does not once Slurm has ended it, or when already sent).
func (t *table) shutdown(group string) (j *job, cancel bool, err error) {
	j, ok := t.groups[group]
	if !ok {
		return nil, false, &adapter.UnknownGroupError{ID: group}
	}
	delete(t.groups, group)
	if t.live[j.id] == nil || j.cancelled {
		return j, false, nil
	}
	j.cancelled = true
	return j, true, nil
}

// unshutdown lists the group again after its scancel failed.
func (t *table) unshutdown(j *job) {
	j.cancelled = false
	t.groups[j.group] = j
}

// transition is a change squeue showed for one job.
type transition struct {
	job      *job
	from, to string // to == "": the job is gone from squeue
}

// observe applies one squeue listing taken at asOf (when squeue was
// started). A job missing from it has ended and frees its slot, but only
// if it was submitted before asOf: a listing taken while sbatch ran may
// not show it yet. Its group stays listed until the scheduler shuts it
// down, so the scheduler sees the shutdown it asks for succeed.
func (t *table) observe(queue map[string]string, asOf time.Time) []transition {
	var out []transition
	ids := make([]string, 0, len(t.live))
	for id := range t.live {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		j := t.live[id]
		state, listed := queue[id]
		switch {
		case listed && state != j.state:
			out = append(out, transition{j, j.state, state})
			j.state = state
		case !listed && j.submitted.Before(asOf):
			delete(t.live, id)
			out = append(out, transition{j, j.state, ""})
		}
	}
	return out
}

// overdue returns the jobs whose cluster got SIGTERM at least grace ago
// and that squeue still lists; they are to be cancelled outright, once.
func (t *table) overdue(now time.Time, grace time.Duration) []*job {
	var out []*job
	for _, id := range t.liveIDs() {
		j := t.live[id]
		if j.cancelled && !j.forced && !j.signalled.IsZero() && now.Sub(j.signalled) >= grace {
			j.forced = true
			out = append(out, j)
		}
	}
	return out
}

// liveIDs are the jobs that hold a slot, sorted.
func (t *table) liveIDs() []string {
	ids := make([]string, 0, len(t.live))
	for id := range t.live {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
