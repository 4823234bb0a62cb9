package transport

// TuneMalloc makes glibc serve libzmq's message buffers from its main heap.
// It changes the allocator of the whole process, so it is not done on
// import: the roles that move large messages (scheduler, object storage,
// worker) call it from commands, before their first socket; tests and other
// programs that link transport keep glibc's defaults.
//
// By default glibc allocates blocks above 32 MiB (and any block that a
// thread's arena, capped at 64 MiB heaps, cannot hold) with a fresh mmap and
// unmaps them on free, so every large message page-faults its whole size in
// again: the receiving io thread mallocs each frame, and zmq copies each
// frame sent below ZeroCopyMin into a malloc'd buffer (larger ones are sent
// from where they are, see zerocopy.go). For 64 MiB set+get through the
// object storage that meant ~370 MB/s; with M_MMAP_MAX=0 (never mmap),
// M_ARENA_MAX=1 (one arena, growing by brk) and M_TRIM_THRESHOLD=256 MiB
// (keep up to 256 MiB of freed memory at the top of the heap) it is about
// 2x faster (still so with the zero-copy paths, where the receive buffers
// are the only large mallocs left: ~620 vs ~1190 MB/s). The costs: up to
// 256 MiB of freed C memory stays mapped, and all C threads (libzmq's io
// threads, Go threads in zmq_send) share one malloc arena, which matters
// little with few threads and large messages.
// Setting any glibc.malloc.* tunable in GLIBC_TUNABLES turns this off.
//
// Why before the first socket: glibc binds a thread to an arena at its first
// malloc, and M_ARENA_MAX does not move threads already bound. libzmq's io
// threads, which malloc every received frame, start with the first socket,
// so they all land in the main arena. A Go thread that malloc'd before the
// call (the runtime's thread start does) keeps its own arena for its small
// allocations; with M_MMAP_MAX=0 a block that arena cannot hold comes from
// the main heap too.

/*
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static int transport_tune_malloc(void) {
	const char *t = getenv("GLIBC_TUNABLES");
	if (t != NULL && strstr(t, "glibc.malloc.") != NULL) {
		return 0;
	}
	mallopt(M_MMAP_MAX, 0);
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	return 1;
}

// transport_malloc_mmaps mallocs and frees n bytes and says whether glibc
// served them with a fresh mmap (the test of TuneMalloc).
static int transport_malloc_mmaps(size_t n) {
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

import "sync"

var (
	tuneOnce sync.Once
	tuned    bool
)

// TuneMalloc applies the settings above once per process and reports
// whether they are in effect (false when GLIBC_TUNABLES sets malloc).
func TuneMalloc() bool {
	tuneOnce.Do(func() { tuned = C.transport_tune_malloc() == 1 })
	return tuned
}

// mallocMmaps reports whether glibc serves an n-byte malloc with an mmap of
// its own (-1: malloc failed).
func mallocMmaps(n int) int { return int(C.transport_malloc_mmaps(C.size_t(n))) }

// TrimMemory gives the free pages of the C heap back to the operating system
// (malloc_trim). With TuneMalloc's settings, freed large buffers stay in the
// heap: glibc returns memory on its own only from the top of the heap, and
// only past 256 MiB, so a server that shrinks after a peak would keep its
// peak resident. malloc_trim also releases free pages in the middle.
func TrimMemory() {
	C.malloc_trim(0)
}
