package transport

import (
	"testing"

	"github.com/opengris/scaler/internal/scalertest/expect"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in      string
		scheme  string
		host    string
		port    int
		errPart string // non-empty: expected error mentioning this
	}{
		{in: "tcp://127.0.0.1:2345", scheme: "tcp", host: "127.0.0.1", port: 2345},
		{in: "tcp://localhost:1", scheme: "tcp", host: "localhost", port: 1},
		{in: "tcp://127.0.0.1:0", scheme: "tcp", host: "127.0.0.1", port: 0},
		{in: "tcp://*:65535", scheme: "tcp", host: "*", port: 65535},
		{in: "tcp://127.0.0.1:*", scheme: "tcp", host: "127.0.0.1", port: 0},
		{in: "tcp://[::1]:5", scheme: "tcp", host: "::1", port: 5},
		{in: "tcp://[fe80::1%eth0]:80", scheme: "tcp", host: "fe80::1%eth0", port: 80},
		{in: "ipc:///tmp/scaler.sock", scheme: "ipc", host: "/tmp/scaler.sock"},
		{in: "inproc://sched", scheme: "inproc", host: "sched"},

		{in: "127.0.0.1:2345", errPart: "no scheme"},
		{in: "", errPart: "no scheme"},
		{in: "udp://127.0.0.1:1", errPart: `unsupported scheme "udp"`},
		{in: "TCP://127.0.0.1:1", errPart: `unsupported scheme "TCP"`},
		{in: "tcp://127.0.0.1", errPart: "missing port"},
		{in: "tcp://127.0.0.1:", errPart: "missing port"},
		{in: "tcp://127.0.0.1:70000", errPart: "port 70000 out of range"},
		{in: "tcp://127.0.0.1:-1", errPart: `port "-1" is not a number`},
		{in: "tcp://127.0.0.1:+5", errPart: `port "+5" is not a number`},
		{in: "tcp://127.0.0.1:http", errPart: `port "http" is not a number`},
		{in: "tcp://:5", errPart: "missing host"},
		{in: "tcp://::1:5", errPart: "must be in brackets"},
		{in: "tcp://[::1]", errPart: "missing port"},
		{in: "tcp://[::1:5", errPart: "missing ']'"},
		{in: "tcp://[]:5", errPart: "empty IPv6 host"},
		{in: "tcp://a/b:5", errPart: "bad host"},
		{in: "ipc://", errPart: "empty ipc path"},
		{in: "inproc://", errPart: "empty inproc name"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			scheme, host, port, err := ParseAddress(tt.in)
			if expect.Err(t, err, tt.errPart) {
				return
			}
			if scheme != tt.scheme || host != tt.host || port != tt.port {
				t.Fatalf("ParseAddress(%q) = %q %q %d, want %q %q %d", tt.in, scheme, host, port, tt.scheme, tt.host, tt.port)
			}
		})
	}
}

func TestWithPortOffset(t *testing.T) {
	tests := []struct {
		in      string
		offset  int
		want    string
		errPart string
	}{
		{in: "tcp://127.0.0.1:2345", offset: 1, want: "tcp://127.0.0.1:2346"},
		{in: "tcp://127.0.0.1:2345", offset: 2, want: "tcp://127.0.0.1:2347"},
		{in: "tcp://localhost:1", offset: 0, want: "tcp://localhost:1"},
		{in: "tcp://*:8516", offset: 1, want: "tcp://*:8517"},
		{in: "tcp://[::1]:5", offset: 2, want: "tcp://[::1]:7"},
		{in: "tcp://h:65534", offset: 1, want: "tcp://h:65535"},
		{in: "tcp://h:10", offset: -9, want: "tcp://h:1"},

		{in: "tcp://h:65535", offset: 1, errPart: "out of range"},
		{in: "tcp://h:10", offset: -10, errPart: "out of range"},
		{in: "tcp://h:0", offset: 1, errPart: "fixed port"},
		{in: "tcp://h:*", offset: 1, errPart: "fixed port"},
		{in: "ipc:///tmp/x", offset: 1, errPart: "needs a tcp address"},
		{in: "inproc://x", offset: 1, errPart: "needs a tcp address"},
		{in: "h:5", offset: 1, errPart: "no scheme"},
		{in: "tcp://h:70000", offset: 1, errPart: "out of range 0..65535"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := WithPortOffset(tt.in, tt.offset)
			if expect.Err(t, err, tt.errPart) {
				return
			}
			if got != tt.want {
				t.Fatalf("WithPortOffset(%q, %d) = %q; want %q", tt.in, tt.offset, got, tt.want)
			}
		})
	}
}

func TestSocketTypeString(t *testing.T) {
	for typ, want := range map[SocketType]string{Router: "ROUTER", Dealer: "DEALER", Pub: "PUB", Sub: "SUB", 9: "SocketType(9)"} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(typ), got, want)
		}
	}
}
