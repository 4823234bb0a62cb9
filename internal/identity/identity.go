// Package identity makes the random ids of peers: the client, worker and
// host identities of docs/protocol.md §4, and the random names and nonces
// the roles need. One place, so every id has the same form and the same
// source of randomness.
package identity

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
)

// RandomHex returns n random bytes as 2n lower-case hex digits.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux (getrandom)
	return hex.EncodeToString(b)
}

// New returns "<pid>|<kind>|<name>|<32 hex digits>", or
// "<pid>|<kind>|<32 hex digits>" when name is empty: the form of upstream's
// ids, which the monitors parse (pid, kind, host) and the scheduler keys
// its peers by.
func New(kind, name string) string {
	id := strconv.Itoa(os.Getpid()) + "|" + kind + "|"
	if name != "" {
		id += name + "|"
	}
	return id + RandomHex(16)
}
