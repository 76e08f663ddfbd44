package redistest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RoundTrips counts the round trips a client makes: one per command or
// pipeline sent, other than the commands go-redis sends to open a connection
// (HELLO, CLIENT, AUTH, SELECT), which are the pool's doing, not the call's.
type RoundTrips struct{ n atomic.Int64 }

// CountRoundTrips adds a round-trip counter to c.
func CountRoundTrips(c redis.UniversalClient) *RoundTrips {
	h := &RoundTrips{}
	c.AddHook(h)
	return h
}

// Count is the number of round trips so far.
func (h *RoundTrips) Count() int64 { return h.n.Load() }

// Call is one engine call whose round trips a test checks.
type Call struct {
	Name string
	Do   func() error
	Want int64 // round trips it takes; 0 means 1
}

// Expect runs the calls in order: the test fails at once when one returns an
// error, and fails when one takes other than its Want round trips.
func (h *RoundTrips) Expect(tb testing.TB, calls []Call) {
	tb.Helper()
	for _, c := range calls {
		want := c.Want
		if want == 0 {
			want = 1
		}
		before := h.Count()
		if err := c.Do(); err != nil {
			tb.Fatalf("%s: %v", c.Name, err)
		}
		if n := h.Count() - before; n != want {
			tb.Errorf("%s: %d round trips, want %d", c.Name, n, want)
		}
	}
}

// DialHook is part of redis.Hook.
func (h *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook is part of redis.Hook.
func (h *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !connectionSetup(cmd) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook is part of redis.Hook.
func (h *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || !connectionSetup(cmds[0]) {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// connectionSetup tells the commands go-redis sends when it opens a connection.
func connectionSetup(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

// FailFastClient returns a client of s that neither retries nor waits long
// to dial, for tests of what an engine answers while Redis is down; it is
// closed with the test.
func (s *Server) FailFastClient() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialerRetries: 1, DialTimeout: 200 * time.Millisecond})
	s.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// ExpectErr runs every call and fails the test for each that does not
// return an error matching want (errors.Is); what names the situation
// ("with Redis down").
func ExpectErr(tb testing.TB, want error, what string, calls map[string]func() error) {
	tb.Helper()
	for name, call := range calls {
		if err := call(); !errors.Is(err, want) {
			tb.Errorf("%s %s: %v, want %v", name, what, err, want)
		}
	}
}
