package top

import "strings"

// Labels shortens ids ("<pid>|Worker|<name>|<hex>", "<pid>|Client|<hex>")
// to at most width runes each while keeping them distinguishable. Every
// worker of a cluster shares the pid, so cutting the end off (upstream's
// "1002|Worker|myhost|a+") makes them all look alike; the random hex tail
// is what tells them apart. In order:
//
//   - an id that fits is shown whole;
//   - else the kind segment ("Worker", "Client") is dropped, and so is the
//     pid when every id shares it: "myhost|3f2a…";
//   - if that is still too long, the middle is cut and the tail kept:
//     "myhost|…9e0c41d2b7";
//   - two labels that still collide fall back to the tail of the full id.
func Labels(ids []string, width int) []string {
	out := make([]string, len(ids))
	sharedPID := len(ids) > 1
	pid0 := pidOf(firstOr(ids))
	for _, id := range ids {
		if pidOf(id) != pid0 {
			sharedPID = false
		}
	}
	for i, id := range ids {
		if runeLen(id) <= width {
			out[i] = id
			continue
		}
		out[i] = shorten(compact(id, sharedPID), width)
	}
	// Labels of distinct ids must differ; the full-id tail is random hex.
	seen := map[string]int{}
	for i, l := range out {
		if j, dup := seen[l]; dup && ids[j] != ids[i] {
			out[i] = tail(ids[i], width)
			out[j] = tail(ids[j], width)
		}
		seen[l] = i
	}
	return out
}

func firstOr(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// pidOf is the leading numeric segment of an id, "" if there is none.
func pidOf(id string) string {
	seg, _, ok := strings.Cut(id, "|")
	if !ok || seg == "" || strings.Trim(seg, "0123456789") != "" {
		return ""
	}
	return seg
}

// compact drops the kind segment and, when all ids share it, the pid.
func compact(id string, dropPID bool) string {
	segs := strings.Split(id, "|")
	var keep []string
	for i, s := range segs {
		if i == 0 && dropPID && pidOf(id) != "" {
			continue
		}
		if i == 1 && (s == "Worker" || s == "Client") {
			continue
		}
		keep = append(keep, s)
	}
	if len(keep) == 0 {
		return id
	}
	return strings.Join(keep, "|")
}

// shorten keeps s's head up to its last '|' (the name) and as much of the
// tail as fits, joined by "…"; with no room for both, only the tail.
func shorten(s string, width int) string {
	if runeLen(s) <= width {
		return s
	}
	const minTail = 8 // hex digits: enough to tell thousands of workers apart
	if cut := strings.LastIndexByte(s, '|'); cut >= 0 {
		head := []rune(s[:cut+1])
		room := width - 1 - minTail // '…' plus the tail
		if room > 0 {
			if len(head) > room {
				head = append(head[:room-1], '…')
				room = len(head)
				// "name…" then the tail: the head's own '…' marks the cut.
				return string(head) + lastRunes(s[cut+1:], width-room)
			}
			return string(head) + "…" + lastRunes(s[cut+1:], width-len(head)-1)
		}
	}
	return tail(s, width)
}

// tail is "…" followed by the last width-1 runes of s.
func tail(s string, width int) string {
	if runeLen(s) <= width {
		return s
	}
	if width <= 1 {
		return lastRunes(s, width)
	}
	return "…" + lastRunes(s, width-1)
}

func lastRunes(s string, n int) string {
	r := []rune(s)
	if n >= len(r) {
		return s
	}
	if n <= 0 {
		return ""
	}
	return string(r[len(r)-n:])
}

func runeLen(s string) int { return len([]rune(s)) }

// truncate cuts s to width runes, marking the cut with "…" (groups, whose
// names are chosen by people and read from the start).
func truncate(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	if width <= 1 {
		return string(r[:width])
	}
	return string(r[:width-1]) + "…"
}
