// Package limitstest is the contract suite every [limits.Limiter] must pass:
//
//	limitstest.Run(t, func(t *testing.T, now limits.Clock) limits.Limiter {
//		return limits.NewMemory(now)
//	}, limitstest.Options{})
//
// The [limits.Window] cases run on a clock the suite drives, so a minute
// passes in no time. The [limits.GCRA] cases use short windows (5 per second)
// so that they also run, in real time, against an implementation that reads
// another clock (redis_rate reads the Redis server's): see [Options].
package limitstest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anchat/realtime/internal/testclock"
	"github.com/anchat/realtime/limits"
)

// Options describe the implementation under test.
type Options struct {
	// GCRAServerClock: GCRA checks ignore the clock given to the factory
	// (redis_rate uses Redis server time). The GCRA cases then wait in real
	// time and allow for the time the calls take; cases that need a driven
	// clock for GCRA are skipped.
	GCRAServerClock bool
}

// Run runs the suite. newLimiter is called once per subtest with a clock the
// suite drives; the limiter must use it for the Window policy, and start with
// no state (for Redis: a fresh key prefix).
func Run(t *testing.T, newLimiter func(t *testing.T, now limits.Clock) limits.Limiter, opts Options) {
	type env struct {
		l   limits.Limiter
		clk *testclock.Clock
		ctx context.Context
	}
	setup := func(t *testing.T) env {
		clk := testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		t.Cleanup(cancel)
		return env{l: newLimiter(t, clk.Now), clk: clk, ctx: ctx}
	}
	perMinute := func(n int) limits.Limit { return limits.Limit{Policy: limits.Window, N: n, Window: time.Minute} }

	t.Run("WindowThirtyPerMinute", func(t *testing.T) {
		e := setup(t)
		l := perMinute(30)
		for i := range 30 {
			r := allow(t, e.l, e.ctx, "msg:alice", l)
			if !r.Allowed || r.Remaining != 29-i || r.RetryAfter != 0 {
				t.Fatalf("event %d at +%ds: %+v, want allowed, remaining %d, retry 0", i+1, i, r, 29-i)
			}
			e.clk.Advance(time.Second)
		}
		// Now +30s: the first event (at +0s) leaves the window at +60s.
		r := allow(t, e.l, e.ctx, "msg:alice", l)
		wantRefused(t, r, 30*time.Second)
		e.clk.Advance(30*time.Second - time.Millisecond)
		wantRefused(t, allow(t, e.l, e.ctx, "msg:alice", l), time.Millisecond)
		e.clk.Advance(time.Millisecond) // +60s
		if r := allow(t, e.l, e.ctx, "msg:alice", l); !r.Allowed || r.Remaining != 0 {
			t.Fatalf("at +60s: %+v, want allowed with remaining 0", r)
		}
		// Exactly one: the next leaves at +61s.
		wantRefused(t, allow(t, e.l, e.ctx, "msg:alice", l), time.Second)
	})

	t.Run("WindowBurstThenRetry", func(t *testing.T) {
		e := setup(t)
		l := perMinute(30)
		for range 30 {
			if r := allow(t, e.l, e.ctx, "k", l); !r.Allowed {
				t.Fatalf("burst refused: %+v", r)
			}
		}
		wantRefused(t, allow(t, e.l, e.ctx, "k", l), time.Minute)
		e.clk.Advance(time.Minute)
		for i := range 30 {
			if r := allow(t, e.l, e.ctx, "k", l); !r.Allowed {
				t.Fatalf("after a minute, event %d refused: %+v", i, r)
			}
		}
		wantRefused(t, allow(t, e.l, e.ctx, "k", l), time.Minute)
	})

	t.Run("WindowRefusedNotCounted", func(t *testing.T) {
		e := setup(t)
		l := limits.Limit{Policy: limits.Window, N: 2, Window: 10 * time.Second}
		allowed := func() bool { return allow(t, e.l, e.ctx, "k", l).Allowed }
		if !allowed() { // +0s
			t.Fatal("first refused")
		}
		e.clk.Advance(time.Second)
		if !allowed() { // +1s
			t.Fatal("second refused")
		}
		for range 8 { // +2s .. +9s: refused, and not counted
			e.clk.Advance(time.Second)
			for range 5 {
				if allowed() {
					t.Fatal("third event in the window allowed")
				}
			}
		}
		e.clk.Advance(time.Second) // +10s: the +0s event left
		if !allowed() {
			t.Fatal("at +10s refused: refused calls were counted")
		}
		if allowed() {
			t.Fatal("at +10s a second one allowed")
		}
		e.clk.Advance(time.Second) // +11s: the +1s event left
		if !allowed() {
			t.Fatal("at +11s refused")
		}
	})

	t.Run("WindowRollingInvariant", func(t *testing.T) {
		for _, l := range []limits.Limit{
			perMinute(30),
			{Policy: limits.Window, N: 5, Window: 10 * time.Second},
			{Policy: limits.Window, N: 1, Window: 1500 * time.Millisecond},
		} {
			e := setup(t)
			seed := uint64(time.Now().UnixNano())
			rng := rand.New(rand.NewPCG(seed, 1))
			t.Logf("limit %+v, seed %d", l, seed)
			var accepted []time.Time
			for i := range 1500 {
				// Bursts (several at one instant) mixed with gaps of up to a
				// fifth of the window, in whole milliseconds.
				if rng.IntN(3) > 0 {
					e.clk.Advance(time.Duration(rng.Int64N(int64(l.Window/5/time.Millisecond))) * time.Millisecond)
				}
				now := e.clk.Now()
				r := allow(t, e.l, e.ctx, "k", l)
				inWindow := countIn(accepted, now.Add(-l.Window), now)
				if r.Allowed {
					if inWindow >= l.N {
						t.Fatalf("seed %d attempt %d at %v: allowed with %d already in the window", seed, i, now, inWindow)
					}
					if r.Remaining != l.N-inWindow-1 {
						t.Fatalf("seed %d attempt %d: remaining %d, want %d", seed, i, r.Remaining, l.N-inWindow-1)
					}
					accepted = append(accepted, now)
					continue
				}
				if inWindow < l.N {
					t.Fatalf("seed %d attempt %d at %v: refused with only %d in the window", seed, i, now, inWindow)
				}
				oldest := accepted[len(accepted)-l.N]
				if want := oldest.Add(l.Window).Sub(now); !near(r.RetryAfter, want, 0) {
					t.Fatalf("seed %d attempt %d: RetryAfter %v, want %v", seed, i, r.RetryAfter, want)
				}
			}
			// The invariant itself: no N+1 accepted in any rolling window.
			for i := l.N; i < len(accepted); i++ {
				if d := accepted[i].Sub(accepted[i-l.N]); d < l.Window {
					t.Fatalf("seed %d: %d accepted within %v (< %v)", seed, l.N+1, d, l.Window)
				}
			}
			if len(accepted) < l.N {
				t.Fatalf("seed %d: only %d accepted", seed, len(accepted))
			}
		}
	})

	t.Run("WindowConcurrentCap", func(t *testing.T) {
		e := setup(t)
		l := perMinute(10)
		var ok atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				r, err := e.l.Allow(e.ctx, "k", l)
				if err != nil {
					t.Error(err)
					return
				}
				if r.Allowed {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		if n := ok.Load(); n != 10 {
			t.Fatalf("%d of 50 concurrent checks allowed, want 10", n)
		}
	})

	t.Run("KeysIndependent", func(t *testing.T) {
		e := setup(t)
		for _, l := range []limits.Limit{perMinute(2), {Policy: limits.GCRA, N: 2, Window: time.Minute}} {
			for range 2 {
				allow(t, e.l, e.ctx, "a", l)
			}
			if r := allow(t, e.l, e.ctx, "a", l); r.Allowed {
				t.Fatalf("policy %d: third on key a allowed", l.Policy)
			}
			if r := allow(t, e.l, e.ctx, "b", l); !r.Allowed {
				t.Fatalf("policy %d: key b refused after key a was spent", l.Policy)
			}
			if r := allow(t, e.l, e.ctx, "a}b", l); !r.Allowed {
				t.Fatalf("policy %d: key a}b refused after key a was spent", l.Policy)
			}
		}
	})

	t.Run("PoliciesOnOneKeyIndependent", func(t *testing.T) {
		e := setup(t)
		w := perMinute(1)
		g := limits.Limit{Policy: limits.GCRA, N: 1, Window: time.Minute}
		if !allow(t, e.l, e.ctx, "k", w).Allowed || !allow(t, e.l, e.ctx, "k", g).Allowed {
			t.Fatal("first event refused")
		}
		if allow(t, e.l, e.ctx, "k", w).Allowed || allow(t, e.l, e.ctx, "k", g).Allowed {
			t.Fatal("second event allowed")
		}
	})

	t.Run("BadLimit", func(t *testing.T) {
		e := setup(t)
		for _, l := range []limits.Limit{
			{Policy: limits.Window, N: 0, Window: time.Minute},
			{Policy: limits.Window, N: -1, Window: time.Minute},
			{Policy: limits.Window, N: 1, Window: 0},
			{Policy: limits.GCRA, N: 0, Window: time.Minute},
			{Policy: limits.GCRA, N: 1, Window: -time.Second},
			{Policy: 0, N: 1, Window: time.Minute},
			{Policy: 99, N: 1, Window: time.Minute},
		} {
			if _, err := e.l.Allow(e.ctx, "k", l); !errors.Is(err, limits.ErrBadLimit) {
				t.Errorf("Allow(%+v): %v, want ErrBadLimit", l, err)
			}
		}
	})

	// GCRA: 5 per second, burst 5, emission interval 200ms.
	gcra := limits.Limit{Policy: limits.GCRA, N: 5, Window: time.Second}
	emission := gcra.EmissionInterval()

	t.Run("GCRABurstThenEmissionInterval", func(t *testing.T) {
		e := setup(t)
		wait := e.clk.Advance
		slack := time.Duration(0)
		if opts.GCRAServerClock {
			wait, slack = time.Sleep, 100*time.Millisecond
		}
		start := time.Now()
		for i := range gcra.N {
			r := allow(t, e.l, e.ctx, "ip:1", gcra)
			if !r.Allowed || r.Remaining != gcra.N-1-i {
				t.Fatalf("burst event %d: %+v, want allowed with remaining %d", i+1, r, gcra.N-1-i)
			}
		}
		r := allow(t, e.l, e.ctx, "ip:1", gcra)
		if opts.GCRAServerClock && time.Since(start) > emission/2 {
			t.Skipf("burst took %v, too slow to judge a %v interval", time.Since(start), emission)
		}
		if r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > emission || r.RetryAfter < emission-slack {
			t.Fatalf("event %d: %+v, want refused with RetryAfter ≈ %v", gcra.N+1, r, emission)
		}
		wait(r.RetryAfter)
		if r := allow(t, e.l, e.ctx, "ip:1", gcra); !r.Allowed {
			t.Fatalf("after RetryAfter: %+v, want allowed", r)
		}
		r = allow(t, e.l, e.ctx, "ip:1", gcra)
		if r.Allowed || r.RetryAfter > emission || r.RetryAfter < emission-slack {
			t.Fatalf("right after: %+v, want refused with RetryAfter ≈ %v", r, emission)
		}
	})

	t.Run("GCRARefusedNotCounted", func(t *testing.T) {
		e := setup(t)
		wait := e.clk.Advance
		if opts.GCRAServerClock {
			wait = time.Sleep
		}
		for range gcra.N {
			allow(t, e.l, e.ctx, "ip:1", gcra)
		}
		for range 20 {
			if allow(t, e.l, e.ctx, "ip:1", gcra).Allowed {
				t.Fatal("allowed past the burst")
			}
		}
		wait(emission + 20*time.Millisecond)
		if r := allow(t, e.l, e.ctx, "ip:1", gcra); !r.Allowed {
			t.Fatalf("one emission interval later: %+v, want allowed (refusals must not count)", r)
		}
	})

	t.Run("GCRASmoothNotSliding", func(t *testing.T) {
		if opts.GCRAServerClock {
			t.Skip("needs a driven clock for GCRA")
		}
		// PITFALLS: PerMinute(30) under GCRA admits 30 at once, then one
		// every 2s: 59 in the first rolling minute.
		e := setup(t)
		l := limits.Limit{Policy: limits.GCRA, N: 30, Window: time.Minute}
		n := 0
		for step := time.Duration(0); step < time.Minute; step += 100 * time.Millisecond {
			for allow(t, e.l, e.ctx, "ip:1", l).Allowed {
				n++
			}
			e.clk.Advance(100 * time.Millisecond)
		}
		if n != 59 {
			t.Fatalf("GCRA 30/min admitted %d in a minute, want 59", n)
		}
	})
}

func allow(t *testing.T, l limits.Limiter, ctx context.Context, key string, lim limits.Limit) limits.Result {
	t.Helper()
	r, err := l.Allow(ctx, key, lim)
	if err != nil {
		t.Fatalf("Allow(%q, %+v): %v", key, lim, err)
	}
	if r.Allowed && r.RetryAfter != 0 {
		t.Fatalf("Allow(%q): allowed with RetryAfter %v, want 0", key, r.RetryAfter)
	}
	return r
}

func wantRefused(t *testing.T, r limits.Result, retry time.Duration) {
	t.Helper()
	if r.Allowed || r.Remaining != 0 || !near(r.RetryAfter, retry, 0) {
		t.Fatalf("%+v, want refused with RetryAfter %v", r, retry)
	}
}

// near compares durations to the microsecond (the Redis window script keeps
// microseconds), plus slack.
func near(got, want, slack time.Duration) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return got > 0 && d < time.Microsecond+slack
}

// countIn counts the times in (from, to]; ts is ascending.
func countIn(ts []time.Time, from, to time.Time) int {
	i := sort.Search(len(ts), func(i int) bool { return ts[i].After(from) })
	j := sort.Search(len(ts), func(i int) bool { return ts[i].After(to) })
	return j - i
}
