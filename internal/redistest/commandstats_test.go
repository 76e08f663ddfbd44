package redistest

import (
	"strings"
	"testing"
)

// CommandCalls counts each command the server ran since ResetStats, from
// any client; WireBytes counts what a counting client read.
func TestCommandCallsAndWireBytes(t *testing.T) {
	s := Start(t, Options{})
	c, wire := s.CountingClient()
	ctx := t.Context()
	if err := c.Set(ctx, "big", strings.Repeat("x", 10_000), 0).Err(); err != nil {
		t.Fatal(err)
	}
	ResetStats(t, c)
	other := s.Client()
	for range 3 {
		if err := other.HMGet(ctx, "h", "a").Err(); err != nil {
			t.Fatal(err)
		}
	}
	before := wire.Read()
	if err := c.Get(ctx, "big").Err(); err != nil {
		t.Fatal(err)
	}
	if n := wire.Read() - before; n < 10_000 || n > 10_100 {
		t.Errorf("GET of a 10,000-byte value read %d bytes", n)
	}
	calls := CommandCalls(t, c)
	if calls["hmget"] != 3 || calls["get"] != 1 || calls["set"] != 0 {
		t.Errorf("calls %v; want hmget 3, get 1 and no set (before the reset)", calls)
	}
	// A script busy for a while shows its CPU time.
	if err := c.Eval(ctx, "for i = 1, 200000 do end return 1", nil).Err(); err != nil {
		t.Fatal(err)
	}
	if st := CommandStats(t, c)["eval"]; st.Calls != 1 || st.Usec <= 0 {
		t.Errorf("eval stats %+v; want 1 call that took some microseconds", st)
	}
}
