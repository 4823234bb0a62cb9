// Package mallocprobe tells tests whether glibc serves a large malloc with
// an mmap of its own: the sign of whether internal/malloctune's settings
// are in effect in the process (and on the calling thread's arena). It has
// no settings of its own, so linking it changes nothing.
package mallocprobe

/*
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static int mallocprobe_mmaps(size_t n) {
	size_t before = mallinfo2().hblks;
	void *p = malloc(n);
	if (p == NULL) {
		return -1;
	}
	memset(p, 1, n);
	int mapped = mallinfo2().hblks > before;
	free(p);
	return mapped;
}
*/
import "C"

import (
	"errors"
	"os"
	"strings"
)

// TunablesSetMalloc reports whether GLIBC_TUNABLES sets a malloc tunable,
// in which case internal/malloctune leaves glibc to it and what a probe
// shows depends on those settings.
func TunablesSetMalloc() bool {
	return strings.Contains(os.Getenv("GLIBC_TUNABLES"), "glibc.malloc.")
}

// Mmaps mallocs, touches and frees n bytes on the calling thread and
// reports whether glibc mapped them apart from its heaps.
func Mmaps(n int) (bool, error) {
	switch C.mallocprobe_mmaps(C.size_t(n)) {
	case -1:
		return false, errors.New("mallocprobe: malloc failed")
	case 1:
		return true, nil
	}
	return false, nil
}
