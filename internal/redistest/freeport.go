package redistest

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Ports handed out by FreePort are chosen below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range, 32768–60999 by default). A port picked in
// that range and released until a server binds it can meanwhile become the
// source port of any outgoing connection on the machine (a load test opens
// thousands), and the server then fails to bind: the flake this avoids.
const (
	freePortLow  = 20000 // lowest port handed out
	freePortHigh = 32767 // used when the ephemeral range cannot be read
)

var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a loopback port that nothing listens on, below the
// kernel's ephemeral range, never 6379 and never one it returned before in
// this process. It is free when returned; the caller binds it soon.
func FreePort(tb testing.TB) int {
	tb.Helper()
	high := ephemeralLow() - 1
	if high <= freePortLow {
		// The ephemeral range starts low (or is unknown): no port is out of
		// its reach; take the usual one below 32768, checked as ever.
		high = freePortHigh
	}
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		port := freePortLow + rand.IntN(high-freePortLow+1)
		if port == 6379 || handedOut.ports[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // in use
		}
		_ = l.Close()
		handedOut.ports[port] = true
		return port
	}
	tb.Fatalf("redistest: no free port in %d–%d after 1000 tries", freePortLow, high)
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range, or 0 when
// it cannot be read (not Linux).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 0
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0
	}
	return low
}
