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
package limits

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrUnavailable: the backing store cannot be reached; the caller decides
	// whether to fail open or closed (the node fails closed with UNAVAILABLE).
	ErrUnavailable = errors.New("limits: unavailable")
	// ErrBadLimit: a Limit with N <= 0 or Window <= 0.
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
