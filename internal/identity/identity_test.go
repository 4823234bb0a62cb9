package identity

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

func TestNew(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	tests := []struct {
		kind, name string
		want       string
	}{
		{"Worker", "node7", `^` + pid + `\|Worker\|node7\|[0-9a-f]{32}$`},
		{"Client", "", `^` + pid + `\|Client\|[0-9a-f]{32}$`},
		{"Host", "n", `^` + pid + `\|Host\|n\|[0-9a-f]{32}$`},
	}
	for _, tt := range tests {
		got := New(tt.kind, tt.name)
		if !regexp.MustCompile(tt.want).MatchString(got) {
			t.Errorf("New(%q, %q) = %q, want the form %s", tt.kind, tt.name, got, tt.want)
		}
		if again := New(tt.kind, tt.name); again == got {
			t.Errorf("New(%q, %q) gave %q twice", tt.kind, tt.name, got)
		}
	}
}

func TestRandomHex(t *testing.T) {
	for _, n := range []int{0, 4, 16} {
		if got := RandomHex(n); len(got) != 2*n || !regexp.MustCompile(`^[0-9a-f]*$`).MatchString(got) {
			t.Errorf("RandomHex(%d) = %q", n, got)
		}
	}
}
