// Package mallocprobe tells tests whether glibc serves a large malloc with
// an mmap of its own: the sign of whether internal/malloctune's settings
// are in effect in the process (and on the calling thread's arena). It has
// no settings of its own, so linking it changes nothing.
package mallocprobe

import (
	"os"
	"strings"
)

// TunablesSetMalloc reports whether GLIBC_TUNABLES sets a malloc tunable,
// in which case internal/malloctune leaves glibc to it and what a probe
// shows depends on those settings.
func TunablesSetMalloc() bool {
	return strings.Contains(os.Getenv("GLIBC_TUNABLES"), "glibc.malloc.")
}
