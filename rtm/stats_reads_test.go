package rtm_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/rtm"
	"github.com/anchat/realtime/rtm/rtmsim"
	"github.com/anchat/realtime/rtm/rtmstatus"
	"github.com/redis/go-redis/v9"
)

// TestRedisFollowerStatsReadsCounts: a node that does not lead counts the
// profiles by state from the counts kept beside the state hash, without
// reading the hash (no HGETALL: its cost would follow the profiles, on
// every node every stats interval), and finds what the leader reports,
// before and after a profile is deleted.
func TestRedisFollowerStatsReadsCounts(t *testing.T) {
	e := newRedisEnv(t, rtmsim.Config{})
	leader := e.start(e.config("n1"))
	eventually(t, 10*time.Second, "n1 leads", leader.IsLeader)
	follower := e.start(e.config("n2"))
	for _, id := range []string{"p1", "p2", "p3"} {
		if err := leader.PutProfile(t.Context(), id, session1); err != nil {
			t.Fatal(err)
		}
	}
	profiles := func(n *node) map[string]int {
		s := must.Get[rtmstatus.Stats](t)(n.Stats(t.Context()))
		if s.IsLeader != (n == leader) {
			t.Fatalf("%s: isLeader %v", n.id, s.IsLeader)
		}
		return s.Profiles
	}
	check := func(connected int) {
		t.Helper()
		eventually(t, 10*time.Second, fmt.Sprint(connected, " profiles connected on the leader"), func() bool {
			return profiles(leader)["connected"] == connected
		})
		want := profiles(leader)
		// The state writes are done before the leader's own view changes
		// back; the follower catches up at once or within moments.
		eventually(t, 5*time.Second, "the follower agrees with the leader", func() bool {
			return maps.Equal(profiles(follower), want)
		})
		redistest.ResetStats(t, e.client)
		for range 5 {
			if got := profiles(follower); !maps.Equal(got, want) {
				t.Fatalf("follower: profiles %v, leader %v", got, want)
			}
		}
		if calls := redistest.CommandCalls(t, e.client); calls["hgetall"] != 0 || calls["hvals"] != 0 || calls["hmget"] != 5 {
			t.Fatalf("5 follower Stats ran %d HGETALL, %d HVALS, %d HMGET; want 5 HMGET of the 3 counts and no hash read whole", calls["hgetall"], calls["hvals"], calls["hmget"])
		}
	}
	check(3)
	if err := follower.DeleteProfile(t.Context(), "p2"); err != nil {
		t.Fatal(err)
	}
	check(2)
}

// TestRedisIdleLeaderDoesNotRereadSessions: with nothing changing, the
// leader checks the sessions' version every ResyncInterval (one GET) and
// rereads the sessions (HGETALL) only on its safety period, once every 12
// intervals; a session stored or deleted without a change signal (as if
// the signal were lost) is still picked up at the next check.
func TestRedisIdleLeaderDoesNotRereadSessions(t *testing.T) {
	e := newRedisEnv(t, rtmsim.Config{})
	cfg := e.config("n1")
	cfg.ResyncInterval = 20 * time.Millisecond
	leader := e.start(cfg)
	eventually(t, 10*time.Second, "n1 leads", leader.IsLeader)
	if err := leader.PutProfile(t.Context(), "p1", session1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "p1 connected", func() bool { return len(openConns(e.sim, "p1")) == 1 })

	redistest.ResetStats(t, e.client)
	time.Sleep(50 * cfg.ResyncInterval)
	calls := redistest.CommandCalls(t, e.client)
	// The leader's recount of the states (every 12 intervals, one script
	// with one ZCARD and one HGETALL of the state hash) is not a reread.
	checks, rereads := calls["get"], calls["hgetall"]-calls["zcard"]
	t.Logf("idle for %v: %d version checks, %d HGETALL", 50*cfg.ResyncInterval, checks, rereads)
	if rereads > 50/12+2 {
		t.Fatalf("the idle leader ran %d HGETALL in ~50 intervals; want at most one per 12 intervals", rereads)
	}
	if checks < 5 || rereads > checks/11+1 {
		t.Fatalf("the idle leader ran %d version checks and %d HGETALL; want a check a tick, a reread per 12", checks, rereads)
	}

	// A put and a delete whose signal was lost: the version alone tells.
	profiles, version := e.prefix+":{rtm}:profiles", e.prefix+":{rtm}:version"
	v := e.client.Incr(t.Context(), version).Val()
	if err := e.client.HSet(t.Context(), profiles, "p2", fmt.Sprintf(`{"version":%d,"session":%s}`, v, session1)).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "p2 connected without a signal", func() bool { return len(openConns(e.sim, "p2")) == 1 })
	if err := e.client.HDel(t.Context(), profiles, "p2").Err(); err != nil {
		t.Fatal(err)
	}
	e.client.Incr(t.Context(), version)
	eventually(t, 10*time.Second, "p2 dropped without a signal", func() bool { return len(openConns(e.sim, "p2")) == 0 })
	if st := must.Get[rtmstatus.Stats](t)(leader.Stats(t.Context())); st.Profiles["connected"] != 1 {
		t.Fatalf("profiles %v, want p1 connected only", st.Profiles)
	}
}

