package redistest

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// RoundTrips counts the round trips a client makes: one per command or
// pipeline sent, not counting the commands go-redis sends when it opens a
// connection (HELLO, CLIENT SETINFO, AUTH, SELECT). Install it with
// CountRoundTrips.
type RoundTrips struct{ n atomic.Int64 }

// CountRoundTrips adds a RoundTrips hook to c and returns it.
func CountRoundTrips(c redis.UniversalClient) *RoundTrips {
	h := &RoundTrips{}
	c.AddHook(h)
	return h
}

// N is the number of round trips so far.
func (h *RoundTrips) N() int64 { return h.n.Load() }

// Of runs call and returns the round trips it made (other calls on the
// client at the same time count too) and its error.
func (h *RoundTrips) Of(call func() error) (int64, error) {
	before := h.n.Load()
	err := call()
	return h.n.Load() - before, err
}

// DialHook implements redis.Hook.
func (h *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (h *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (h *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || !handshake(cmds[0]) {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// handshake tells the commands go-redis sends when it opens a connection.
func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}
