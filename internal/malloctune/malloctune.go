package malloctune

// The constructor; the package's comment (doc.go) says why. Built only with
// cgo: without it there is no libzmq either, and nothing to tune.

/*
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

__attribute__((constructor)) static void malloctune_init(void) {
	// mallocprobe.TunablesSetMalloc makes the same test for the tests.
	const char *t = getenv("GLIBC_TUNABLES");
	if (t != NULL && strstr(t, "glibc.malloc.") != NULL) {
		return;
	}
	mallopt(M_MMAP_MAX, 0);
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
}
*/
import "C"
