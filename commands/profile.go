package commands

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// profileEnv names a directory: when set, every scaler process (scheduler,
// cluster, worker, storage, ...) writes a Go CPU profile there as
// <role>-<pid>.pprof for the whole of its life. For measuring, not for
// production: see docs/performance.md.
const profileEnv = "SCALER_CPU_PROFILE"

// startProfile starts the CPU profile that profileEnv asks for, and returns
// the function that ends it. A profile that cannot be started is reported on
// stderr and skipped: it must never stop the process from working.
func startProfile(argv []string) func() {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return func() {}
	}
	name := filepath.Base(argv[0])
	if len(argv) > 1 && name == "scaler" {
		name = argv[1]
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", filepath.Base(name), os.Getpid()))
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v; no CPU profile\n", profileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v; no CPU profile\n", profileEnv, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
