package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// FieldError names the TOML key whose value is wrong.
type FieldError struct {
	Key string
	Err error
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldError(key string, err error) error {
	if err == nil {
		return nil
	}
	return &FieldError{Key: key, Err: err}
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func atLeast(key string, v, min int) error {
	if v < min {
		return fieldError(key, errorf("must be at least %d, got %d", min, v))
	}
	return nil
}

func atLeast64(key string, v, min int64) error {
	if v < min {
		return fieldError(key, errorf("must be at least %d, got %d", min, v))
	}
	return nil
}

// positiveSize checks a size (ParseSize) that must be at least one byte.
func positiveSize(key, v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return fieldError(key, err)
	}
	if n < 1 {
		return fieldError(key, errorf("must be at least 1 byte, got %q", v))
	}
	return nil
}

func port(key string, v int) error {
	if v < 1 || v > 65535 {
		return fieldError(key, errorf("must be a port between 1 and 65535, got %d", v))
	}
	return nil
}

func nonEmpty(key, v string) error {
	if strings.TrimSpace(v) == "" {
		return fieldError(key, errors.New("must not be empty"))
	}
	return nil
}

func oneOf(key, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fieldError(key, errorf("must be one of %s, got %q", strings.Join(allowed, ", "), v))
}

func optionalURL(key, v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fieldError(key, errorf("%q is not a valid URL such as http://127.0.0.1:8080", v))
	}
	return nil
}

func requireAddress(key, v string, schemes ...string) error {
	if v == "" {
		return fieldError(key, errors.New("is required"))
	}
	return optionalAddress(key, v, schemes...)
}

func optionalAddress(key, v string, schemes ...string) error {
	if v == "" {
		return nil
	}
	a, err := ParseAddress(v)
	if err != nil {
		return fieldError(key, err)
	}
	for _, s := range schemes {
		if a.Scheme == s {
			return nil
		}
	}
	return fieldError(key, errorf("%q: scheme must be %s", v, strings.Join(schemes, " or ")))
}

// Address is a parsed zmq endpoint.
type Address struct {
	Scheme string // tcp, ipc or inproc
	Host   string // host for tcp (IPv6 without brackets), path or name otherwise
	Port   int    // tcp only
}

func (a Address) String() string {
	if a.Scheme != "tcp" {
		return a.Scheme + "://" + a.Host
	}
	return "tcp://" + net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
}

// WithPort returns the same tcp address on another port.
func (a Address) WithPort(p int) Address { a.Port = p; return a }

// ParseAddress parses tcp://HOST:PORT (HOST may be a name, an IPv4 literal,
// [IPv6] or *), ipc://PATH and inproc://NAME.
func ParseAddress(s string) (Address, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return Address{}, errorf("%q is not an address such as tcp://127.0.0.1:6378", s)
	}
	switch scheme {
	case "ipc", "inproc":
		if rest == "" {
			return Address{}, errorf("%q: missing %s path", s, scheme)
		}
		return Address{Scheme: scheme, Host: rest}, nil
	case "tcp":
	default:
		return Address{}, errorf("%q: unsupported scheme %q (use tcp, ipc or inproc)", s, scheme)
	}
	host, portText, err := net.SplitHostPort(rest)
	if err != nil {
		return Address{}, errorf("%q: expected tcp://HOST:PORT", s)
	}
	if host == "" {
		return Address{}, errorf("%q: missing host", s)
	}
	p, err := strconv.Atoi(portText)
	if err != nil || p < 0 || p > 65535 {
		return Address{}, errorf("%q: port %q is not a number between 0 and 65535", s, portText)
	}
	return Address{Scheme: "tcp", Host: host, Port: p}, nil
}

var levelNames = map[string]string{
	"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARNING", "WARN": "WARNING",
	"ERROR": "ERROR", "CRITICAL": "CRITICAL", "NOTSET": "NOTSET",
}

// NormalizeLevel accepts a logging level in any case and returns its
// canonical upper-case name.
func NormalizeLevel(s string) (string, error) {
	if n, ok := levelNames[strings.ToUpper(strings.TrimSpace(s))]; ok {
		return n, nil
	}
	return "", errorf("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, NOTSET (any case), got %q", s)
}

// ParseSize parses a byte count with an optional K, M, G or T suffix (powers
// of 1024), optionally followed by B or iB: "512M", "2GiB", "1024".
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errorf("%q is not a size such as 1024, 64K, 512M or 2G", s)
	}
	return n * mult, nil
}

// SplitNames splits a comma-separated name list, trimming blanks and
// dropping empty entries.
func SplitNames(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// ParseCapabilities parses "linux,cpu=8" into {"linux": -1, "cpu": 8}. A
// name without a value gets -1 ("present"). Empty entries (a trailing comma)
// are ignored rather than creating an empty-named capability.
func ParseCapabilities(s string) (map[string]int64, error) {
	caps := map[string]int64{}
	for _, item := range strings.Split(s, ",") {
		name, value, hasValue := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		value = strings.TrimSpace(value)
		if name == "" {
			if value != "" {
				return nil, errorf("capability %q has no name", item)
			}
			continue
		}
		if !hasValue || value == "" {
			caps[name] = -1
			continue
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return nil, errorf("invalid capability value for %q: expected an integer, but got %q", name, value)
		}
		caps[name] = n
	}
	return caps, nil
}
