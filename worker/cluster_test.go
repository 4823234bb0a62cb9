package worker

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengris/scaler/config"
	"github.com/opengris/scaler/internal/scalertest/procs"
)

// exitOf runs a real shell that ends as script says and returns its Wait error.
func exitOf(t *testing.T, script string) error {
	t.Helper()
	err := exec.Command("sh", "-c", script).Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("sh -c %q: %v", script, err)
		}
	}
	return err
}

func TestExitAction(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   action
	}{
		{"exit 0", keepEnded}, // stopped by SIGINT/SIGTERM
		{"exit " + strconv.Itoa(StopFailed.ExitStatus()), restartWorker}, // e.g. object storage lost
		{"exit 2", failWorker}, // configuration error
		{"exit " + strconv.Itoa(StopShutdown.ExitStatus()), endCluster},     // the scheduler asked
		{"exit " + strconv.Itoa(StopDeathTimeout.ExitStatus()), endCluster}, // death timeout
		{"exit " + strconv.Itoa(StopFatal.ExitStatus()), failWorker},        // preload failed
		{"exit 70", restartWorker},                                          // unknown: a death
		{"kill -9 $$", restartWorker},                                       // killed
		{"kill -SEGV $$", restartWorker},                                    // crashed
		{"kill -TERM $$", restartWorker},                                    // default action of SIGTERM: not our clean stop
	} {
		if got := exitAction(exitOf(t, tc.script)); got != tc.want {
			t.Errorf("%s: action %d, want %d", tc.script, got, tc.want)
		}
	}
	if exitAction(os.ErrNotExist) != restartWorker {
		t.Error("a Wait failure that is not an exit status must count as a death")
	}
}

func TestBackoff(t *testing.T) {
	var b backoff
	quick := time.Second
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if d := b.delay(quick); d != w {
			t.Fatalf("death %d in a row: delay %s, want %s", i+1, d, w)
		}
	}
	if d := b.delay(backoffReset); d != backoffMin {
		t.Fatalf("after running %s: delay %s, want %s", backoffReset, d, backoffMin)
	}
	if d := b.delay(quick); d != 2*backoffMin {
		t.Fatalf("next quick death: delay %s, want %s", d, 2*backoffMin)
	}
}

// agentPIDs lists the worker agent processes of a cluster: its children
// running the hidden worker subcommand.
func agentPIDs(cluster int) []int {
	var out []int
	for _, p := range procs.Descendants(cluster) {
		if procs.Parent(p) != cluster || !procs.Alive(p) {
			continue
		}
		if argv := strings.Split(procs.Cmdline(p), " "); len(argv) > 1 && argv[1] == "worker" {
			out = append(out, p)
		}
	}
	return out
}

func TestClusterRestartsKilledWorker(t *testing.T) {
	s, c, h := startSchedulerAndClient(t, func(cfg *config.Scheduler) { cfg.WorkerTimeoutSeconds = 3 })
	cl := startCluster(t, "-n", "1", s.Addr())
	add := h.fn(srcAdd, "add")
	task := h.task(add, 0, h.arg("1"), h.arg("1"))
	_ = c.Send(task)
	awaitResult(t, c, task.TaskID, 30*time.Second)
	agents := agentPIDs(cl.cmd.Process.Pid)
	if len(agents) != 1 {
		t.Fatalf("agents %v, want one", agents)
	}
	old := agents[0]
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var replacement []int
	for {
		if cl.wait(0) {
			t.Fatalf("the cluster exited after its only worker died: %v", cl.err)
		}
		if replacement = agentPIDs(cl.cmd.Process.Pid); len(replacement) == 1 && replacement[0] != old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new worker agent within 30 s (agents %v)", replacement)
		}
		time.Sleep(20 * time.Millisecond)
	}
	task = h.task(add, 0, h.arg("2"), h.arg("2"))
	_ = c.Send(task)
	awaitResult(t, c, task.TaskID, 60*time.Second)
	out := cl.out.String()
	if n := strings.Count(out, "restarting it in 500ms as"); n != 1 {
		t.Errorf("%d restart lines, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "died (killed by signal killed)") {
		t.Errorf("the restart line does not say how the worker died:\n%s", out)
	}
	// The cluster's own stop: the new agent stops too and is not restarted.
	cl.terminate(t, 20*time.Second)
	expectGone(t, replacement)
	if strings.Count(cl.out.String(), "restarting it in") != 1 {
		t.Errorf("a worker was restarted during the cluster's stop:\n%s", cl.out.String())
	}
}

