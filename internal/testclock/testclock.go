// Package testclock is a clock tests move by hand, for the engines' injected
// clocks (a config's Now func() time.Time). Its methods are safe for
// concurrent use, as an engine's goroutines read the clock while the test
// moves it.
//
//	clk := testclock.New(time.Unix(1_900_000_000, 0))
//	l := limits.NewMemory(limits.MemoryConfig{Now: clk.Now})
//	clk.Advance(time.Minute)
package testclock

import (
	"sync"
	"time"
)

// Clock is a stopped clock (New) or the real one (Real), each moved on by
// Advance.
type Clock struct {
	start time.Time // zero: the real time

	mu     sync.Mutex
	offset time.Duration // guarded by mu: the sum of the Advances
}

// New returns a clock stopped at start.
func New(start time.Time) *Clock { return &Clock{start: start} }

// Real returns the real clock, ahead by whatever Advance adds: for stores
// whose deadlines a real server (Redis) keeps in real time too.
func Real() *Clock { return &Clock{} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.start.IsZero() {
		return time.Now().Add(c.offset)
	}
	return c.start.Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}