// TestRedisFollowerProfilesReadsOnePage: a node that does not lead lists
// the profiles page by page reading only the page (one script: the page's
// ids, then their states and figures), not the whole state and figures
// hashes for every page; walking the pages gives every profile once, in
// id order, with its state and figures.
func TestRedisFollowerProfilesReadsOnePage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client := srv.Client()
	ctx := t.Context()
	store := newRedisStore(t, client, redistest.Prefix(t))
	const profiles, limit = 1_000, 100
	if err := store.RecountStates(ctx); err != nil { // as the leader does first
		t.Fatal(err)
	}
	figures := map[string]rtm.Figures{}
	for i := range profiles {
		id := fmt.Sprintf("p%04d", profiles-1-i) // stored in reverse order
		if err := store.SetState(ctx, id, rtm.States[i%len(rtm.States)]); err != nil {
			t.Fatal(err)
		}
		figures[id] = rtm.Figures{Reconnects: uint64(i)}
	}
	if err := store.SetFigures(ctx, figures); err != nil {
		t.Fatal(err)
	}
	states := must.Get[map[string]rtm.State](t)(store.States(ctx))

	// Not Run: the bridge has not won the lease, as on any follower.
	b, err := rtm.New(rtm.Config{NodeID: "n1", URL: "ws://127.0.0.1:1/ws", Lease: lease.NewMemory(nil),
		Bus: bus.NewMemory(bus.MemoryConfig{}), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	redistest.ResetStats(t, client)
	var ids []string
	pages := 0
	for after := ""; ; {
		page, next, err := b.Profiles(ctx, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, p := range page {
			if p.State != string(states[p.ProfileID]) || p.Reconnects != figures[p.ProfileID].Reconnects {
				t.Fatalf("%+v: want state %s, %d reconnects", p, states[p.ProfileID], figures[p.ProfileID].Reconnects)
			}
			ids = append(ids, p.ProfileID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(ids) != profiles || !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != profiles {
		t.Fatalf("the pages listed %d profiles (sorted: %v), want each of %d once in id order", len(ids), slices.IsSorted(ids), profiles)
	}
	calls := redistest.CommandCalls(t, client)
	if calls["hgetall"] != 0 || calls["hvals"] != 0 || calls["evalsha"] != int64(pages) {
		t.Fatalf("%d pages ran %d HGETALL, %d HVALS, %d EVALSHA; want one script a page and no hash read whole",
			pages, calls["hgetall"], calls["hvals"], calls["evalsha"])
	}
	if calls["zrangebylex"] != int64(pages) {
		t.Fatalf("%d pages ran %d ZRANGEBYLEX, want one a page", pages, calls["zrangebylex"])
	}
}

// TestRedisStatesPageSurvivesDriftedIds: the sorted set of ids can drift
// from the state hash (an older node writing the hash alone during a
// rolling upgrade): ids without a state do not end a listing early, and
// the leader's recount repairs a drift that leaves the set's size right (a
// missed add plus a missed remove).
func TestRedisStatesPageSurvivesDriftedIds(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client := srv.Client()
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	store := newRedisStore(t, client, prefix)
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	hash, ids := prefix+":{rtm}:state", prefix+":{rtm}:stateids"
	check(store.RecountStates(ctx))
	for _, id := range []string{"a", "c", "y"} {
		check(store.SetState(ctx, id, rtm.StateConnected))
	}
	// Stale ids, a page and more of them, between a and c.
	for _, id := range []string{"b1", "b2", "b3"} {
		check(client.ZAdd(ctx, ids, redis.Z{Member: id}).Err())
	}
	walk := func() []string {
		var got []string
		after := ""
		for range 20 {
			page, more, err := store.StatesPage(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page {
				got = append(got, p.ID)
			}
			if !more {
				return got
			}
			if len(page) == 0 {
				t.Fatalf("an empty page with more after %q: the listing cannot go on (so far %v)", after, got)
			}
			after = page[len(page)-1].ID
		}
		t.Fatalf("listing did not end: %v", got)
		return nil
	}
	if got := walk(); !slices.Equal(got, []string{"a", "c", "y"}) {
		t.Fatalf("listed %v, want [a c y]", got)
	}
	// A missed add and a missed remove: the set's size stays right.
	check(store.RecountStates(ctx))
	check(client.HDel(ctx, hash, "y").Err())
	check(client.HSet(ctx, hash, "x", string(rtm.StateReconnecting)).Err())
	check(store.RecountStates(ctx))
	if got := walk(); !slices.Equal(got, []string{"a", "c", "x"}) {
		t.Fatalf("after the recount, listed %v, want [a c x]", got)
	}
}
