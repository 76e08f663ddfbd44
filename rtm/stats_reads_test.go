package rtm_test

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/rtm/rtmsim"
	"github.com/anchat/realtime/rtm/rtmstatus"
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
	checks, rereads := calls["get"], calls["hgetall"]
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
