package slurm

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// JobSpec is what one submitted job runs and asks Slurm for; the pure
// functions below turn it into sbatch arguments and a batch script.
type JobSpec struct {
	// Slurm's side (sbatch options).
	JobName       string // the full name, with the adapter's suffix
	Partition     string
	Account       string
	TimeLimit     string
	CPUs          int
	Memory        string
	Output        string
	ExtraArgs     []string
	WorkersPerJob int

	// The node's side: what the script runs.
	ScalerBinary     string
	Python           string
	SchedulerAddress string
	StorageAddress   string
	Capabilities     string
	QueueSize        int
	HeartbeatSeconds int
	TaskTimeout      int
	DeathTimeout     int
	Preload          string
	LoggingLevel     string
	Relay            bool // the job's cluster relays its workers (scaler_cluster --relay)
}

// SbatchArgs are the options of one submission; the script goes on
// sbatch's standard input, so no file is left on disk.
func SbatchArgs(s JobSpec) []string {
	args := []string{"--parsable", "--job-name=" + s.JobName, "--nodes=1", "--ntasks=1",
		"--cpus-per-task=" + strconv.Itoa(s.CPUs)}
	for _, o := range []struct{ flag, v string }{
		{"--partition=", s.Partition}, {"--account=", s.Account}, {"--time=", s.TimeLimit},
		{"--mem=", s.Memory}, {"--output=", s.Output},
	} {
		if o.v != "" {
			args = append(args, o.flag+o.v)
		}
	}
	return append(args, s.ExtraArgs...)
}

// shellQuote quotes s for a POSIX shell: single quotes, with each single
// quote written as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// The ids of a job's workers are built from the job id, which Slurm only
// assigns at submission: the script computes them from $SLURM_JOB_ID and
// the adapter computes the same ones from sbatch's answer (WorkerIDs).
// nonce, fixed per submission, keeps them unique even where job ids repeat
// (another Slurm cluster, a reset controller).

// GroupID is the worker group id of job jobID.
func GroupID(jobID string) string { return "slurm-" + jobID }

// WorkerName is the name of worker i of job jobID.
func WorkerName(jobID string, i int) string { return fmt.Sprintf("slurm-%s-%d", jobID, i) }

// WorkerIDs are the ids the n workers of job jobID use with the scheduler.
func WorkerIDs(jobID, nonce string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s|Worker|%s|%s", jobID, WorkerName(jobID, i), nonce)
	}
	return out
}

// Script is the batch script of a job: it runs "scaler cluster" with the
// job's workers, replacing the shell, so that Slurm's signals (scancel,
// time limit) reach the cluster, which stops its workers cleanly.
func Script(s JobSpec, nonce string) string {
	var names, ids []string
	for i := 0; i < s.WorkersPerJob; i++ {
		// Written with the shell variable J: the job id is not known yet.
		names = append(names, WorkerName("$J", i))
		ids = append(ids, fmt.Sprintf("$J|Worker|%s|%s", WorkerName("$J", i), nonce))
	}
	// One option and its value a line, so that the script reads well in
	// scontrol show job / the job's record.
	argv := []string{shellQuote(s.ScalerBinary) + " cluster " + shellQuote(s.SchedulerAddress),
		"--num-of-workers " + strconv.Itoa(s.WorkersPerJob),
		`--worker-names "` + strings.Join(names, ",") + `"`,
		`--worker-ids "` + strings.Join(ids, ",") + `"`,
		"--python " + shellQuote(s.Python),
		"--per-worker-task-queue-size " + strconv.Itoa(s.QueueSize),
		"--heartbeat-interval-seconds " + strconv.Itoa(s.HeartbeatSeconds),
		"--task-timeout-seconds " + strconv.Itoa(s.TaskTimeout),
		"--death-timeout-seconds " + strconv.Itoa(s.DeathTimeout),
	}
	for _, o := range []struct{ flag, v string }{
		{"--object-storage-address", s.StorageAddress}, {"--per-worker-capabilities", s.Capabilities},
		{"--preload", s.Preload}, {"--logging-level", s.LoggingLevel},
	} {
		if o.v != "" {
			argv = append(argv, o.flag+" "+shellQuote(o.v))
		}
	}
	if s.Relay {
		argv = append(argv, "--relay")
	}
	return "#!/bin/sh\n" +
		"# scaler worker job, submitted by scaler_worker_adapter_slurm.\n" +
		"# The worker ids are derived from the job id; the adapter announced the\n" +
		"# same ones to the scheduler.\n" +
		"J=\"${SLURM_JOB_ID:?not started by Slurm}\"\n" +
		"exec " + strings.Join(argv, " \\\n  ") + "\n"
}

// ParseSbatch reads the job id from "sbatch --parsable": "ID" or
// "ID;CLUSTER" on the first line.
func ParseSbatch(out string) (string, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	id, _, _ := strings.Cut(strings.TrimSpace(line), ";")
	if id == "" {
		return "", errors.New("sbatch printed no job id")
	}
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return "", fmt.Errorf("sbatch printed %q, not a job id", line)
	}
	return id, nil
}

// QueueFormat is the squeue output format ParseQueue reads: job id and
// state, e.g. "1234|PENDING".
const QueueFormat = "%i|%T"

// ParseQueue reads "squeue -h -o '%i|%T'" into job id -> state. Slurm
// lists a job until it has left the system (COMPLETING included), so a job
// missing from the output has ended.
func ParseQueue(out string) (map[string]string, error) {
	jobs := map[string]string{}
	for n, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		id, state, ok := strings.Cut(line, "|")
		if !ok || id == "" || state == "" {
			return nil, fmt.Errorf("squeue line %d: %q is not ID|STATE", n+1, line)
		}
		jobs[id] = state
	}
	return jobs, nil
}

// countStates summarizes a queue for logs, e.g. "1 PENDING, 2 RUNNING".
func countStates(states []string) string {
	n := map[string]int{}
	for _, s := range states {
		n[s]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", n[k], k)
	}
	return strings.Join(parts, ", ")
}
