// Package leasetest is the contract suite every [lease.Lease] must pass:
//
//	leasetest.Run(t, func(t *testing.T, now func() time.Time) lease.Lease {
//		return lease.NewMemory(now)
//	}, leasetest.Options{})
package leasetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/anchat/realtime/internal/testclock"
	"github.com/anchat/realtime/lease"
)

// Options describe the implementation under test.
type Options struct {
	// ServerClock: the implementation measures TTLs on its own clock (Redis
	// server time) and ignores the one given to the factory; the suite then
	// waits in real time, with TTLs of a few hundred milliseconds.
	ServerClock bool
}

// Run runs the suite. newLease is called once per subtest with a clock the
// suite drives, and must return a lease with no names held (for Redis: a
// fresh key prefix).
func Run(t *testing.T, newLease func(t *testing.T, now func() time.Time) lease.Lease, opts Options) {
	type env struct {
		l   lease.Lease
		ctx context.Context
		// wait lets d pass on the clock the lease measures TTLs with.
		wait func(d time.Duration)
	}
	setup := func(t *testing.T) env {
		clk := testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		t.Cleanup(cancel)
		wait := clk.Advance
		if opts.ServerClock {
			wait = func(d time.Duration) { clk.Advance(d); time.Sleep(d) }
		}
		return env{l: newLease(t, clk.Now), ctx: ctx, wait: wait}
	}
	// ttl is long enough that a lease taken in a subtest does not lapse by
	// itself while the subtest runs.
	const ttl = 10 * time.Second

	t.Run("Exclusive", func(t *testing.T) {
		e := setup(t)
		a := acquire(t, e.l, e.ctx, "rtm", "node-a", ttl, true)
		if a.Holder != "node-a" || a.Fencing <= 0 {
			t.Fatalf("term = %+v, want holder node-a and a positive fencing number", a)
		}
		got, ok, err := e.l.TryAcquire(e.ctx, "rtm", "node-b", ttl)
		if err != nil || ok {
			t.Fatalf("node-b TryAcquire while held: ok=%v err=%v, want refused", ok, err)
		}
		if got != a {
			t.Fatalf("refused TryAcquire reports term %+v, want the holder's %+v", got, a)
		}
		if h := holder(t, e.l, e.ctx, "rtm"); h != a {
			t.Fatalf("Holder = %+v, want %+v", h, a)
		}
	})

	t.Run("ConcurrentAcquireOneWinner", func(t *testing.T) {
		e := setup(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners := map[string]lease.Term{}
		for i := range 16 {
			wg.Go(func() {
				h := string(rune('a' + i))
				term, ok, err := e.l.TryAcquire(e.ctx, "rtm", h, ttl)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					winners[h] = term
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("%d winners (%v), want exactly 1", len(winners), winners)
		}
	})

	t.Run("SameHolderGetsItsTerm", func(t *testing.T) {
		e := setup(t)
		a := acquire(t, e.l, e.ctx, "rtm", "node-a", ttl, true)
		again := acquire(t, e.l, e.ctx, "rtm", "node-a", ttl, true)
		if again != a {
			t.Fatalf("re-acquire by the holder: %+v, want the same term %+v", again, a)
		}
	})

	t.Run("FencingIncreasesAcrossTerms", func(t *testing.T) {
		e := setup(t)
		var last int64
		for i, h := range []string{"node-a", "node-b", "node-a", "node-a", "node-c"} {
			term := acquire(t, e.l, e.ctx, "rtm", h, ttl, true)
			if term.Fencing <= last {
				t.Fatalf("term %d: fencing %d, want > %d", i, term.Fencing, last)
			}
			last = term.Fencing
			if err := e.l.Release(e.ctx, "rtm", term); err != nil {
				t.Fatal(err)
			}
			if _, ok := holderOK(t, e.l, e.ctx, "rtm"); ok {
				t.Fatalf("term %d: still held after Release", i)
			}
		}
	})

	t.Run("RenewByStaleTermFails", func(t *testing.T) {
		e := setup(t)
		old := acquire(t, e.l, e.ctx, "rtm", "node-a", ttl, true)
		if err := e.l.Release(e.ctx, "rtm", old); err != nil {
			t.Fatal(err)
		}
		if ok := renew(t, e.l, e.ctx, "rtm", old, ttl); ok {
			t.Fatal("Renew of a released term succeeded")
		}
		// Same holder, new term: the old term still may not renew.
		cur := acquire(t, e.l, e.ctx, "rtm", "node-a", ttl, true)
		if ok := renew(t, e.l, e.ctx, "rtm", old, ttl); ok {
			t.Fatal("Renew by a stale term of the same holder succeeded")
		}
		if ok := renew(t, e.l, e.ctx, "rtm", lease.Term{Holder: "node-b", Fencing: cur.Fencing}, ttl); ok {
			t.Fatal("Renew by another holder with the current fencing number succeeded")
		}
		if ok := renew(t, e.l, e.ctx, "rtm", cur, ttl); !ok {
			t.Fatal("Renew by the current term failed")
		}
	})

	t.Run("ReleaseByStaleTermDoesNothing", func(t *testing.T) {
		e := setup(t)
		old := acquire(t, e.l, e.ctx, "rtm", "node-a", ttl, true)
		if err := e.l.Release(e.ctx, "rtm", old); err != nil {
			t.Fatal(err)
		}
		cur := acquire(t, e.l, e.ctx, "rtm", "node-b", ttl, true)
		if err := e.l.Release(e.ctx, "rtm", old); err != nil {
			t.Fatalf("Release by a stale term: %v, want nil", err)
		}
		if h := holder(t, e.l, e.ctx, "rtm"); h != cur {
			t.Fatalf("after stale Release, Holder = %+v, want %+v", h, cur)
		}
		// Releasing a free lease is fine too.
		if err := e.l.Release(e.ctx, "other", old); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ExpiryFreesIt", func(t *testing.T) {
		e := setup(t)
		const short = 200 * time.Millisecond
		a := acquire(t, e.l, e.ctx, "rtm", "node-a", short, true)
		e.wait(short + 50*time.Millisecond)
		if _, ok := holderOK(t, e.l, e.ctx, "rtm"); ok {
			t.Fatal("still held after its TTL")
		}
		if ok := renew(t, e.l, e.ctx, "rtm", a, short); ok {
			t.Fatal("Renew after expiry succeeded")
		}
		b := acquire(t, e.l, e.ctx, "rtm", "node-b", ttl, true)
		if b.Fencing <= a.Fencing {
			t.Fatalf("fencing after expiry %d, want > %d", b.Fencing, a.Fencing)
		}
	})

	t.Run("RenewExtends", func(t *testing.T) {
		e := setup(t)
		const short = 500 * time.Millisecond
		a := acquire(t, e.l, e.ctx, "rtm", "node-a", short, true)
		e.wait(300 * time.Millisecond)
		if !renew(t, e.l, e.ctx, "rtm", a, short) {
			t.Fatal("Renew within TTL failed")
		}
		e.wait(300 * time.Millisecond) // 600 ms after acquiring, 300 ms after renewing
		if h := holder(t, e.l, e.ctx, "rtm"); h != a {
			t.Fatalf("after Renew, Holder = %+v, want %+v", h, a)
		}
		e.wait(250 * time.Millisecond) // 550 ms after renewing
		if _, ok := holderOK(t, e.l, e.ctx, "rtm"); ok {
			t.Fatal("still held after the renewed TTL")
		}
	})

	t.Run("ReacquireByHolderExtends", func(t *testing.T) {
		e := setup(t)
		const short = 500 * time.Millisecond
		a := acquire(t, e.l, e.ctx, "rtm", "node-a", short, true)
		e.wait(300 * time.Millisecond)
		if again := acquire(t, e.l, e.ctx, "rtm", "node-a", short, true); again != a {
			t.Fatalf("re-acquire: %+v, want %+v", again, a)
		}
		e.wait(300 * time.Millisecond)
		if h := holder(t, e.l, e.ctx, "rtm"); h != a {
			t.Fatalf("after re-acquire, Holder = %+v, want %+v", h, a)
		}
	})

	t.Run("NamesIndependent", func(t *testing.T) {
		e := setup(t)
		a := acquire(t, e.l, e.ctx, "rtm:profile-1", "node-a", ttl, true)
		b := acquire(t, e.l, e.ctx, "rtm:profile-2", "node-b", ttl, true)
		if h := holder(t, e.l, e.ctx, "rtm:profile-1"); h != a {
			t.Fatalf("Holder(profile-1) = %+v, want %+v", h, a)
		}
		if h := holder(t, e.l, e.ctx, "rtm:profile-2"); h != b {
			t.Fatalf("Holder(profile-2) = %+v, want %+v", h, b)
		}
	})

	t.Run("HolderWithSeparator", func(t *testing.T) {
		e := setup(t)
		a := acquire(t, e.l, e.ctx, "rtm", "pod|7", ttl, true)
		if h := holder(t, e.l, e.ctx, "rtm"); h != a {
			t.Fatalf("Holder = %+v, want %+v", h, a)
		}
		if !renew(t, e.l, e.ctx, "rtm", a, ttl) {
			t.Fatal("Renew failed")
		}
	})

	t.Run("BadTTL", func(t *testing.T) {
		e := setup(t)
		if _, _, err := e.l.TryAcquire(e.ctx, "rtm", "a", 0); !errors.Is(err, lease.ErrBadTTL) {
			t.Fatalf("TryAcquire ttl 0: %v, want ErrBadTTL", err)
		}
		if _, err := e.l.Renew(e.ctx, "rtm", lease.Term{Holder: "a", Fencing: 1}, -time.Second); !errors.Is(err, lease.ErrBadTTL) {
			t.Fatalf("Renew ttl -1s: %v, want ErrBadTTL", err)
		}
	})
}

func acquire(t *testing.T, l lease.Lease, ctx context.Context, name, holder string, ttl time.Duration, wantOK bool) lease.Term {
	t.Helper()
	term, ok, err := l.TryAcquire(ctx, name, holder, ttl)
	if err != nil {
		t.Fatalf("TryAcquire(%q, %q): %v", name, holder, err)
	}
	if ok != wantOK {
		t.Fatalf("TryAcquire(%q, %q): ok=%v, want %v (term %+v)", name, holder, ok, wantOK, term)
	}
	return term
}

func renew(t *testing.T, l lease.Lease, ctx context.Context, name string, term lease.Term, ttl time.Duration) bool {
	t.Helper()
	ok, err := l.Renew(ctx, name, term, ttl)
	if err != nil {
		t.Fatalf("Renew(%q, %+v): %v", name, term, err)
	}
	return ok
}

func holderOK(t *testing.T, l lease.Lease, ctx context.Context, name string) (lease.Term, bool) {
	t.Helper()
	term, ok, err := l.Holder(ctx, name)
	if err != nil {
		t.Fatalf("Holder(%q): %v", name, err)
	}
	return term, ok
}

func holder(t *testing.T, l lease.Lease, ctx context.Context, name string) lease.Term {
	t.Helper()
	term, ok := holderOK(t, l, ctx, name)
	if !ok {
		t.Fatalf("Holder(%q): free, want held", name)
	}
	return term
}
