// Package procs reads /proc for the tests that start processes: whether a
// process still runs, its parent, its descendants, its command line; and
// waits for a started process to end (WaitOrKillGroup). Like freeport it
// imports nothing of this module, so any package's own tests may use it.
package procs

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// stat is the fields of /proc/<pid>/stat after the command name (the state
// first, then the parent), or nil when there is no such process. The name
// is in parentheses and may hold spaces, so the fields start after the last
// ')'.
func stat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
}

// Alive reports whether pid runs; a zombie counts as gone.
func Alive(pid int) bool {
	f := stat(pid)
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// Parent is pid's parent, or 0 when pid is gone.
func Parent(pid int) int {
	f := stat(pid)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// Descendants lists the processes below pid: its children, theirs, and so
// on, nearest first.
func Descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			if pp := Parent(p); pp != 0 {
				children[pp] = append(children[pp], p)
			}
		}
	}
	var out []int
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// Cmdline is pid's command line with its arguments joined by spaces ("" when
// pid is gone, and for a moment after a fork's exec begins, before the
// kernel has set the new program's arguments up).
func Cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
}
