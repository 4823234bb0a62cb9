package top

import (
	"cmp"
	"slices"
	"strings"
)

// sortKey is one sort shortcut of the worker table: upstream 1.12.5's set,
// with F (rss_free) working (upstream looks it up under the wrong name and
// crashes).
type sortKey struct {
	key    rune
	column string // header of the column it sorts, shown as [column]
	text   bool   // a name: the first press sorts ascending, numbers descending
	value  func(r *workerRow) uint64
	name   func(r *workerRow) string
}

// sortKeys is in the order the Shortcuts line lists them.
var sortKeys = []sortKey{
	{key: 'g', column: "group", text: true, name: func(r *workerRow) string { return r.group }},
	// By the label shown, so the column reads in order (the ids of one
	// cluster differ only after the shared pid).
	{key: 'n', column: "worker", text: true, name: func(r *workerRow) string { return r.label }},
	{key: 'C', column: "agt_cpu", value: func(r *workerRow) uint64 { return r.agentCPU }},
	{key: 'M', column: "agt_rss", value: func(r *workerRow) uint64 { return r.agentRSS }},
	{key: 'c', column: "cpu", value: func(r *workerRow) uint64 { return r.cpu }},
	{key: 'm', column: "rss", value: func(r *workerRow) uint64 { return r.rss }},
	{key: 'F', column: "rss_free", value: func(r *workerRow) uint64 { return r.rssFree }},
	{key: 'f', column: "free", value: func(r *workerRow) uint64 { return r.free }},
	{key: 'w', column: "sent", value: func(r *workerRow) uint64 { return r.sent }},
	{key: 'd', column: "queued", value: func(r *workerRow) uint64 { return r.queued }},
	{key: 's', column: "suspended", value: func(r *workerRow) uint64 { return r.suspended }},
	{key: 'l', column: "lag", value: func(r *workerRow) uint64 { return r.lagUS }},
}

func findSortKey(k rune) *sortKey {
	for i := range sortKeys {
		if sortKeys[i].key == k {
			return &sortKeys[i]
		}
	}
	return nil
}

// View is what the user chose: the sort column and its direction, and the
// terminal's size.
type View struct {
	Sort    rune // a key of sortKeys
	Reverse bool // against the column's first-press direction
	Width   int
	Height  int
	// Left is how many columns of the worker table's numbers are scrolled
	// out to the left (the group and worker columns stay): a table wider
	// than the terminal is seen a part at a time (←, →; Render clamps it).
	Left int
}

// NewView is the initial view: sorted by processor CPU, busiest first, as
// upstream starts.
func NewView(width, height int) View { return View{Sort: 'c', Width: width, Height: height} }

// Press applies a key: a sort key sorts by its column, or reverses the
// order when it is already the sort column. It reports whether k was one.
func (v *View) Press(k rune) bool {
	if findSortKey(k) == nil {
		return false
	}
	if v.Sort == k {
		v.Reverse = !v.Reverse
	} else {
		v.Sort, v.Reverse = k, false
	}
	return true
}

// descending says which way the rows run under the current view.
func (v View) descending() bool {
	sk := findSortKey(v.Sort)
	return (sk != nil && !sk.text) != v.Reverse
}

// sortRows orders the rows by the view's column; ties keep a fixed order by
// worker id so rows do not jump between redraws.
func sortRows(rows []workerRow, v View) {
	sk := findSortKey(v.Sort)
	if sk == nil {
		sk = findSortKey('c')
	}
	desc := v.descending()
	slices.SortStableFunc(rows, func(a, b workerRow) int {
		var c int
		if sk.text {
			c = strings.Compare(sk.name(&a), sk.name(&b))
		} else {
			c = cmp.Compare(sk.value(&a), sk.value(&b))
		}
		if desc {
			c = -c
		}
		if c == 0 {
			c = strings.Compare(a.id, b.id)
		}
		return c
	})
}
