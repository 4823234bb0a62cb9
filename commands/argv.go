package commands

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/opengris/scaler/config"
)

// optionKind says how an option consumes the words after it.
type optionKind int

const (
	optValue optionKind = iota // exactly one value
	optBool                    // no value, or an attached/following boolean word
	optList                    // zero or more values (argparse nargs="*")
)

// optionSet knows every spelling of a command's options.
type optionSet struct {
	kinds     map[string]optionKind // every spelling without dashes -> kind
	canonical map[string]string     // every spelling -> long name
	longs     []string              // long names and long aliases, for prefix matching
}

func (o *optionSet) add(kind optionKind, long string, shorts, longAliases []string) {
	for _, n := range append(append([]string{long}, shorts...), longAliases...) {
		o.kinds[n] = kind
		o.canonical[n] = long
	}
	o.longs = append(append(o.longs, long), longAliases...)
}

func newOptionSet(fields []config.Field) *optionSet {
	o := &optionSet{kinds: map[string]optionKind{}, canonical: map[string]string{}}
	o.add(optBool, "help", []string{"h"}, nil)
	o.add(optValue, "config", []string{"c"}, nil)
	o.add(optBool, "dump-config", nil, nil)
	for _, f := range fields {
		if f.Positional {
			continue
		}
		kind := optValue
		switch f.Kind.String() {
		case "bool":
			kind = optBool
		case "slice":
			kind = optList
		}
		o.add(kind, f.Long, f.Shorts, longAliases(f))
	}
	sort.Strings(o.longs)
	return o
}

// usageError is a command-line mistake; it exits with status 2 like argparse.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// resolve finds the long name for an option spelling, allowing unique
// prefixes of long options as argparse does (--prot for --protected).
func (o *optionSet) resolve(name string, long bool) (string, bool, error) {
	if c, ok := o.canonical[name]; ok {
		return c, true, nil
	}
	if !long {
		return "", false, nil
	}
	var matches []string
	seen := map[string]bool{}
	for _, l := range o.longs {
		if strings.HasPrefix(l, name) && !seen[o.canonical[l]] {
			seen[o.canonical[l]] = true
			matches = append(matches, "--"+o.canonical[l])
		}
	}
	switch len(matches) {
	case 0:
		return "", false, nil
	case 1:
		return strings.TrimPrefix(matches[0], "--"), true, nil
	}
	return "", false, usageErrorf("ambiguous option --%s could match %s", name, strings.Join(matches, ", "))
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// looksLikeOption reports whether a word is an option rather than a value.
func looksLikeOption(s string) bool {
	return len(s) > 1 && s[0] == '-' && !isNumber(s)
}

// normalize rewrites a Scaler 1.12.5 command line into the form urfave/cli
// parses: every option as --long=value before a "--" and the positional
// arguments after it. It accepts what argparse accepted — options after
// positionals, short forms with several letters (-mt 5, -mt=5), attached
// one-letter values (-n4), unique long prefixes, greedy lists (-lp a b) — and
// what the documentation promised but argparse refused: a value after a
// boolean flag (-p False).
func (o *optionSet) normalize(args []string) ([]string, error) {
	var flags, positionals []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positionals = append(positionals, args[i+1:]...)
			break
		}
		if !looksLikeOption(a) {
			positionals = append(positionals, a)
			continue
		}
		long := strings.HasPrefix(a, "--")
		body := strings.TrimLeft(a, "-")
		name, value, hasValue := strings.Cut(body, "=")
		canon, ok, err := o.resolve(name, long)
		if err != nil {
			return nil, err
		}
		if !ok && !long && !hasValue && len(name) > 1 {
			// -n4: a one-letter option with its value attached
			if c, found := o.canonical[name[:1]]; found && o.kinds[name[:1]] == optValue {
				canon, ok, value, hasValue = c, true, name[1:], true
			}
		}
		if !ok {
			return nil, usageErrorf("unrecognized option %s", a)
		}
		switch o.kinds[canon] {
		case optBool:
			if !hasValue && i+1 < len(args) && config.IsBoolText(args[i+1]) {
				value, hasValue = args[i+1], true
				i++
			}
			if hasValue {
				if !config.IsBoolText(value) {
					return nil, usageErrorf("option %s: %q is not a boolean (use true or false)", a, value)
				}
				b, _ := strconv.ParseBool(boolWord(value))
				flags = append(flags, "--"+canon+"="+strconv.FormatBool(b))
			} else {
				flags = append(flags, "--"+canon)
			}
		case optValue:
			if !hasValue {
				if i+1 >= len(args) || looksLikeOption(args[i+1]) {
					return nil, usageErrorf("option %s expects a value", a)
				}
				value = args[i+1]
				i++
			}
			flags = append(flags, "--"+canon+"="+value)
		case optList:
			if hasValue {
				flags = append(flags, "--"+canon+"="+value)
				continue
			}
			n := 0
			// Greedy like argparse, but an address ends the list: upstream
			// swallowed it and then complained that the address was missing.
			for i+1 < len(args) && !looksLikeOption(args[i+1]) && args[i+1] != "--" && !strings.Contains(args[i+1], "://") {
				flags = append(flags, "--"+canon+"="+args[i+1])
				i++
				n++
			}
			if n == 0 {
				flags = append(flags, "--"+canon+"=") // an empty list: logging off
			}
		}
	}
	out := append(flags, "--")
	return append(out, positionals...), nil
}

// boolWord maps every accepted boolean spelling onto one strconv understands.
func boolWord(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return "true"
	}
	return "false"
}

// longAliases are a field's alias keys spelled as long options.
func longAliases(f config.Field) []string {
	var out []string
	for _, a := range f.Aliases {
		out = append(out, strings.ReplaceAll(a, "_", "-"))
	}
	return out
}