// The supervisor loop with stand-in worker processes (sh scripts that read
// their configuration on stdin and end as the case says), so each row of
// exitActions is seen end to end.
func TestRunClusterPolicy(t *testing.T) {
	// starts counts the worker processes started, per name.
	const prelude = `cfg=$(cat); name=$(printf '%s' "$cfg" | sed 's/.*"Name":"\([^"]*\)".*/\1/'); echo x >> "$DIR/$name";` +
		` n=$(wc -l < "$DIR/$name"); trap 'kill $! 2>/dev/null; exit 0' INT TERM;`
	for _, tc := range []struct {
		name    string
		script  string // after prelude; $name is a or b, $n the start count of this slot
		workers int
		stop    time.Duration // cancel the cluster after this long; 0: it must end by itself
		starts  map[string]int
		wantErr bool
	}{
		{"deaths are restarted", `[ "$n" -le 2 ] && kill -9 $$; sleep 60 & wait`, 1, 4 * time.Second, map[string]int{"a": 3}, false},
		{"stopped by a signal", `exit 0`, 2, 0, map[string]int{"a": 1, "b": 1}, false},
		{"scheduler shutdown ends the cluster", `exit 3`, 2, 0, map[string]int{"a": 1, "b": 1}, false},
		{"death timeout ends the cluster; a later death is not restarted",
			`[ "$name" = a ] && exit 4; sleep 1; kill -9 $$`, 2, 0, map[string]int{"a": 1, "b": 1}, true},
		{"preload failure is not restarted", `exit 5`, 2, 0, map[string]int{"a": 1, "b": 1}, true},
		{"a configuration error is not restarted", `exit 2`, 1, 0, map[string]int{"a": 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("DIR", dir)
			var workers []Config
			for _, name := range []string{"a", "b"}[:tc.workers] {
				workers = append(workers, Config{Name: name, SchedulerAddress: "tcp://127.0.0.1:1"})
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.stop > 0 {
				time.AfterFunc(tc.stop, cancel)
			}
			done := make(chan error, 1)
			go func() {
				done <- RunCluster(ctx, workers, ClusterOptions{Command: []string{"sh", "-c", prelude + tc.script}, StopGrace: 5 * time.Second},
					testLog(t, "cluster"))
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(tc.stop + 20*time.Second):
				t.Fatal("RunCluster did not return")
			}
			if (err != nil) != tc.wantErr {
				t.Errorf("RunCluster: %v (want an error: %v)", err, tc.wantErr)
			}
			for name, want := range tc.starts {
				b, _ := os.ReadFile(filepath.Join(dir, name))
				if got := strings.Count(string(b), "x"); got != want {
					t.Errorf("worker %s started %d times, want %d", name, got, want)
				}
			}
		})
	}
}

// A worker started again in its slot gets a new id and names the slot's
// first id in Config.Slot (its heartbeats' Slot), also after a second death.
func TestRestartedWorkerNamesItsSlot(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DIR", dir)
	// Each start saves its configuration; the first two die at once.
	script := `n=$(ls "$DIR" | wc -l); cat > "$DIR/cfg-$n"; [ "$n" -lt 2 ] && kill -9 $$; trap 'kill $! 2>/dev/null; exit 0' INT TERM; sleep 60 & wait`
	first := NewWorkerID("a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- RunCluster(ctx, []Config{{Name: "a", WorkerID: first, SchedulerAddress: "tcp://127.0.0.1:1"}},
			ClusterOptions{Command: []string{"sh", "-c", script}, StopGrace: 5 * time.Second}, testLog(t, "cluster"))
	}()
	var cfgs []Config
	for deadline := time.Now().Add(20 * time.Second); len(cfgs) < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d starts within 20 s, want 3", len(cfgs))
		}
		b, err := os.ReadFile(filepath.Join(dir, "cfg-"+strconv.Itoa(len(cfgs))))
		if err != nil || !json.Valid(b) {
			continue // not started, or not written in full yet
		}
		var c Config
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, c)
	}
	cancel()
	<-done
	if cfgs[0].WorkerID != first || cfgs[0].Slot != "" {
		t.Errorf("first start: id %q slot %q, want %q and no slot", cfgs[0].WorkerID, cfgs[0].Slot, first)
	}
	seen := map[string]bool{first: true}
	for i, c := range cfgs[1:] {
		if seen[c.WorkerID] || c.Slot != first {
			t.Errorf("restart %d: id %q slot %q, want a new id and slot %q", i+1, c.WorkerID, c.Slot, first)
		}
		seen[c.WorkerID] = true
	}
}

// A processor killed before it is ready (here: during a slow preload)
// stops its agent, which the cluster restarts; one that exits by itself
// (TestClusterPreloadFailureExits) is not restarted.
func TestClusterRestartsAgentWhoseProcessorWasKilledStarting(t *testing.T) {
	s, _, _ := startSchedulerAndClient(t, nil)
	cl := startCluster(t, "-n", "1", s.Addr(), "--preload", "time:sleep(60)")
	deadline := time.Now().Add(30 * time.Second)
	var proc int
	for proc == 0 {
		for _, p := range procs.Descendants(cl.cmd.Process.Pid) {
			if strings.Contains(procs.Cmdline(p), "scaler.worker.processor") {
				proc = p
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no processor started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // into its preload
	if err := syscall.Kill(proc, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(cl.out.String(), "restarting it in") {
		if cl.wait(0) {
			t.Fatalf("the cluster exited (%v) after a processor was killed while starting", cl.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no restart:\n%s", cl.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// NoRestart and ProcessGroup (the native adapter's options): a worker
// killed with SIGKILL is not started again, RunCluster returns, and the
// child it left in its process group is swept; Started reports the pid.
func TestRunClusterNoRestartSweepsGroup(t *testing.T) {
	dir := t.TempDir()
	script := `cat >/dev/null; echo x >> "$DIR/starts"; sleep 60 & echo $! > "$DIR/child"; sleep 0.3; kill -9 $$`
	t.Setenv("DIR", dir)
	var started []int
	done := make(chan error, 1)
	go func() {
		done <- RunCluster(context.Background(), []Config{{Name: "a", SchedulerAddress: "tcp://127.0.0.1:1"}},
			ClusterOptions{Command: []string{"sh", "-c", script}, NoRestart: true, ProcessGroup: true,
				Started: func(_ string, pid int) { started = append(started, pid) }}, testLog(t, "cluster"))
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunCluster: %v (a death without restart is no failure)", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("RunCluster did not return after its only worker died")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "starts")); strings.Count(string(b), "x") != 1 {
		t.Fatalf("worker started %d times, want 1", strings.Count(string(b), "x"))
	}
	if len(started) != 1 || started[0] <= 0 {
		t.Fatalf("Started calls: %v", started)
	}
	b, err := os.ReadFile(filepath.Join(dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if !procs.Alive(child) {
			break // gone (or a zombie waiting for init)
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(child, syscall.SIGKILL)
			t.Fatalf("the worker's child %d outlived it", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
