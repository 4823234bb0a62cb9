package transport

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseAddress splits a zmq endpoint into its parts. Accepted forms:
//
//	tcp://host:port    port 0..65535 ("*" means any port and yields 0);
//	                   host may be a name, an IPv4 address, "*", or an IPv6
//	                   address in brackets (tcp://[::1]:5, host "::1")
//	ipc://path         host is the path, port 0
//	inproc://name      host is the name, port 0
func ParseAddress(s string) (scheme, host string, port int, err error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", "", 0, fmt.Errorf("transport: address %q has no scheme (want tcp://host:port, ipc://path or inproc://name)", s)
	}
	switch scheme {
	case "ipc", "inproc":
		if rest == "" {
			what := "name"
			if scheme == "ipc" {
				what = "path"
			}
			return "", "", 0, fmt.Errorf("transport: address %q: empty %s %s", s, scheme, what)
		}
		return scheme, rest, 0, nil
	case "tcp":
	default:
		return "", "", 0, fmt.Errorf("transport: address %q: unsupported scheme %q (want tcp, ipc or inproc)", s, scheme)
	}

	var portStr string
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", "", 0, fmt.Errorf("transport: address %q: missing ']' after IPv6 host", s)
		}
		host = rest[1:end]
		after := rest[end+1:]
		if !strings.HasPrefix(after, ":") {
			return "", "", 0, fmt.Errorf("transport: address %q: missing port after host [%s]", s, host)
		}
		portStr = after[1:]
		if host == "" {
			return "", "", 0, fmt.Errorf("transport: address %q: empty IPv6 host", s)
		}
	} else {
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			return "", "", 0, fmt.Errorf("transport: address %q: missing port (want tcp://host:port)", s)
		}
		host, portStr = rest[:i], rest[i+1:]
		if strings.Contains(host, ":") {
			return "", "", 0, fmt.Errorf("transport: address %q: IPv6 host %q must be in brackets, e.g. tcp://[::1]:port", s, host)
		}
		if host == "" {
			return "", "", 0, fmt.Errorf("transport: address %q: missing host", s)
		}
	}
	if strings.ContainsAny(host, "/ ") {
		return "", "", 0, fmt.Errorf("transport: address %q: bad host %q", s, host)
	}
	port, err = parsePort(portStr)
	if err != nil {
		return "", "", 0, fmt.Errorf("transport: address %q: %w", s, err)
	}
	return "tcp", host, port, nil
}

func parsePort(p string) (int, error) {
	if p == "*" {
		return 0, nil
	}
	if p == "" {
		return 0, fmt.Errorf("missing port")
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q is not a number", p)
		}
	}
	n, err := strconv.Atoi(p)
	if err != nil || n > 65535 {
		return 0, fmt.Errorf("port %s out of range 0..65535", p)
	}
	return n, nil
}

// WithPortOffset returns the tcp address addr with its port moved by offset
// (tcp://h:p -> tcp://h:p+offset). Object storage listens at P+1 and the
// monitor at P+2 of the scheduler's port P. It fails for non-tcp addresses,
// for port 0 / "*" (no fixed port to offset) and when the result is outside
// 1..65535.
func WithPortOffset(addr string, offset int) (string, error) {
	scheme, host, port, err := ParseAddress(addr)
	if err != nil {
		return "", err
	}
	if scheme != "tcp" {
		return "", fmt.Errorf("transport: address %q: port offset needs a tcp address, not %s", addr, scheme)
	}
	if port == 0 {
		return "", fmt.Errorf("transport: address %q: port offset needs a fixed port, not 0 or *", addr)
	}
	p := port + offset
	if p < 1 || p > 65535 {
		return "", fmt.Errorf("transport: address %q: port %d%+d = %d out of range 1..65535", addr, port, offset, p)
	}
	return "tcp://" + joinHostPort(host, p), nil
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// isIPv6Host reports whether a parsed tcp host is an IPv6 literal.
func isIPv6Host(host string) bool { return strings.Contains(host, ":") }
