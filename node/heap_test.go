package node

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

// TestHeapProfileIdle writes a heap profile of a node holding idle
// connections, each joined to a chat (set REALTIME_HEAP_PROFILE=file).
// It is a measuring aid, not part of the suite.
func TestHeapProfileIdle(t *testing.T) {
	out := os.Getenv("REALTIME_HEAP_PROFILE")
	if out == "" {
		t.Skip("set REALTIME_HEAP_PROFILE to write a heap profile")
	}
	runtime.MemProfileRate = 1
	n := startNode(t, func(c *Config) {
		c.Limits.MaxUserConnections = 100000
		c.Limits.Connects = 1 << 30
		c.Limits.Joins = 1 << 30
	})
	const conns = 5000
	for i := range conns {
		nc, br, err := dialRaw(t, n.Addr().String(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		c := &testClient{t: t, nc: nc, br: br, nsp: "/messenger"}
		t.Cleanup(func() { _ = nc.Close() })
		c.joinWithoutLoop("u"+itoa(i), "c"+itoa(i/10))
	}
	runtime.GC()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_ = pprof.Lookup("heap").WriteTo(f, 0)
}

func itoa(i int) string {
	const d = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{d[i%10]}, b...)
	}
	return string(b)
}
