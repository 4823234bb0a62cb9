package top

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opengris/scaler/core/protocol"
	"github.com/opengris/scaler/monitor/feed"
)

// Style says how a line is drawn; the golden files record text only.
type Style uint8

const (
	StyleNormal Style = iota
	StyleTitle        // the status line while the feed is live
	StyleAlert        // the status line while waiting or after the feed stopped
	StyleHeader       // column headers
)

// Line is one row of the screen.
type Line struct {
	Text  string
	Style Style
}

// Widths of the cut columns: upstream's 10 for groups and 20 for workers,
// 18 for clients.
const (
	groupWidth  = 10
	workerWidth = 20
	clientWidth = 18
)

// workerRow is one worker with the raw values it is sorted by.
type workerRow struct {
	id, label, group                   string
	agentCPU, agentRSS, cpu, rss       uint64
	rssFree, free, sent, queued, lagUS uint64
	suspended                          uint64
	last                               uint8
	itl                                string
	processors                         int
}

// Render draws the whole screen for one feed state and view at time now
// (which also gives the time zone of the clock times shown). It is pure:
// the same input gives the same lines, which the golden files pin.
func Render(st feed.State, v View, now time.Time) []Line {
	lines := []Line{statusLine(st, now)}
	if st.Status == nil {
		lines = append(lines, Line{},
			Line{Text: "The scheduler's status appears here once it arrives: start a scheduler whose monitor address is " + st.Address + "."},
			Line{Text: "q quits"})
		return fit(lines, v)
	}
	block, fits := topBlock(st.Status, v.Width)
	blockWidth := 0
	for _, l := range block {
		blockWidth = max(blockWidth, runeLen(l))
	}
	// Below the block: separator, two lines of shortcuts, blank, total,
	// header and one row.
	if need := 1 + 1 + len(block) + 6 + len(wrap(shortcuts(), v.Width)); !fits || v.Height < need {
		return tooSmall(v, max(blockWidth, 1), need)
	}
	lines = append(lines, Line{})
	for _, l := range block {
		lines = append(lines, Line{Text: l})
	}
	lines = append(lines,
		Line{Text: strings.Repeat("-", blockWidth)},
	)
	for _, l := range wrap(shortcuts(), v.Width) {
		lines = append(lines, Line{Text: l})
	}
	table := newWorkerGrid(st.Status, v)
	v.Left = table.left(v.Width)
	lines = append(lines,
		Line{Text: order(v)},
		Line{},
		Line{Text: fmt.Sprintf("Total %d worker group(s) with %d worker(s)%s", len(st.Status.WorkerGroups), len(st.Status.Workers), table.hint(v))},
	)
	lines = append(lines, workerTable(st.Status, table, v, v.Height-len(lines))...)
	return fit(lines, v)
}

// ClampLeft is v.Left as Render shows it: within what the worker table of
// st needs to scroll at v's width (0 when it fits).
func ClampLeft(st feed.State, v View) int {
	if st.Status == nil {
		return 0
	}
	return newWorkerGrid(st.Status, v).left(v.Width)
}

// statusLine says where the data comes from and whether it is current.
func statusLine(st feed.State, now time.Time) Line {
	clock := func(t time.Time) string { return t.In(now.Location()).Format("15:04:05") }
	ago := func(t time.Time) string {
		d := now.Sub(t)
		if d < 0 {
			d = 0
		}
		return Seconds(uint64(d / time.Second))
	}
	restarts := ""
	if st.Restarts > 0 {
		restarts = fmt.Sprintf("; the feed came back %d time(s)", st.Restarts)
	}
	switch {
	case st.Updated.IsZero():
		return Line{Text: "waiting for the scheduler at " + st.Address + ": nothing received yet", Style: StyleAlert}
	case st.Stale:
		return Line{Text: fmt.Sprintf("feed stopped: nothing from %s since %s (%s ago), showing the last update; waiting for the scheduler to return%s",
			st.Address, clock(st.Updated), ago(st.Updated), restarts), Style: StyleAlert}
	case st.Status == nil:
		return Line{Text: "connected to " + st.Address + ", waiting for the first status", Style: StyleAlert}
	}
	return Line{Text: fmt.Sprintf("scaler_top %s  updated %s%s", st.Address, clock(st.Updated), restarts), Style: StyleTitle}
}

func tooSmall(v View, width, height int) []Line {
	var lines []Line
	for _, l := range wrap("Your terminal is too small to show scaler_top", v.Width) {
		lines = append(lines, Line{Text: l, Style: StyleAlert})
	}
	for _, l := range wrap(fmt.Sprintf("it needs %dx%d, this one is %dx%d (q quits)", width, height, v.Width, v.Height), v.Width) {
		lines = append(lines, Line{Text: l})
	}
	return fit(lines, v)
}

