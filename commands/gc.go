package commands

import (
	"os"
	"runtime/debug"
)

// messageLoopGCPercent is the GC target of the roles that move messages
// (scheduler, worker): their live heap is a few MB, so the default of 100
// collects every few hundred tasks; 400 cuts collections by 4x for a few MB
// more memory. $GOGC, when set, wins.
const messageLoopGCPercent = 400

func tuneGCForMessageLoop() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(messageLoopGCPercent)
	}
}
