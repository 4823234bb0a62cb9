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
// so only the random hex tail tells them apart: the label is
// "<name>·<shortest unique hex prefix>". Client ids "<pid>|Client|<hex>"
// become "<pid>·<prefix>". Any other id is its own label.
func shortLabels(ids []string) map[string]string {
	type parsed struct{ head, tail string }
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
	// The shortest prefix length k that keeps every (head, tail[:k]) pair
	// distinct: grow k while two ids collide.
	k := minTail
	for {
		seen := make(map[string]bool, len(ps))
		collide, longer := false, false
		for _, p := range ps {
			if len(p.tail) > k {
				longer = true
			}
			key := p.head + "|" + prefix(p.tail, k)
			if seen[key] {
				collide = true
			}
			seen[key] = true
		}
		if !collide || !longer {
			break
		}
		k++
	}
	out := make(map[string]string, len(ps))
	for id, p := range ps {
		if p.tail == "" {
			out[id] = p.head
			continue
		}
		out[id] = p.head + "·" + prefix(p.tail, k)
	}
	return out
}

func prefix(s string, k int) string {
	if len(s) <= k {
		return s
	}
	return s[:k]
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
