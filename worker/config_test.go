package worker

import (
	"testing"

	"github.com/opengris/scaler/config"
)

// TestFromClusterPassesIOThreads: -it reaches every worker process, where
// commands gives it to transport.Init.
func TestFromClusterPassesIOThreads(t *testing.T) {
	c := config.DefaultCluster()
	c.NumOfWorkers, c.IOThreads = 2, 3
	workers, err := FromCluster(c, "python3")
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range workers {
		if w.IOThreads != 3 {
			t.Errorf("worker %d: IOThreads %d, want 3", i, w.IOThreads)
		}
	}
}
