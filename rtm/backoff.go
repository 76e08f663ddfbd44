package rtm

import (
	"math/rand/v2"
	"time"
)

// Backoff is the upstream reconnect policy: exponential backoff with full
// jitter (the n-th consecutive failure waits a uniform random time in
// [0, min(Max, Base·2^(n-1))]), reset after a connection that stayed up for
// StableAfter. The zero value means the defaults.
type Backoff struct {
	// Base is the first delay's upper bound. Default 500ms.
	Base time.Duration
	// Max caps the upper bound. Default 30s.
	Max time.Duration
	// StableAfter: a connection open at least this long resets the failure
	// count, so the next reconnect waits at most Base again. Default 30s.
	StableAfter time.Duration
	// Rand returns a number in [0, 1) (1 is tolerated and means the upper
	// bound); it is called from several goroutines. Default math/rand/v2's
	// Float64. Tests inject a fixed sequence to make delays exact.
	Rand func() float64
}

// withDefaults fills zero fields.
func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = 500 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Base {
		b.Max = b.Base
	}
	if b.StableAfter <= 0 {
		b.StableAfter = 30 * time.Second
	}
	if b.Rand == nil {
		b.Rand = rand.Float64
	}
	return b
}

// Cap is the upper bound of the delay after the n-th consecutive failure
// (n >= 1): min(Max, Base·2^(n-1)).
func (b Backoff) Cap(n int) time.Duration {
	b = b.withDefaults()
	c := b.Base
	for i := 1; i < n && c < b.Max; i++ {
		c *= 2
	}
	return min(c, b.Max)
}

// Delay draws the wait after the n-th consecutive failure (n >= 1): a
// uniform random duration in [0, Cap(n)].
func (b Backoff) Delay(n int) time.Duration {
	b = b.withDefaults()
	r := b.Rand()
	r = max(0, min(r, 1))
	return time.Duration(r * float64(b.Cap(n)))
}
