// Package malloctune makes glibc serve libzmq's message buffers from its main
// heap, for the scaler binary: package commands links it (for its effect
// only), so the roles that move large messages (scheduler, object storage,
// worker) run with it, while tests and other programs that link transport
// keep glibc's defaults (storage's tests link it too, to measure what the
// binary does). The worker passes the same settings to its Python
// processors through GLIBC_TUNABLES (worker/processor.go).
//
// By default glibc allocates blocks above 32 MiB (and any block that a
// thread's arena, capped at 64 MiB heaps, cannot hold) with a fresh mmap and
// unmaps them on free, so every large message page-faults its whole size in
// again: the receiving io thread mallocs each frame, and zmq copies each
// frame sent below transport.ZeroCopyMin into a malloc'd buffer (larger ones
// are sent from where they are). For 64 MiB set+get through the object
// storage that meant ~370 MB/s; with M_MMAP_MAX=0 (never mmap),
// M_ARENA_MAX=1 (one arena, growing by brk) and M_TRIM_THRESHOLD=256 MiB
// (keep up to 256 MiB of freed memory at the top of the heap) it is about
// 2x faster (still so with the zero-copy paths, where the receive buffers
// are the only large mallocs left: ~620 vs ~1190 MB/s). The costs: up to
// 256 MiB of freed C memory stays mapped (transport.TrimMemory gives it
// back), and all C threads (libzmq's io threads, Go threads in zmq_send)
// share one malloc arena, which matters little with few threads and large
// messages. The binary's other roles (cluster supervisor, top, ui) malloc
// little, so the settings cost them nothing measurable.
// Setting any glibc.malloc.* tunable in GLIBC_TUNABLES turns this off.
//
// Why an ELF constructor and not a function a role calls: glibc binds a
// thread to an arena at its first malloc, and M_ARENA_MAX set later does not
// move threads already bound. By the time Go code runs, the runtime has
// started threads, and each that started another malloc'd (cgo's thread
// start does) into an arena of its own; a block such an arena cannot hold is
// then mmap'd whatever M_MMAP_MAX says, and libzmq's io threads, started
// later, are handed those arenas in turn. A call from commands measured
// exactly that: a 64 MiB malloc was still mmap'd (TestEveryThreadUsesTheHeap
// checks that it is not with the constructor).
package malloctune
