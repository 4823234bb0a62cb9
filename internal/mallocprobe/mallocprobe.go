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

import "errors"

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
