package transport

// The C constructor below makes glibc serve libzmq's message buffers from
// its main heap.
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
// It must run as an ELF constructor, before the Go runtime starts threads:
// glibc binds a thread to an arena at its first malloc, and M_ARENA_MAX set
// later (say in a Go init) does not move threads already bound.

/*
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

__attribute__((constructor)) static void transport_tune_malloc(void) {
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

// TrimMemory gives the free pages of the C heap back to the operating system
// (malloc_trim). With the settings above, freed large buffers stay in the
// heap: glibc returns memory on its own only from the top of the heap, and
// only past 256 MiB, so a server that shrinks after a peak would keep its
// peak resident. malloc_trim also releases free pages in the middle.
func TrimMemory() {
	C.malloc_trim(0)
}