// fit cuts the lines to the terminal.
func fit(lines []Line, v View) []Line {
	if v.Height >= 0 && len(lines) > v.Height {
		lines = lines[:v.Height]
	}
	for i := range lines {
		if r := []rune(lines[i].Text); len(r) > v.Width {
			lines[i].Text = string(r[:max(v.Width, 0)])
		}
	}
	return lines
}

// table is a titled two-column table of the top block.
type table struct {
	title string
	rows  [][2]string
}

// topBlock lays the five status tables side by side, '|' between them,
// shorter ones padded with blank rows. Tables that do not fit beside the
// others in width start a new band below, so an 80-column terminal still
// shows everything; fits is false when one table alone is too wide.
func topBlock(s *protocol.StateScheduler, width int) (block []string, fits bool) {
	states := make([][2]string, 0, len(s.TaskStates))
	for _, c := range s.TaskStates {
		states = append(states, [2]string{c.State.String(), Integer(c.Count)})
	}
	slices.SortFunc(states, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	counts := func(mc []protocol.MessageCount) [][2]string {
		out := make([][2]string, 0, len(mc))
		for _, c := range mc {
			out = append(out, [2]string{c.Name, Integer(c.Count)})
		}
		return out
	}
	tables := []table{
		{"scheduler", [][2]string{
			{"cpu", Percentage(uint64(s.Scheduler.CPU))},
			{"rss", Bytes(s.Scheduler.RSS)},
			{"rss_free", Bytes(s.RSSFree)},
			// Times the scheduler found a subscriber's queue full (this
			// one or another): overflow events, not lost messages.
			{"feed_overflows", Integer(s.MonitorDropped)},
		}},
		{"object_manager", [][2]string{{"num_of_objs", Integer(s.ObjectCount)}}},
		{"task_manager", states},
		{"scheduler_sent", counts(s.Binder.Sent)},
		{"scheduler_received", counts(s.Binder.Received)},
	}
	fits = true
	var band [][]string
	bandWidth := 0
	for _, t := range tables {
		lines := t.lines()
		w := runeLen(lines[0])
		fits = fits && w <= width
		if len(band) > 0 && bandWidth+3+w > width {
			block = append(block, joinTables(band)...)
			band, bandWidth = nil, 0
		}
		if len(band) > 0 {
			bandWidth += 3
		}
		band, bandWidth = append(band, lines), bandWidth+w
	}
	return append(block, joinTables(band)...), fits
}

// joinTables puts tables side by side with " | " between them.
func joinTables(cols [][]string) []string {
	height := 0
	for _, c := range cols {
		height = max(height, len(c))
	}
	out := make([]string, height)
	for r := range height {
		parts := make([]string, len(cols))
		for i, c := range cols {
			if r < len(c) {
				parts[i] = c[r]
			} else {
				parts[i] = strings.Repeat(" ", runeLen(c[0]))
			}
		}
		out[r] = strings.TrimRight(strings.Join(parts, " | "), " ")
	}
	return out
}

// lines renders the table at its own width: the title centred, then the
// rows, names right-aligned against their values.
func (t table) lines() []string {
	w0, w1 := 0, 0
	for _, r := range t.rows {
		w0, w1 = max(w0, runeLen(r[0])), max(w1, runeLen(r[1]))
	}
	width := max(w0+1+w1, runeLen(t.title))
	if w0+1+w1 < width {
		w0 = width - 1 - w1
	}
	pad := width - runeLen(t.title)
	out := []string{strings.Repeat(" ", pad/2) + t.title + strings.Repeat(" ", pad-pad/2)}
	for _, r := range t.rows {
		out = append(out, padLeft(r[0], w0)+" "+padLeft(r[1], w1))
	}
	return out
}

func padLeft(s string, w int) string  { return strings.Repeat(" ", max(w-runeLen(s), 0)) + s }
func padRight(s string, w int) string { return s + strings.Repeat(" ", max(w-runeLen(s), 0)) }

// shortcuts lists the sort keys.
func shortcuts() string {
	var b strings.Builder
	b.WriteString("Shortcuts:")
	for _, sk := range sortKeys {
		fmt.Fprintf(&b, " %s[%c]", sk.column, sk.key)
	}
	return b.String()
}

// wrap breaks text at spaces into lines of at most width runes (longer
// words are cut by fit later).
func wrap(text string, width int) []string {
	var out []string
	line := ""
	for _, w := range strings.Fields(text) {
		switch {
		case line == "":
			line = w
		case runeLen(line)+1+runeLen(w) <= width:
			line += " " + w
		default:
			out = append(out, line)
			line = w
		}
	}
	return append(out, line)
}

// order says how the worker table is sorted.
func order(v View) string {
	order := "ascending"
	if v.descending() {
		order = "descending"
	}
	col := "cpu"
	if sk := findSortKey(v.Sort); sk != nil {
		col = sk.column
	}
	return fmt.Sprintf("Sorted by %s, %s; the same key again reverses, q quits", col, order)
}

// workerColumns are the worker table's columns in order; the names of the
// sortable ones match sortKeys.
var workerColumns = []struct {
	name  string
	left  bool // names read from the start; numbers align right
	value func(r *workerRow) string
}{
	{"group", true, func(r *workerRow) string { return truncate(r.group, groupWidth) }},
	{"worker", true, func(r *workerRow) string { return r.label }},
	{"agt_cpu", false, func(r *workerRow) string { return Percentage(r.agentCPU) }},
	{"agt_rss", false, func(r *workerRow) string { return Bytes(r.agentRSS) }},
	{"procs", false, func(r *workerRow) string { return fmt.Sprint(r.processors) }},
	{"cpu", false, func(r *workerRow) string { return Percentage(r.cpu) }},
	{"rss", false, func(r *workerRow) string { return Bytes(r.rss) }},
	{"rss_free", false, func(r *workerRow) string { return Bytes(r.rssFree) }},
	{"free", false, func(r *workerRow) string { return Integer(r.free) }},
	{"sent", false, func(r *workerRow) string { return Integer(r.sent) }},
	{"queued", false, func(r *workerRow) string { return Integer(r.queued) }},
	{"suspended", false, func(r *workerRow) string { return Integer(r.suspended) }},
	{"lag", false, func(r *workerRow) string { return Microseconds(r.lagUS) }},
	{"last", false, func(r *workerRow) string { return LastSeen(r.last) }},
	{"ITL", false, func(r *workerRow) string { return r.itl }},
}

// workerRows turns the status's workers into sortable rows.
func workerRows(s *protocol.StateScheduler) []workerRow {
	groupOf := map[string]string{}
	for _, g := range s.WorkerGroups {
		for _, w := range g.WorkerIDs {
			groupOf[string(w)] = string(g.GroupID)
		}
	}
	ids := make([]string, len(s.Workers))
	for i, w := range s.Workers {
		ids[i] = string(w.WorkerID)
	}
	labels := Labels(ids, workerWidth)
	rows := make([]workerRow, len(s.Workers))
	for i, w := range s.Workers {
		r := workerRow{
			id: ids[i], label: labels[i], group: groupOf[ids[i]],
			agentCPU: uint64(w.Agent.CPU), agentRSS: w.Agent.RSS,
			rssFree: w.RSSFree, free: uint64(w.Free), sent: uint64(w.Sent), queued: uint64(w.Queued),
			suspended: uint64(w.Suspended), lagUS: w.LagUS, last: w.LastS, itl: w.ITL,
			processors: len(w.Processors),
		}
		for _, p := range w.Processors {
			r.cpu += uint64(p.Resource.CPU)
			r.rss += p.Resource.RSS
		}
		rows[i] = r
	}
	return rows
}

// workerGrid is the worker table laid out: per line, the columns that
// stay (group, worker) and the cells of the others, which scroll by whole
// columns.
type workerGrid struct {
	rows   int // workers
	wanted int // View.Left
	fixed  []string
	cells  [][]string // per line, the scrolling columns' padded cells
	widths []int      // of the scrolling columns
}

// keptColumns are the worker table's first columns, which never scroll.
const keptColumns = 2

func newWorkerGrid(s *protocol.StateScheduler, v View) workerGrid {
	rows := workerRows(s)
	sortRows(rows, v)
	g := workerGrid{rows: len(rows), wanted: v.Left}
	if len(rows) == 0 {
		g.fixed, g.cells = []string{"No workers"}, [][]string{nil}
		return g
	}
	sortCol := "cpu"
	if sk := findSortKey(v.Sort); sk != nil {
		sortCol = sk.column
	}
	header := make([]string, len(workerColumns))
	cells := make([][]string, len(rows))
	widths := make([]int, len(workerColumns))
	for c, col := range workerColumns {
		header[c] = col.name
		if col.name == sortCol {
			header[c] = "[" + col.name + "]"
		}
		widths[c] = runeLen(header[c])
	}
	for i := range rows {
		cells[i] = make([]string, len(workerColumns))
		for c, col := range workerColumns {
			cells[i][c] = col.value(&rows[i])
			widths[c] = max(widths[c], runeLen(cells[i][c]))
		}
	}
	add := func(row []string) {
		parts := make([]string, len(row))
		for c, cell := range row {
			if workerColumns[c].left {
				parts[c] = padRight(cell, widths[c])
			} else {
				parts[c] = padLeft(cell, widths[c])
			}
		}
		g.fixed = append(g.fixed, strings.Join(parts[:keptColumns], " "))
		g.cells = append(g.cells, parts[keptColumns:])
	}
	add(header)
	for _, r := range cells {
		add(r)
	}
	g.widths = widths[keptColumns:]
	return g
}

// widthOf is a line's width with the scrolling columns from..to-1.
func (g workerGrid) widthOf(from, to int) int {
	w := runeLen(g.fixed[0])
	for _, cw := range g.widths[from:to] {
		w += 1 + cw
	}
	return w
}

// left is how many columns scroll out at width: the view's Left, within
// the fewest that let the last column show (0 when the table fits).
func (g workerGrid) left(width int) int {
	end := 0
	for end < len(g.widths) && g.widthOf(end, len(g.widths)) > width {
		end++
	}
	return max(0, min(g.wanted, end))
}

// shown is the end of the scrolling columns that fit wholly at width from
// left on (all of them when the table fits).
func (g workerGrid) shown(left, width int) int {
	if g.widthOf(0, len(g.widths)) <= width {
		return len(g.widths)
	}
	end := left
	for end < len(g.widths) && g.widthOf(left, end+1) <= width {
		end++
	}
	return end
}

// lines are the table's lines from the left-th scrolling column to the
// last that fits wholly at width.
func (g workerGrid) lines(left, width int) []string {
	end := g.shown(left, width)
	out := make([]string, len(g.fixed))
	for i, f := range g.fixed {
		cells := g.cells[i]
		out[i] = strings.Join(append([]string{f}, cells[min(left, len(cells)):min(end, len(cells))]...), " ")
	}
	return out
}

// hint says which columns show and how to see the others, for a table
// wider than the terminal (v.Left already clamped).
func (g workerGrid) hint(v View) string {
	if g.rows == 0 || g.widthOf(0, len(g.widths)) <= v.Width {
		return ""
	}
	return fmt.Sprintf("; columns %d-%d of %d, ←/→ scroll", keptColumns+v.Left+1, keptColumns+g.shown(v.Left, v.Width), keptColumns+len(g.widths))
}

// workerTable is the worker table (laid out in g, scrolled by v.Left) with
// the clients beside it, in at most room lines (the last one says how many
// rows did not fit).
func workerTable(s *protocol.StateScheduler, g workerGrid, v View, room int) []Line {
	left := g.lines(v.Left, v.Width)
	right := clientLines(s)
	width := 0
	for _, l := range left {
		width = max(width, runeLen(l))
	}
	header := func(l []string, i int) Style {
		if i == 0 {
			return StyleHeader
		}
		return StyleNormal
	}
	if width+3+runeLen(right[0]) <= v.Width {
		// Side by side, as upstream.
		n := max(len(left), len(right))
		out := make([]Line, 0, n)
		for i := range n {
			l, r := "", ""
			if i < len(left) {
				l = left[i]
			}
			if i < len(right) {
				r = right[i]
			}
			out = append(out, Line{Text: strings.TrimRight(padRight(l, width)+" | "+r, " "), Style: header(left, i)})
		}
		return cutWorkers(out, g.rows, room)
	}
	// Too narrow for both: the clients go below the workers, and are left
	// out when the workers would get fewer than a header and two rows.
	var workers, clients []Line
	for i, l := range left {
		workers = append(workers, Line{Text: l, Style: header(left, i)})
	}
	clients = append(clients, Line{})
	for i, r := range right {
		clients = append(clients, Line{Text: r, Style: header(right, i)})
	}
	if room-len(clients) >= min(len(workers), 3) {
		return append(cutWorkers(workers, g.rows, room-len(clients)), clients...)
	}
	return cutWorkers(workers, g.rows, room)
}

// cutWorkers keeps the table within room lines; the last one then says how
// many workers did not fit.
func cutWorkers(lines []Line, workers, room int) []Line {
	if room < 1 || len(lines) <= room {
		return lines
	}
	hidden := workers - (room - 2) // header and the note take two lines
	return append(lines[:room-1], Line{Text: fmt.Sprintf("... %d more worker(s) below; enlarge the terminal to see them", max(hidden, 0))})
}

// clientLines is the client_manager table: clients with unfinished tasks.
func clientLines(s *protocol.StateScheduler) []string {
	clients := slices.Clone(s.Clients)
	slices.SortFunc(clients, func(a, b protocol.ClientTaskCount) int { return strings.Compare(string(a.Client), string(b.Client)) })
	ids := make([]string, len(clients))
	for i, c := range clients {
		ids[i] = string(c.Client)
	}
	labels := Labels(ids, clientWidth)
	out := []string{padRight("client", clientWidth) + " tasks"}
	for i, c := range clients {
		out = append(out, padRight(labels[i], clientWidth)+" "+padLeft(Integer(uint64(c.Tasks)), 5))
	}
	return out
}
