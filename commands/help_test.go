package commands

import (
	"strings"
	"sync"
	"testing"

	"github.com/urfave/cli/v2"
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
