package web

import (
	"strings"
)

// minTail is the shortest hex tail a label keeps, so that labels do not
// change length as workers come and go on a small cluster.
const minTail = 4

// shortLabels gives every id a short label that tells it apart from the
// others in ids. Worker ids look like "<pid>|Worker|<name>|<hex>" and
// every worker of one cluster shares the pid and (by default) the name,
// so only the hex part tells them apart: the label is "<name>·<the
// shortest prefix of the hex that is unique>", or "<name>·…<suffix>"
// when a shorter suffix is unique (ids ending in a counter). Client ids
// "<pid>|Client|<hex>" become "<pid>·<prefix>". Any other id is its own
// label.
func shortLabels(ids []string) map[string]string {
	ps := make(map[string]parsed, len(ids))
	for _, id := range ids {
		f := strings.Split(id, "|")
		switch {
		case len(f) == 4 && f[1] == "Worker" && isHex(f[3]):
			ps[id] = parsed{f[2], f[3]}
		case len(f) == 3 && f[1] == "Client" && isHex(f[2]):
			ps[id] = parsed{f[0], f[2]}
		default:
			ps[id] = parsed{head: id}
		}
	}
	// The random part of a worker id is unique at its start, a counter at
	// its end: take the shortest prefix or, if shorter, suffix of the tails
	// that keeps every label distinct.
	kp, kpOK := uniqueLen(ps, prefix)
	ks, ksOK := uniqueLen(ps, suffix)
	cut, k, mark := prefix, kp, ""
	if ksOK && (!kpOK || ks < kp) {
		cut, k, mark = suffix, ks, "…"
	}
	out := make(map[string]string, len(ps))
	for id, p := range ps {
		if p.tail == "" {
			out[id] = p.head
			continue
		}
		out[id] = p.head + "·" + mark + cut(p.tail, k)
	}
	return out
}

type parsed struct{ head, tail string }

// uniqueLen is the smallest k >= minTail for which the labels
// head·cut(tail, k) are distinct, and whether any k makes them so (the
// largest tried is the longest tail).
func uniqueLen(ps map[string]parsed, cut func(string, int) string) (int, bool) {
	longest := 0
	for _, p := range ps {
		longest = max(longest, len(p.tail))
	}
	for k := minTail; ; k++ {
		seen := make(map[string]bool, len(ps))
		collide := false
		for _, p := range ps {
			key := p.head + "|" + cut(p.tail, k)
			collide = collide || seen[key]
			seen[key] = true
		}
		if !collide {
			return k, true
		}
		if k >= longest {
			return k, false
		}
	}
}

func prefix(s string, k int) string {
	if len(s) <= k {
		return s
	}
	return s[:k]
}

func suffix(s string, k int) string {
	if len(s) <= k {
		return s
	}
	return s[len(s)-k:]
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
