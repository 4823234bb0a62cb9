//go:build !cgo

package mallocprobe

import "errors"

// Mmaps needs cgo (glibc's mallinfo2); built without it, it says so.
func Mmaps(n int) (bool, error) {
	return false, errors.New("mallocprobe: built without cgo")
}
