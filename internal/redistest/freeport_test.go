package redistest

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePortOutsideEphemeralRange: handed-out ports are bindable, distinct,
// never 6379 and below the ephemeral range, where outgoing connections never
// take them.
func TestFreePortOutsideEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	if low <= freePortLow {
		t.Skipf("the kernel's ephemeral range starts at %d (0: unknown): no port below it to hand out", low)
	}
	seen := map[int]bool{}
	for range 200 {
		p := FreePort(t)
		if p == 6379 || p < freePortLow || p >= low {
			t.Fatalf("port %d outside [%d, %d)", p, freePortLow, low)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	p := FreePort(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("handed-out port %d not bindable: %v", p, err)
	}
	l.Close()
}
