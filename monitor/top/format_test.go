package top

import (
	"math"
	"strings"
	"testing"
)

func TestFormatters(t *testing.T) {
	cases := []struct {
		name string
		got  string
		want string
	}{
		{"pct 0", Percentage(0), "0.0%"},
		{"pct 7", Percentage(7), "0.7%"},
		{"pct 123", Percentage(123), "12.3%"},
		{"pct 1000", Percentage(1000), "100.0%"},
		{"pct 2500 (several cores)", Percentage(2500), "250.0%"},
		{"bytes 0", Bytes(0), "0B"},
		{"bytes 1023", Bytes(1023), "1023B"},
		{"bytes 1K", Bytes(1024), "1K"},
		{"bytes 1023K", Bytes(1024*1024 - 1), "1023K"},
		{"bytes 1M", Bytes(1024 * 1024), "1.0M"},
		{"bytes 37.1M", Bytes(38902170), "37.1M"},
		{"bytes no 1024.0M", Bytes(1024*1024*1024 - 1), "1.0G"},
		{"bytes 10G", Bytes(10 << 30), "10.0G"},
		{"bytes 1P (upstream raises)", Bytes(1 << 50), "1.0P"},
		{"bytes max", Bytes(math.MaxUint64), "16.0E"},
		{"us 0", Microseconds(0), "0.0ms"},
		{"us 700", Microseconds(700), "0.7ms"},
		{"us 999", Microseconds(999), "0.9ms"},
		{"us 1ms", Microseconds(1000), "1ms"},
		{"us 999ms", Microseconds(999_999), "999ms"},
		{"us 1s", Microseconds(1_000_000), "1s"},
		{"us 999s", Microseconds(999_999_999), "999s"},
		{"us 1000s (upstream None)", Microseconds(1000_000_000), "16m"},
		{"us hours", Microseconds(5 * 3600 * 1000_000), "300m"},
		{"us many hours", Microseconds(50 * 3600 * 1000_000), "50h"},
		{"us days", Microseconds(999 * 86400 * 1000_000), "999d"},
		{"us max", Microseconds(math.MaxUint64), "584942y"},
		{"s 59", Seconds(59), "59s"},
		{"s 1000", Seconds(1000), "16m"},
		{"last 0", LastSeen(0), "0s"},
		{"last 61 (upstream 60+s)", LastSeen(61), "61s"},
		{"last cap", LastSeen(255), "255+s"},
		{"int 0", Integer(0), "0"},
		{"int 999", Integer(999), "999"},
		{"int 1000", Integer(1000), "1,000"},
		{"int 200000", Integer(200000), "200,000"},
		{"int 1234567", Integer(1234567), "1,234,567"},
		{"int max", Integer(math.MaxUint64), "18,446,744,073,709,551,615"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

// Every cell must stay short: a formatter that prints a long cell would
// shift the whole table.
func TestFormattersStayShort(t *testing.T) {
	for _, n := range []uint64{0, 1, 999, 1000, 1 << 20, 1 << 40, 1 << 62, math.MaxUint64} {
		for _, s := range []string{Bytes(n), Microseconds(n)} {
			if len(s) > 8 || s == "" || strings.Contains(s, "e+") {
				t.Errorf("%d formats as %q", n, s)
			}
		}
	}
}

func TestLabels(t *testing.T) {
	hexA := "3f2a9c0d1e5b47a8b6c3d2e1f0a9b8c7"
	hexB := "3f2a9c0d1e5b47a8b6c3d2e1f0a90001"
	cases := []struct {
		name  string
		ids   []string
		width int
		want  []string
	}{
		{"fits", []string{"1|Worker|a|b"}, 20, []string{"1|Worker|a|b"}},
		{
			"one cluster: shared pid dropped, tails differ",
			[]string{"4242|Worker|node7|" + hexA, "4242|Worker|node7|" + hexB},
			20,
			[]string{"node7|…3d2e1f0a9b8c7", "node7|…3d2e1f0a90001"},
		},
		{
			"two clusters: the pids differ, so they stay",
			[]string{"4242|Worker|node7|" + hexA, "5151|Worker|node7|" + hexB},
			20,
			[]string{"4242|node7|…f0a9b8c7", "5151|node7|…f0a90001"},
		},
		{
			"long host name cut, tail kept",
			[]string{"1|Worker|averyveryverylonghostname|" + hexA, "1|Worker|averyveryverylonghostname|" + hexB},
			20,
			[]string{"averyveryv…1f0a9b8c7", "averyveryv…1f0a90001"},
		},
		{
			"client ids",
			[]string{"77|Client|" + hexA, "77|Client|" + hexB},
			18,
			[]string{"…8b6c3d2e1f0a9b8c7", "…8b6c3d2e1f0a90001"},
		},
	}
	for _, c := range cases {
		got := Labels(c.ids, c.width)
		for i := range got {
			if runeLen(got[i]) > c.width {
				t.Errorf("%s: %q is wider than %d", c.name, got[i], c.width)
			}
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// Labels of distinct ids never collide, whatever the ids share.
func TestLabelsDistinct(t *testing.T) {
	var ids []string
	for i := range 200 {
		ids = append(ids, "999|Worker|host|0000000000000000000000000000"+padLeft(Integer(uint64(i)), 4))
	}
	seen := map[string]bool{}
	for _, l := range Labels(ids, workerWidth) {
		if seen[l] {
			t.Fatalf("label %q shown for two workers", l)
		}
		seen[l] = true
	}
}
