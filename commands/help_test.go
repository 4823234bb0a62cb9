package commands

import (
	"strings"
	"sync"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/opengris/scaler/config"
)

// Help is rendered by each app's own flag docs: printing a role's help
// neither changes how other urfave apps in the process render flags nor
// shares state between apps built at the same time.
func TestHelpLeavesProcessGlobalsAlone(t *testing.T) {
	other := &cli.StringFlag{Name: "other", Usage: "not ours"}
	before := other.String()
	if out, _, code := run(t, "scaler_scheduler", "-h"); code != 0 || !strings.Contains(out, "-mt, --max-number-of-tasks-waiting N") {
		t.Fatalf("scheduler -h: exit %d\n%s", code, out)
	}
	if after := other.String(); after != before {
		t.Errorf("a foreign flag renders %q after scaler_scheduler -h, %q before", after, before)
	}

	// Built and run concurrently (the race detector and the map checks of
	// the runtime see any shared table), every app prints the same help.
	want, _, _ := run(t, "scaler_cluster", "-h")
	var wg sync.WaitGroup
	outs := make([]string, 8)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], _, _ = run(t, "scaler_cluster", "-h")
		}()
	}
	wg.Wait()
	for i, got := range outs {
		if got != want {
			t.Errorf("run %d printed different help:\n%s\n---\n%s", i, got, want)
		}
	}
}

func TestNotAppliedOptionsAreNamedAtStartUp(t *testing.T) {
	sched := func(mod func(*config.Scheduler)) config.Section {
		c := config.DefaultScheduler()
		mod(c)
		return c
	}
	cluster := config.DefaultCluster()
	cluster.IOThreads = 3
	tests := []struct {
		name string
		cfg  config.Section
		want []string // keys warned about, in order
	}{
		{"defaults", config.DefaultScheduler(), nil},
		{"io_threads 4 is applied", sched(func(c *config.Scheduler) { c.IOThreads = 4 }), nil},
		{"both", sched(func(c *config.Scheduler) { c.IOThreads = 2; c.LoggingConfigFile = "log.conf"; c.EventLoop = "uvloop" }), []string{"logging_config_file", "event_loop"}},
		{"cluster -it 3 is applied", cluster, nil},
		{"uvloop", sched(func(c *config.Scheduler) { c.EventLoop = "uvloop" }), []string{"event_loop"}},
		{"top has none of them", config.DefaultTop(), nil},
		{"storage has no io_threads", config.DefaultObjectStorageServer(), nil},
	}
	for _, tc := range tests {
		var got []string
		for _, n := range notApplied(tc.cfg) {
			got = append(got, n.key)
			if n.value == "" || !strings.Contains(n.why, "not applied") {
				t.Errorf("%s: warning %+v does not say what is not applied", tc.name, n)
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: warned about %q, want %q", tc.name, got, tc.want)
		}
	}
}
