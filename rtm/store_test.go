package rtm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/internal/testclock"
	"github.com/anchat/realtime/rtm"
)

// storeContract is the behaviour both stores share. advance moves the
// store's clock (real sleep for Redis).
func storeContract(t *testing.T, newStore func(t *testing.T) (rtm.Store, func(time.Duration))) {
	t.Run("sessions", func(t *testing.T) {
		s, _ := newStore(t)
		ctx := t.Context()
		if all, err := s.Sessions(ctx); err != nil || len(all) != 0 {
			t.Fatalf("empty store: %v %v", all, err)
		}
		if err := s.PutSession(ctx, "p1", json.RawMessage(`{"cookies":{"a":"1"}}`)); err != nil {
			t.Fatal(err)
		}
		if err := s.PutSession(ctx, "p2", json.RawMessage(`{"cookies":"b=2"}`)); err != nil {
			t.Fatal(err)
		}
		all, err := s.Sessions(ctx)
		if err != nil || len(all) != 2 || string(all["p1"].Data) != `{"cookies":{"a":"1"}}` || string(all["p2"].Data) != `{"cookies":"b=2"}` {
			t.Fatalf("Sessions = %v, %v", all, err)
		}
		v1 := all["p1"].Version
		if v1 <= 0 || all["p2"].Version <= v1 {
			t.Fatalf("versions %d, %d: want increasing and positive", v1, all["p2"].Version)
		}
		// Replacing, even with the same data, takes a new version.
		if err := s.PutSession(ctx, "p1", json.RawMessage(`{"cookies":{"a":"1"}}`)); err != nil {
			t.Fatal(err)
		}
		all, _ = s.Sessions(ctx)
		if all["p1"].Version <= all["p2"].Version {
			t.Fatalf("replaced p1 has version %d, not above %d", all["p1"].Version, all["p2"].Version)
		}
		if err := s.SetState(ctx, "p1", rtm.StateConnected); err != nil {
			t.Fatal(err)
		}
		if err := s.SetFigures(ctx, map[string]rtm.Figures{"p1": {Reconnects: 1}}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSession(ctx, "p1"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSession(ctx, "unknown"); err != nil {
			t.Fatalf("deleting an unknown profile: %v", err)
		}
		all, _ = s.Sessions(ctx)
		if _, ok := all["p1"]; ok || len(all) != 1 {
			t.Fatalf("after delete: %v", all)
		}
		if st, _ := s.States(ctx); len(st) != 0 {
			t.Fatalf("delete kept the state: %v", st)
		}
		if f, _ := s.Figures(ctx); len(f) != 0 {
			t.Fatalf("delete kept the figures: %v", f)
		}
		if err := s.PutSession(ctx, "bad id", json.RawMessage(`{}`)); !errors.Is(err, rtm.ErrBadProfileID) {
			t.Fatalf("bad id: %v", err)
		}
	})
	t.Run("states", func(t *testing.T) {
		s, _ := newStore(t)
		ctx := t.Context()
		for id, st := range map[string]rtm.State{"p1": rtm.StateConnected, "p2": rtm.StateReconnecting, "p3": rtm.StateSessionExpired} {
			if err := s.SetState(ctx, id, st); err != nil {
				t.Fatal(err)
			}
		}
		_ = s.SetState(ctx, "p2", rtm.StateConnected)
		_ = s.DeleteState(ctx, "p3")
		st, err := s.States(ctx)
		if err != nil || len(st) != 2 || st["p1"] != rtm.StateConnected || st["p2"] != rtm.StateConnected {
			t.Fatalf("States = %v, %v", st, err)
		}
		// StatesOf: only the asked profiles that have a state, duplicates
		// folded; none asked, none read.
		st, err = s.StatesOf(ctx, []string{"p2", "p3", "p9", "p2"})
		if err != nil || len(st) != 1 || st["p2"] != rtm.StateConnected {
			t.Fatalf("StatesOf(p2, p3, p9, p2) = %v, %v; want p2 connected", st, err)
		}
		if st, err = s.StatesOf(ctx, nil); err != nil || st == nil || len(st) != 0 {
			t.Fatalf("StatesOf(nil) = %#v, %v; want an empty map", st, err)
		}
	})
	t.Run("sessionsVersion", func(t *testing.T) {
		s, _ := newStore(t)
		ctx := t.Context()
		v0 := must.Get[int64](t)(s.SessionsVersion(ctx))
		if err := s.PutSession(ctx, "p1", session1); err != nil {
			t.Fatal(err)
		}
		v1 := must.Get[int64](t)(s.SessionsVersion(ctx))
		if v1 == v0 {
			t.Fatalf("version %d unchanged by PutSession", v1)
		}
		if v := must.Get[int64](t)(s.SessionsVersion(ctx)); v != v1 {
			t.Fatalf("version moved from %d to %d without a change", v1, v)
		}
		_ = s.SetState(ctx, "p1", rtm.StateConnected)
		_ = s.SetFigures(ctx, map[string]rtm.Figures{"p1": {Reconnects: 1}})
		if v := must.Get[int64](t)(s.SessionsVersion(ctx)); v != v1 {
			t.Fatalf("version moved from %d to %d on a state or figures write", v1, v)
		}
		if err := s.DeleteSession(ctx, "p1"); err != nil {
			t.Fatal(err)
		}
		if v := must.Get[int64](t)(s.SessionsVersion(ctx)); v == v1 {
			t.Fatalf("version %d unchanged by DeleteSession", v)
		}
	})
	t.Run("stateCounts", func(t *testing.T) {
		s, _ := newStore(t)
		ctx := t.Context()
		want := func(when string) {
			t.Helper()
			states := must.Get[map[string]rtm.State](t)(s.States(ctx))
			counted := map[rtm.State]int{}
			for _, st := range states {
				counted[st]++
			}
			got := must.Get[map[rtm.State]int](t)(s.StateCounts(ctx))
			if !maps.Equal(got, counted) {
				t.Fatalf("%s: StateCounts = %v, the states %v count %v", when, got, states, counted)
			}
		}
		want("empty")
		_ = s.SetState(ctx, "p1", rtm.StateConnected)
		_ = s.SetState(ctx, "p2", rtm.StateReconnecting)
		want("before a recount")
		if err := s.RecountStates(ctx); err != nil {
			t.Fatal(err)
		}
		want("after a recount")
		_ = s.SetState(ctx, "p3", rtm.StateReconnecting)
		_ = s.SetState(ctx, "p2", rtm.StateConnected)
		_ = s.SetState(ctx, "p2", rtm.StateConnected) // unchanged: counted once
		_ = s.SetState(ctx, "p4", rtm.StateSessionExpired)
		want("after state changes")
		_ = s.DeleteState(ctx, "p4")
		_ = s.DeleteState(ctx, "p9") // none: nothing to uncount
		want("after DeleteState")
		if err := s.PutSession(ctx, "p3", session1); err != nil {
			t.Fatal(err)
		}
		_ = s.DeleteSession(ctx, "p3")
		_ = s.DeleteSession(ctx, "p8")
		want("after DeleteSession")
		if got := must.Get[map[rtm.State]int](t)(s.StateCounts(ctx)); got[rtm.StateConnected] != 2 || len(got) != 1 {
			t.Fatalf("StateCounts = %v, want 2 connected only", got)
		}
	})
	t.Run("statesPage", func(t *testing.T) {
		s, _ := newStore(t)
		ctx := t.Context()
		since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		walk := func(when string, limit int, want []string) {
			t.Helper()
			var got []string
			after := ""
			for {
				page, more, err := s.StatesPage(ctx, after, limit)
				if err != nil {
					t.Fatalf("%s: StatesPage(%q, %d): %v", when, after, limit, err)
				}
				if len(page) > limit || more && len(page) != limit {
					t.Fatalf("%s: page of %d (more %v), limit %d", when, len(page), more, limit)
				}
				for _, p := range page {
					got = append(got, fmt.Sprintf("%s=%s/%d", p.ID, p.State, p.Figures.Reconnects))
				}
				if !more {
					break
				}
				after = page[len(page)-1].ID
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: pages of %d give %q, want %q", when, limit, got, want)
			}
		}
		walk("empty", 2, nil)
		_ = s.SetState(ctx, "b", rtm.StateConnected)
		_ = s.SetState(ctx, "a", rtm.StateReconnecting)
		_ = s.SetFigures(ctx, map[string]rtm.Figures{"a": {Since: since, Reconnects: 3}})
		walk("before a recount", 1, []string{"a=reconnecting/3", "b=connected/0"})
		if err := s.RecountStates(ctx); err != nil {
			t.Fatal(err)
		}
		walk("after a recount", 1, []string{"a=reconnecting/3", "b=connected/0"})
		for _, id := range []string{"c", "B", "a-1", "ab"} {
			_ = s.SetState(ctx, id, rtm.StateSessionExpired)
		}
		_ = s.SetState(ctx, "b", rtm.StateReconnecting)
		_ = s.DeleteState(ctx, "ab")
		_ = s.PutSession(ctx, "c", session1)
		_ = s.DeleteSession(ctx, "c")
		want := []string{"B=session_expired/0", "a=reconnecting/3", "a-1=session_expired/0", "b=reconnecting/0"}
		for _, limit := range []int{1, 2, 3, 4, 100} {
			walk("after changes", limit, want)
		}
		if page, more, err := s.StatesPage(ctx, "a-0", 1); err != nil || more != true || len(page) != 1 || page[0].ID != "a-1" {
			t.Fatalf("StatesPage after an id not stored: %+v %v %v", page, more, err)
		}
		if _, _, err := s.StatesPage(ctx, "", 0); err == nil {
			t.Fatal("StatesPage with limit 0: no error")
		}
	})
	t.Run("figures", func(t *testing.T) {
		s, _ := newStore(t)
		ctx := t.Context()
		since := time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)
		if err := s.SetFigures(ctx, map[string]rtm.Figures{
			"p1": {Since: since, LastEventAt: since.Add(time.Second), Reconnects: 2},
			"p2": {Since: since},
			"p3": {Since: since, Reconnects: 9},
		}); err != nil {
			t.Fatal(err)
		}
		// A later call replaces the profiles it names and keeps the others.
		if err := s.SetFigures(ctx, map[string]rtm.Figures{"p2": {Since: since, Reconnects: 1}}); err != nil {
			t.Fatal(err)
		}
		_ = s.SetState(ctx, "p3", rtm.StateConnected)
		if err := s.DeleteState(ctx, "p3"); err != nil {
			t.Fatal(err)
		}
		got, err := s.Figures(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]rtm.Figures{
			"p1": {Since: since, LastEventAt: since.Add(time.Second), Reconnects: 2},
			"p2": {Since: since, Reconnects: 1},
		}
		if len(got) != len(want) {
			t.Fatalf("Figures = %v, want %v", got, want)
		}
		for id, w := range want {
			g := got[id]
			if !g.Since.Equal(w.Since) || !g.LastEventAt.Equal(w.LastEventAt) || g.Reconnects != w.Reconnects {
				t.Errorf("%s: %+v, want %+v", id, g, w)
			}
		}
	})
	t.Run("seen", func(t *testing.T) {
		s, advance := newStore(t)
		ctx := t.Context()
		ttl := 300 * time.Millisecond
		for i, want := range []bool{true, false, false} {
			first, err := s.MarkSeen(ctx, "1:p:e1", ttl)
			if err != nil || first != want {
				t.Fatalf("MarkSeen #%d = %v, %v; want %v", i, first, err, want)
			}
		}
		if first, _ := s.MarkSeen(ctx, "1:p:e2", ttl); !first {
			t.Fatal("another key reported seen")
		}
		advance(ttl + 100*time.Millisecond)
		if first, _ := s.MarkSeen(ctx, "1:p:e1", ttl); !first {
			t.Fatal("key still seen after its ttl")
		}
	})
	t.Run("watch", func(t *testing.T) {
		a, _ := newStore(t)
		ctx, cancel := context.WithCancel(t.Context())
		w := a.Watch(ctx)
		// Redis: the subscription's confirmation signals once; drain it.
		drain := func() {
			for {
				select {
				case <-w:
				case <-time.After(200 * time.Millisecond):
					return
				}
			}
		}
		drain()
		expect := func(what string, do func() error) {
			t.Helper()
			if err := do(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-w:
			case <-time.After(2 * time.Second):
				t.Fatalf("no signal after %s", what)
			}
			drain()
		}
		expect("put", func() error { return a.PutSession(ctx, "p1", json.RawMessage(`{"cookies":"a=1"}`)) })
		expect("delete", func() error { return a.DeleteSession(ctx, "p1") })
		expect("signal", func() error { return a.Signal(ctx) })
		cancel()
		select {
		case _, ok := <-w:
			for ok {
				_, ok = <-w
			}
		case <-time.After(2 * time.Second):
			t.Fatal("watch channel not closed after ctx end")
		}
	})
}

func TestMemoryStore(t *testing.T) {
	storeContract(t, func(t *testing.T) (rtm.Store, func(time.Duration)) {
		c := testclock.Real()
		return rtm.NewMemoryStore(c.Now), c.Advance
	})
}

// TestRedisStore runs the store contract on a single Redis and on a Redis
// Cluster client (a one-node cluster: slot rules hold as on a real one).
func TestRedisStore(t *testing.T) {
	redistest.OnEachDeployment(t, func(t *testing.T, client redis.UniversalClient) {
		storeContract(t, func(t *testing.T) (rtm.Store, func(time.Duration)) {
			return newRedisStore(t, client, redistest.Prefix(t)), time.Sleep
		})
	})
}

func newRedisStore(t testing.TB, c redis.UniversalClient, prefix string) *rtm.RedisStore {
	t.Helper()
	return must.Get[*rtm.RedisStore](t)(rtm.NewRedisStore(c, rtm.RedisStoreConfig{Prefix: prefix}))
}

func TestRedisStoreLayout(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client()
	ctx := t.Context()
	s := newRedisStore(t, c, "")
	if err := s.PutSession(ctx, "p1", json.RawMessage(`{"cookies":"a=1"}`)); err != nil {
		t.Fatal(err)
	}
	if v := c.HGet(ctx, "rt:{rtm}:profiles", "p1").Val(); v != `{"version":1,"session":{"cookies":"a=1"}}` {
		t.Fatalf("profiles hash: %q", v)
	}
	_ = s.SetState(ctx, "p1", rtm.StateConnected)
	if v := c.HGet(ctx, "rt:{rtm}:state", "p1").Val(); v != "connected" {
		t.Fatalf("state hash: %q", v)
	}
	if err := s.RecountStates(ctx); err != nil {
		t.Fatal(err)
	}
	if v := c.HGetAll(ctx, "rt:{rtm}:statecounts").Val(); len(v) != 3 || v["connected"] != "1" || v["reconnecting"] != "0" {
		t.Fatalf("state counts hash: %v", v)
	}
	if v := c.ZRange(ctx, "rt:{rtm}:stateids", 0, -1).Val(); !slices.Equal(v, []string{"p1"}) {
		t.Fatalf("state ids: %q", v)
	}
	if _, err := s.MarkSeen(ctx, "2:p1:e1", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if ttl := c.TTL(ctx, "rt:rtm:seen:2:p1:e1").Val(); ttl < 299*time.Second || ttl > 300*time.Second {
		t.Fatalf("seen key ttl %v, want 300s", ttl)
	}
	if _, err := rtm.NewRedisStore(c, rtm.RedisStoreConfig{Prefix: "a{b"}); err == nil {
		t.Fatal("prefix with a brace accepted")
	}
}

func TestRedisStoreUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.FailFastClient()
	s := newRedisStore(t, c, redistest.Prefix(t))
	srv.Kill()
	err := s.PutSession(t.Context(), "p1", json.RawMessage(`{"cookies":"a=1"}`))
	if !errors.Is(err, rtm.ErrUnavailable) || !errors.Is(err, bus.ErrUnavailable) {
		t.Fatalf("PutSession with Redis down: %v; want ErrUnavailable (and bus.ErrUnavailable)", err)
	}
	if _, err := s.StatesOf(t.Context(), []string{"p1"}); !errors.Is(err, rtm.ErrUnavailable) {
		t.Fatalf("StatesOf with Redis down: %v; want ErrUnavailable", err)
	}
}
