package commands

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The plain "scaler" program fails on bad input the way the roles do: status
// 2 and one line naming what is wrong (issue 13).
func TestTopLevelBadInputIsOneLine(t *testing.T) {
	cases := []struct {
		argv []string
		want string
	}{
		{[]string{"scaler", "--versio"}, "unrecognized option --versio"},
		{[]string{"scaler", "--versio=1"}, "unrecognized option --versio"},
		{[]string{"scaler", "-x"}, "unrecognized option -x"},
		{[]string{"scaler", "bogus"}, `unknown role or command "bogus"`},
		{[]string{"scaler", "bogus", "-h"}, `unknown role or command "bogus"`},
		{[]string{"scaler", "help", "bogus"}, `unknown role "bogus"`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.argv, " "), func(t *testing.T) {
			out, errOut, code := run(t, tc.argv...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if out != "" {
				t.Errorf("stdout not empty: %q", out)
			}
			if strings.Count(strings.TrimRight(errOut, "\n"), "\n") != 0 || !strings.HasPrefix(errOut, "scaler: error: ") {
				t.Errorf("stderr is not one error line: %q", errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q lacks %q", errOut, tc.want)
			}
		})
	}
	// Good input still works.
	if out, _, code := run(t, "scaler"); code != exitOK || !strings.Contains(out, "scheduler") {
		t.Errorf("scaler alone: exit %d, %q", code, out)
	}
	if out, _, code := run(t, "scaler", "--version"); code != exitOK || !strings.Contains(out, Version) {
		t.Errorf("scaler --version: exit %d, %q", code, out)
	}
	if out, _, code := run(t, "scaler", "help"); code != exitOK || !strings.Contains(out, "install-links") {
		t.Errorf("scaler help: exit %d, %q", code, out)
	}
	if out, _, code := run(t, "scaler", "help", "cluster"); code != exitOK || !strings.HasPrefix(out, "usage: scaler_cluster ") {
		t.Errorf("scaler help cluster: exit %d, %q", code, out)
	}
}

// Every flag's help states its default once: a help text that says it in
// words ("cores - 1, at least 1") or marks the flag required gets no second,
// computed "(default: ...)".
func TestHelpStatesEachDefaultOnce(t *testing.T) {
	for _, r := range roles {
		out, errOut, code := run(t, r.Program(), "-h")
		if code != exitOK {
			t.Fatalf("%s -h: exit %d %s", r.Program(), code, errOut)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Count(line, "(default: ") > 1 {
				t.Errorf("%s: two defaults: %s", r.Program(), strings.TrimSpace(line))
			}
			if strings.Contains(line, "(required)") && strings.Contains(line, "(default: ") {
				t.Errorf("%s: required with a default: %s", r.Program(), strings.TrimSpace(line))
			}
		}
	}
	out, _, _ := run(t, "scaler_cluster", "-h")
	if !strings.Contains(out, "number of workers to start (default: cores - 1, at least 1)\n") {
		t.Errorf("scaler_cluster -n help changed:\n%s", out)
	}
}

// README's list of upstream flags that "work" names no flag whose help says
// it is unused (README and -h must agree, issue 13: --log-hub-address/-la).
func TestReadmeAgreesWithHelpOnUnusedFlags(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	item := regexp.MustCompile(`(?s)- Flags that upstream declared but could never use.*?\n- `).Find(readme)
	if item == nil {
		t.Fatal("README.md: the item on upstream's unusable flags is gone")
	}
	for _, r := range roles {
		out, _, _ := run(t, r.Program(), "-h")
		for _, line := range strings.Split(out, "\n") {
			if !strings.Contains(line, "unused") {
				continue
			}
			long := regexp.MustCompile(`--[a-z-]+`).FindString(line)
			if strings.Contains(string(item), "`"+long) {
				t.Errorf("README.md says %s works; %s -h says: %s", long, r.Program(), strings.TrimSpace(line))
			}
		}
	}
}
