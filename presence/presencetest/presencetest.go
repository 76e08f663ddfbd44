// Package presencetest is the contract suite every [presence.Presence] must
// pass:
//
//	presencetest.Run(t, func(t *testing.T) presence.Presence { return presence.NewMemory() })
//
// It sees one node; behaviour across nodes (a crashed node's entries
// expiring) is tested by the Redis implementation's own tests.
package presencetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anchat/realtime/presence"
)

// Run runs the suite. newPresence is called once per subtest and must return
// an empty presence, alone in its cluster (for Redis: a fresh key prefix);
// the suite closes it.
func Run(t *testing.T, newPresence func(t *testing.T) presence.Presence) {
	setup := func(t *testing.T) (presence.Presence, context.Context) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		t.Cleanup(cancel)
		p := newPresence(t)
		t.Cleanup(func() { _ = p.Close() })
		return p, ctx
	}

	t.Run("AcquireUpToMax", func(t *testing.T) {
		p, ctx := setup(t)
		for i := range 3 {
			if !acquire(t, p, ctx, "alice", fmt.Sprint("c", i), 3) {
				t.Fatalf("connection %d refused under the cap", i+1)
			}
		}
		if acquire(t, p, ctx, "alice", "c3", 3) {
			t.Fatal("fourth connection accepted with max 3")
		}
		if !acquire(t, p, ctx, "alice", "c0", 3) {
			t.Fatal("re-acquiring a held entry refused")
		}
		if !acquire(t, p, ctx, "alice", "c3", 4) {
			t.Fatal("refused under a raised cap")
		}
		if acquire(t, p, ctx, "bob", "c0", 0) {
			t.Fatal("accepted with max 0")
		}
	})

	t.Run("CapHoldsUnderConcurrency", func(t *testing.T) {
		p, ctx := setup(t)
		var ok atomic.Int32
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				got, err := p.Acquire(ctx, "alice", fmt.Sprint("conn-", i), 3)
				if err != nil {
					t.Error(err)
				}
				if got {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		if n := ok.Load(); n != 3 {
			t.Fatalf("%d of 20 concurrent acquisitions succeeded, want 3", n)
		}
		wantStats(t, p, ctx, presence.Stats{Nodes: 1, Connections: 3, Users: 1})
	})

	t.Run("ReleaseFreesAtOnce", func(t *testing.T) {
		p, ctx := setup(t)
		for i := range 3 {
			acquire(t, p, ctx, "alice", fmt.Sprint("c", i), 3)
		}
		release(t, p, ctx, "alice", "c1")
		if !acquire(t, p, ctx, "alice", "c9", 3) {
			t.Fatal("slot not freed by Release")
		}
		if acquire(t, p, ctx, "alice", "c1", 3) {
			t.Fatal("released entry came back over the cap")
		}
	})

	t.Run("ReleaseUnknownIsFine", func(t *testing.T) {
		p, ctx := setup(t)
		release(t, p, ctx, "nobody", "nothing")
		acquire(t, p, ctx, "alice", "c0", 3)
		release(t, p, ctx, "alice", "other")
		release(t, p, ctx, "alice", "c0")
		release(t, p, ctx, "alice", "c0")
		wantStats(t, p, ctx, presence.Stats{Nodes: 1})
	})

	t.Run("UsersIndependent", func(t *testing.T) {
		p, ctx := setup(t)
		acquire(t, p, ctx, "alice", "c0", 1)
		if !acquire(t, p, ctx, "bob", "c0", 1) {
			t.Fatal("bob refused because of alice")
		}
		if !acquire(t, p, ctx, "alice}", "c0", 1) {
			t.Fatal(`"alice}" refused because of alice`)
		}
		if acquire(t, p, ctx, "alice", "c1", 1) {
			t.Fatal("alice over her cap")
		}
	})

	t.Run("StatsCount", func(t *testing.T) {
		p, ctx := setup(t)
		wantStats(t, p, ctx, presence.Stats{Nodes: 1})
		acquire(t, p, ctx, "alice", "a1", 3)
		acquire(t, p, ctx, "alice", "a2", 3)
		acquire(t, p, ctx, "bob", "b1", 3)
		acquire(t, p, ctx, "a|b", "x", 3)
		// Refused attempts count nowhere.
		acquire(t, p, ctx, "carol", "c1", 0)
		acquire(t, p, ctx, "bob", "b2", 1)
		acquire(t, p, ctx, "dave", "d1", 1)
		acquire(t, p, ctx, "dave", "d2", 1)
		if err := p.SetChats(ctx, []string{"general", "random", "general"}); err != nil {
			t.Fatal(err)
		}
		wantStats(t, p, ctx, presence.Stats{Nodes: 1, Connections: 5, Users: 4, Chats: 2})

		release(t, p, ctx, "alice", "a1")
		wantStats(t, p, ctx, presence.Stats{Nodes: 1, Connections: 4, Users: 4, Chats: 2})
		release(t, p, ctx, "alice", "a2")
		release(t, p, ctx, "dave", "d1")
		if err := p.SetChats(ctx, []string{"random"}); err != nil {
			t.Fatal(err)
		}
		wantStats(t, p, ctx, presence.Stats{Nodes: 1, Connections: 2, Users: 2, Chats: 1})
		if err := p.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		wantStats(t, p, ctx, presence.Stats{Nodes: 1, Connections: 2, Users: 2, Chats: 1})
		if err := p.SetChats(ctx, nil); err != nil {
			t.Fatal(err)
		}
		wantStats(t, p, ctx, presence.Stats{Nodes: 1, Connections: 2, Users: 2})
	})

	t.Run("ChurnKeepsStatsExact", func(t *testing.T) {
		p, ctx := setup(t)
		// Several goroutines per user acquire and release, with refusals
		// mixed in; every third acquired entry is kept.
		var wg sync.WaitGroup
		var mu sync.Mutex
		held := map[string]int{} // user → entries kept
		for g := range 12 {
			wg.Go(func() {
				user := fmt.Sprint("u", g%4)
				for i := range 30 {
					conn := fmt.Sprint("g", g, "-", i)
					ok, err := p.Acquire(ctx, user, conn, 2)
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						continue
					}
					if i%3 == 0 {
						mu.Lock()
						held[user]++
						mu.Unlock()
						continue
					}
					if err := p.Release(ctx, user, conn); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		want := presence.Stats{Nodes: 1}
		for u, n := range held {
			if n > 2 {
				t.Fatalf("%s kept %d entries, cap 2", u, n)
			}
			want.Connections += n
			want.Users++
		}
		wantStats(t, p, ctx, want)
	})

	t.Run("LocateListsLiveEntries", func(t *testing.T) {
		p, ctx := setup(t)
		acquire(t, p, ctx, "alice", "c0", 3)
		acquire(t, p, ctx, "alice", "c1", 3)
		acquire(t, p, ctx, "bob", "c2", 3)
		release(t, p, ctx, "alice", "c0")
		got, err := p.Locate(ctx, []string{"alice", "bob", "carol"})
		if err != nil {
			t.Fatalf("Locate: %v", err)
		}
		conns := func(es []presence.Entry) []string {
			var out []string
			for _, e := range es {
				out = append(out, e.Conn)
			}
			slices.Sort(out)
			return out
		}
		if c := conns(got["alice"]); !slices.Equal(c, []string{"c1"}) {
			t.Errorf("alice's entries %v, want [c1] (c0 released)", c)
		}
		if c := conns(got["bob"]); !slices.Equal(c, []string{"c2"}) {
			t.Errorf("bob's entries %v, want [c2]", c)
		}
		if _, ok := got["carol"]; ok {
			t.Errorf("carol holds no entry but Locate returned %v", got["carol"])
		}
		if len(got) != 2 {
			t.Errorf("Locate returned %d users, want 2: %v", len(got), got)
		}
	})

	t.Run("CloseIsIdempotent", func(t *testing.T) {
		p, ctx := setup(t)
		acquire(t, p, ctx, "alice", "c0", 3)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := p.Acquire(ctx, "alice", "c1", 3); !errors.Is(err, presence.ErrClosed) {
			t.Fatalf("Acquire after Close: %v, want ErrClosed", err)
		}
		if _, err := p.Stats(ctx); !errors.Is(err, presence.ErrClosed) {
			t.Fatalf("Stats after Close: %v, want ErrClosed", err)
		}
		if err := p.Refresh(ctx); !errors.Is(err, presence.ErrClosed) {
			t.Fatalf("Refresh after Close: %v, want ErrClosed", err)
		}
		if err := p.Release(ctx, "alice", "c0"); err != nil {
			t.Fatalf("Release after Close: %v, want nil", err)
		}
	})
}

func acquire(t *testing.T, p presence.Presence, ctx context.Context, user, conn string, max int) bool {
	t.Helper()
	ok, err := p.Acquire(ctx, user, conn, max)
	if err != nil {
		t.Fatalf("Acquire(%q, %q, %d): %v", user, conn, max, err)
	}
	return ok
}

func release(t *testing.T, p presence.Presence, ctx context.Context, user, conn string) {
	t.Helper()
	if err := p.Release(ctx, user, conn); err != nil {
		t.Fatalf("Release(%q, %q): %v", user, conn, err)
	}
}

func stats(t *testing.T, p presence.Presence, ctx context.Context) presence.Stats {
	t.Helper()
	st, err := p.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

func wantStats(t *testing.T, p presence.Presence, ctx context.Context, want presence.Stats) {
	t.Helper()
	if got := stats(t, p, ctx); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}
