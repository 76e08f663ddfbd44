// Package limits enforces rate limits cluster-wide. Two policies share one
// [Limiter] interface:
//
//   - [Window]: no more than N accepted in any rolling window (per user and
//     action: "30 messages a minute" as a user reads it). RetryAfter tells when
//     the oldest accepted event leaves the window.
//   - [GCRA]: the generic cell rate algorithm of go-redis/redis_rate (used for
//     connection attempts per address): a burst of N, then one every Window/N.
//
// It is its own package because limits are neither transport nor presence.
// [Memory] is the single-node limiter with an injectable clock; the Redis one
// does one round trip per check. Both pass limits/limitstest.
//
//	l := limits.NewMemory(nil) // or limits.NewRedis(client, limits.RedisConfig{})
//	res, err := l.Allow(ctx, "msg:"+userID, limits.PerMinute(30))
//	if err == nil && !res.Allowed {
//		// RATE_LIMITED, retryAfterMs = res.RetryAfter.Milliseconds()
//	}
//
// With Redis unreachable Allow returns an error matching [ErrUnavailable] and
// no decision: failing open or closed is the caller's choice.
package limits

import (
	"context"
	"errors"
	"fmt"
	"time"
)

var (
	// ErrUnavailable: the backing store cannot be reached; the caller decides
	// whether to fail open or closed (the node fails closed with UNAVAILABLE).
	ErrUnavailable = errors.New("limits: unavailable")
	// ErrBadLimit: a Limit with N <= 0, Window <= 0 or an unknown Policy.
	ErrBadLimit = errors.New("limits: bad limit")
)

// Policy selects the algorithm.
type Policy uint8

const (
	Window Policy = iota + 1 // rolling window cap
	GCRA                     // redis_rate semantics
)

// Limit is N events per Window under Policy.
type Limit struct {
	Policy Policy
	N      int
	Window time.Duration
}

// PerMinute is a [Window] limit of n events in any rolling minute.
func PerMinute(n int) Limit { return Limit{Policy: Window, N: n, Window: time.Minute} }

// Validate returns an error matching [ErrBadLimit] if l cannot be enforced.
func (l Limit) Validate() error {
	if l.N <= 0 || l.Window <= 0 || (l.Policy != Window && l.Policy != GCRA) {
		return fmt.Errorf("%w: %+v", ErrBadLimit, l)
	}
	return nil
}

// EmissionInterval is Window/N: under [GCRA], the steady spacing between
// events once the burst is spent.
func (l Limit) EmissionInterval() time.Duration {
	if l.N <= 0 {
		return 0
	}
	return l.Window / time.Duration(l.N)
}

// Result of a check.
type Result struct {
	Allowed    bool
	Remaining  int           // events still allowed right now (best effort)
	RetryAfter time.Duration // when !Allowed: how long until one would pass; 0 when allowed
}

// Limiter checks and counts one event under a key (for example "msg:alice").
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit) (Result, error)
}

// Clock is the time source; tests drive it.
type Clock func() time.Time
