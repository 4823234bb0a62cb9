package transport

// #include <malloc.h>
import "C"

// TrimMemory gives the free pages of the C heap back to the operating system
// (malloc_trim). In the scaler binary, internal/malloctune keeps freed
// large buffers in the heap: glibc returns memory on its own only from the
// top of the heap, and only past 256 MiB, so a server that shrinks after a
// peak would keep its peak resident. malloc_trim also releases free pages
// in the middle.
func TrimMemory() {
	C.malloc_trim(0)
}
