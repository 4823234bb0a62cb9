package top

import (
	"fmt"
	"strconv"
)

// The formatters turn the feed's raw numbers into short cells. Unlike
// upstream's, each is total: every input of its type prints something
// (upstream returns None at 1000 s and raises at 1 PiB).

// Percentage formats per-mille of one core: 123 -> "12.3%". Values above
// 1000 (several cores) print as they are, e.g. "250.0%".
func Percentage(permille uint64) string {
	return fmt.Sprintf("%d.%d%%", permille/10, permille%10)
}

// byteUnits are the binary multiples a uint64 can reach (16 EiB at most).
var byteUnits = []string{"B", "K", "M", "G", "T", "P", "E"}

// Bytes formats a byte count in binary units: B and K as integers
// ("1023B", "1K"), M and larger with one decimal ("37.1M").
func Bytes(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + "B"
	}
	if n < 1024*1024 {
		return strconv.FormatUint(n/1024, 10) + "K"
	}
	v := float64(n) / (1024 * 1024)
	unit := 2
	// Switch units before rounding would print "1024.0": 1023.95M is "1.0G".
	for v >= 1023.95 && unit < len(byteUnits)-1 {
		v /= 1024
		unit++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + byteUnits[unit]
}

// Microseconds formats a latency: "0.7ms" below 1 ms, then whole ms, s,
// min, h and days, so that hours of lag still print.
func Microseconds(us uint64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%d.%dms", us/1000, us%1000/100)
	case us < 1000_000:
		return strconv.FormatUint(us/1000, 10) + "ms"
	}
	return Seconds(us / 1000_000)
}

// Seconds formats a duration in whole seconds: "59s", then the largest unit
// that keeps it under 1000 ("999s", "16m", "5h", "3d", "2y").
func Seconds(s uint64) string {
	switch {
	case s < 1000:
		return strconv.FormatUint(s, 10) + "s"
	case s < 1000*60:
		return strconv.FormatUint(s/60, 10) + "m"
	case s < 1000*3600:
		return strconv.FormatUint(s/3600, 10) + "h"
	case s < 1000*86400:
		return strconv.FormatUint(s/86400, 10) + "d"
	}
	return strconv.FormatUint(s/(365*86400), 10) + "y"
}

// LastSeen formats seconds since a worker's last heartbeat. The scheduler
// caps the value at 255, so 255 means "at least that long".
func LastSeen(s uint8) string {
	if s == 255 {
		return "255+s"
	}
	return strconv.Itoa(int(s)) + "s"
}

// Integer formats with thousands separators: 1234567 -> "1,234,567".
func Integer(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	lead := len(s) % 3
	if lead == 0 {
		lead = 3
	}
	out = append(out, s[:lead]...)
	for i := lead; i < len(s); i += 3 {
		out = append(out, ',')
		out = append(out, s[i:i+3]...)
	}
	return string(out)
}
