package slurm

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opengris/scaler/internal/scalertest/expect"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func spec() JobSpec {
	return JobSpec{
		JobName: "scaler-workers-0a1b2c3d", CPUs: 2, WorkersPerJob: 2,
		ScalerBinary: "/shared/bin/scaler", Python: "/shared/venv/bin/python",
		SchedulerAddress: "tcp://login1:6378", QueueSize: 10, HeartbeatSeconds: 2, DeathTimeout: 300,
		LoggingLevel: "INFO",
	}
}

func TestSbatchArgs(t *testing.T) {
	full := spec()
	full.Partition, full.Account, full.TimeLimit, full.Memory, full.Output = "short", "proj", "1:00:00", "4G", "/tmp/o-%j"
	full.ExtraArgs = []string{"--qos=high", "--exclusive"}
	cases := []struct {
		name string
		s    JobSpec
		want []string
	}{
		{"defaults", spec(), []string{"--parsable", "--job-name=scaler-workers-0a1b2c3d", "--nodes=1", "--ntasks=1", "--cpus-per-task=2"}},
		{"every option", full, []string{"--parsable", "--job-name=scaler-workers-0a1b2c3d", "--nodes=1", "--ntasks=1", "--cpus-per-task=2",
			"--partition=short", "--account=proj", "--time=1:00:00", "--mem=4G", "--output=/tmp/o-%j", "--qos=high", "--exclusive"}},
	}
	for _, tc := range cases {
		if got := SbatchArgs(tc.s); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestScriptGolden(t *testing.T) {
	s := spec()
	s.StorageAddress, s.Capabilities, s.Preload = "tcp://login1:6379", "linux,cpu=2", "pkg.mod:init('it''s')"
	s.Python = "/path with space/it's/python"
	got := Script(s, "00112233445566778899aabbccddeeff")
	path := filepath.Join("testdata", "job.sh")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("script differs from %s (go test -update):\n%s", path, got)
	}
}

// The script, run by a real shell under a job id, passes the cluster the
// very worker ids the adapter computes, and quotes odd paths right.
func TestScriptRunsWithTheIDsTheAdapterReturns(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "it's scaler")
	// Prints one argument a line, as the cluster would receive them.
	os.WriteFile(fake, []byte("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"), 0o755)
	s := spec()
	s.WorkersPerJob = 3
	s.ScalerBinary = fake
	s.Python = "/path with space/it's/python"
	s.Preload = "m:f('x')"
	nonce := "ffeeddccbbaa99887766554433221100"
	cmd := exec.Command(sh, "-s")
	cmd.Stdin = strings.NewReader(Script(s, nonce))
	cmd.Env = append(os.Environ(), "SLURM_JOB_ID=4242")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v %s", err, out)
	}
	args := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	value := func(flag string) string {
		for i, a := range args {
			if a == flag && i+1 < len(args) {
				return args[i+1]
			}
		}
		t.Fatalf("no %s in %q", flag, args)
		return ""
	}
	if args[0] != "cluster" || args[1] != "tcp://login1:6378" {
		t.Fatalf("argv %q", args)
	}
	if got, want := value("--worker-ids"), strings.Join(WorkerIDs("4242", nonce, 3), ","); got != want {
		t.Errorf("ids %q, adapter returns %q", got, want)
	}
	if got := value("--worker-names"); got != "slurm-4242-0,slurm-4242-1,slurm-4242-2" {
		t.Errorf("names %q", got)
	}
	if value("--python") != s.Python || value("--preload") != s.Preload || value("--num-of-workers") != "3" {
		t.Errorf("argv %q", args)
	}
	if strings.Contains(string(out), "--relay") {
		t.Errorf("--relay without JobSpec.Relay: %q", args)
	}
	s.Relay = true
	cmd = exec.Command(sh, "-s")
	cmd.Stdin = strings.NewReader(Script(s, nonce))
	cmd.Env = append(os.Environ(), "SLURM_JOB_ID=4242")
	if out, err := cmd.Output(); err != nil || !strings.HasSuffix(string(out), "\n--relay\n") {
		t.Errorf("with Relay the cluster's last argument is not --relay: %v %q", err, out)
	}
	s.Relay = false

	// Outside Slurm the script refuses instead of starting workers with
	// ids nobody announced.
	cmd = exec.Command(sh, "-s")
	cmd.Stdin = strings.NewReader(Script(s, nonce))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "not started by Slurm") {
		t.Errorf("outside Slurm: %v %s", err, out)
	}
}

func TestWorkerIDs(t *testing.T) {
	got := WorkerIDs("17", "ab", 2)
	want := []string{"17|Worker|slurm-17-0|ab", "17|Worker|slurm-17-1|ab"}
	if !reflect.DeepEqual(got, want) || GroupID("17") != "slurm-17" {
		t.Errorf("%q %q", got, GroupID("17"))
	}
}

func TestParseSbatch(t *testing.T) {
	expect.Parses(t, "ParseSbatch", ParseSbatch, []expect.Case[string, string]{
		{In: "123\n", Want: "123"}, {In: "123;cluster2\n", Want: "123"}, {In: "  77  \n", Want: "77"},
		{In: "", Bad: true}, {In: "Submitted batch job 5\n", Bad: true}, {In: "12a\n", Bad: true},
	})
}

func TestParseQueue(t *testing.T) {
	expect.Parses(t, "ParseQueue", ParseQueue, []expect.Case[string, map[string]string]{
		{In: "", Want: map[string]string{}},
		{In: "1|PENDING\n2|RUNNING\n\n3|COMPLETING\n", Want: map[string]string{"1": "PENDING", "2": "RUNNING", "3": "COMPLETING"}},
		{In: "  4|RUNNING  \n", Want: map[string]string{"4": "RUNNING"}}, {In: "4 RUNNING\n", Bad: true},
		{In: "|RUNNING\n", Bad: true}, {In: "4|\n", Bad: true},
	})
}
