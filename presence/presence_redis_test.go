package presence_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/presence"
	"github.com/anchat/realtime/presence/presencetest"
)

// TestRedis runs the contract on a single Redis and on a Redis Cluster, and
// checks that two nodes' stats add up on both.
func TestRedis(t *testing.T) {
	redistest.OnEachDeployment(t, func(t *testing.T, c redis.UniversalClient) {
		presencetest.Run(t, func(t *testing.T) presence.Presence {
			return newRedis(t, c, presence.RedisConfig{Prefix: redistest.Prefix(t), NodeID: "node-1"})
		})
		t.Run("TwoNodesStats", func(t *testing.T) {
			ctx := ctxFor(t)
			prefix := redistest.Prefix(t)
			a := newRedis(t, c, presence.RedisConfig{Prefix: prefix, NodeID: "a"})
			b := newRedis(t, c, presence.RedisConfig{Prefix: prefix, NodeID: "b"})
			must.Get[bool](t)(a.Acquire(ctx, "alice", "a1", 2))
			must.Get[bool](t)(b.Acquire(ctx, "alice", "b1", 2))
			must.Get[bool](t)(b.Acquire(ctx, "bob", "b2", 2))
			if must.Get[bool](t)(a.Acquire(ctx, "alice", "a2", 2)) {
				t.Fatal("alice over the cap")
			}
			if err := a.SetChats(ctx, []string{"x", "y"}); err != nil {
				t.Fatal(err)
			}
			if err := b.SetChats(ctx, []string{"y", "z"}); err != nil {
				t.Fatal(err)
			}
			if st := must.Get[presence.Stats](t)(a.Stats(ctx)); st != (presence.Stats{Nodes: 2, Connections: 3, Users: 2, Chats: 3}) {
				t.Fatalf("Stats = %+v", st)
			}
			for _, p := range []*presence.Redis{a, b} {
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
}

func newRedis(t testing.TB, c redis.UniversalClient, cfg presence.RedisConfig) *presence.Redis {
	t.Helper()
	return must.Get[*presence.Redis](t)(presence.NewRedis(c, cfg))
}

// twoNodes starts redis-server and two presence nodes on it sharing a
// prefix, "a" and "b", with the entry TTLs given (0: the default).
func twoNodes(t *testing.T, ttlA, ttlB time.Duration) (s *redistest.Server, c *redis.Client, prefix string, a, b *presence.Redis) {
	t.Helper()
	s = redistest.Start(t, redistest.Options{})
	c = s.Client()
	prefix = redistest.Prefix(t)
	a = newRedis(t, c, presence.RedisConfig{Prefix: prefix, NodeID: "a", EntryTTL: ttlA})
	b = newRedis(t, c, presence.RedisConfig{Prefix: prefix, NodeID: "b", EntryTTL: ttlB})
	return s, c, prefix, a, b
}

// holdSlots takes n of user's connection slots on p (connections
// <conn>0...), under the cap, and fails the test if one is refused.
func holdSlots(t *testing.T, p *presence.Redis, user, conn string, n, cap int) {
	t.Helper()
	for i := range n {
		if !must.Get[bool](t)(p.Acquire(ctxFor(t), user, fmt.Sprint(conn, i), cap)) {
			t.Fatalf("%s: connection %s%d refused", user, conn, i)
		}
	}
}

// setChats sets the chats p's node has members in.
func setChats(t *testing.T, p *presence.Redis, chats ...string) {
	t.Helper()
	if err := p.SetChats(ctxFor(t), chats); err != nil {
		t.Fatal(err)
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 20ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// A node that stops refreshing (crashed, no Close) stops counting against
// caps within its entry TTL, and drops out of Stats.
func TestRedisCrashedNodeExpires(t *testing.T) {
	const ttl = time.Second
	_, _, _, a, b := twoNodes(t, ttl, ttl)
	ctx := ctxFor(t)
	t.Cleanup(func() { _ = b.Close() })
	acquired := time.Now()
	holdSlots(t, a, "alice", "a", 3, 3)
	must.Get[bool](t)(a.Acquire(ctx, "bob", "a9", 3))
	setChats(t, a, "general")
	setChats(t, b, "general", "random")
	if must.Get[bool](t)(b.Acquire(ctx, "alice", "b0", 3)) {
		t.Fatal("node b: alice's fourth connection accepted")
	}
	must.Get[bool](t)(b.Acquire(ctx, "bob", "b1", 3))
	if st := must.Get[presence.Stats](t)(b.Stats(ctx)); st != (presence.Stats{Nodes: 2, Connections: 5, Users: 2, Chats: 2}) {
		t.Fatalf("Stats with both nodes = %+v", st)
	}

	// Node a is gone: no Refresh, no Close. Node b keeps refreshing.
	took := eventually(t, ttl+2*time.Second, "node b acquires alice's slot", func() bool {
		if err := b.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		return must.Get[bool](t)(b.Acquire(ctx, "alice", "b0", 3))
	})
	if since := time.Since(acquired); since < ttl-50*time.Millisecond {
		t.Fatalf("slot freed %v after node a's last write, before its TTL %v", since, ttl)
	}
	t.Logf("slot freed after %v of polling", took)
	eventually(t, time.Second, "Stats drops node a", func() bool {
		st := must.Get[presence.Stats](t)(b.Stats(ctx))
		return st == presence.Stats{Nodes: 1, Connections: 2, Users: 2, Chats: 2}
	})
	// b can take alice's remaining two slots, not a fourth.
	for _, conn := range []string{"b2", "b3"} {
		if !must.Get[bool](t)(b.Acquire(ctx, "alice", conn, 3)) {
			t.Fatalf("node b: %s refused", conn)
		}
	}
	if must.Get[bool](t)(b.Acquire(ctx, "alice", "b4", 3)) {
		t.Fatal("node b: alice over the cap")
	}
}

// Close frees the node's slots at once and removes it from Stats.
func TestRedisCloseFreesAtOnce(t *testing.T) {
	_, c, prefix, a, b := twoNodes(t, 0, 0)
	ctx := ctxFor(t)
	holdSlots(t, a, "alice", "a", 3, 3)
	setChats(t, a, "general")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !must.Get[bool](t)(b.Acquire(ctx, "alice", "b0", 3)) {
		t.Fatal("slot not freed by Close")
	}
	if st := must.Get[presence.Stats](t)(b.Stats(ctx)); st != (presence.Stats{Nodes: 1, Connections: 1, Users: 1}) {
		t.Fatalf("Stats after a closed = %+v", st)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	keys := must.Get[[]string](t)(c.Keys(ctx, prefix+":*").Result())
	if slices.ContainsFunc(keys, func(k string) bool { return k != prefix+":{nodes}:live" }) {
		t.Fatalf("keys left after both nodes closed: %q", keys)
	}
}

// A node that stalled past its TTL restores its entries and bookkeeping on
// its next Refresh.
func TestRedisStalledNodeRestores(t *testing.T) {
	const ttl = 300 * time.Millisecond
	_, _, _, a, b := twoNodes(t, ttl, 10*time.Second)
	ctx := ctxFor(t)
	must.Get[bool](t)(a.Acquire(ctx, "alice", "a0", 2))
	setChats(t, a, "general")
	eventually(t, 2*time.Second, "node a expires", func() bool {
		return must.Get[presence.Stats](t)(b.Stats(ctx)).Nodes == 1
	})
	must.Get[bool](t)(b.Acquire(ctx, "alice", "b0", 2))
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if st := must.Get[presence.Stats](t)(b.Stats(ctx)); st != (presence.Stats{Nodes: 2, Connections: 2, Users: 1, Chats: 1}) {
		t.Fatalf("Stats after node a came back = %+v", st)
	}
	if must.Get[bool](t)(b.Acquire(ctx, "alice", "b1", 2)) {
		t.Fatal("alice over the cap after node a restored its entry")
	}
}

// After Redis restarts empty, each node's next Refresh restores its state.
func TestRedisRestartRestores(t *testing.T) {
	s, c, _, a, b := twoNodes(t, 0, 0)
	ctx := ctxFor(t)
	holdSlots(t, a, "alice", "a", 2, 3)
	must.Get[bool](t)(b.Acquire(ctx, "bob", "b0", 3))
	setChats(t, a, "general")
	s.Restart()
	if err := redistest.WaitReady(ctx, c); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*presence.Redis{a, b} {
		if err := p.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st := must.Get[presence.Stats](t)(b.Stats(ctx)); st != (presence.Stats{Nodes: 2, Connections: 3, Users: 2, Chats: 1}) {
		t.Fatalf("Stats after restart = %+v", st)
	}
	must.Get[bool](t)(b.Acquire(ctx, "alice", "b1", 3))
	if must.Get[bool](t)(b.Acquire(ctx, "alice", "b2", 3)) {
		t.Fatal("alice over the cap: node a's entries were not restored")
	}
}

func TestRedisKeyLayout(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.Client()
	ctx := ctxFor(t)
	p := newRedis(t, c, presence.RedisConfig{NodeID: "n1"})
	must.Get[bool](t)(p.Acquire(ctx, "alice", "c1", 3))
	if err := p.SetChats(ctx, []string{"general"}); err != nil {
		t.Fatal(err)
	}
	must.Get[presence.Stats](t)(p.Stats(ctx))
	keys := must.Get[[]string](t)(c.Keys(ctx, "*").Result())
	slices.Sort(keys)
	want := []string{
		"rt:{nodes}:live", "rt:{nodes}:n1:alive", "rt:{nodes}:n1:chats",
		"rt:{nodes}:n1:conns", "rt:{nodes}:n1:usercounts", "rt:{user:alice}:conns",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys = %q, want %q", keys, want)
	}
	if m := must.Get[[]string](t)(c.ZRange(ctx, "rt:{user:alice}:conns", 0, -1).Result()); !slices.Equal(m, []string{"n1|c1"}) {
		t.Fatalf("alice's entries = %q", m)
	}
	for _, k := range want[1:] {
		if ttl := c.PTTL(ctx, k).Val(); ttl <= 0 || ttl > presence.DefaultEntryTTL {
			t.Errorf("%s: PTTL %v, want (0, %v]", k, ttl, presence.DefaultEntryTTL)
		}
	}
}

func TestRedisRoundTrips(t *testing.T) {
	c := redistest.Client(t)
	ctx := ctxFor(t)
	p := newRedis(t, c, presence.RedisConfig{Prefix: redistest.Prefix(t), NodeID: "n1"})
	t.Cleanup(func() { _ = p.Close() })
	// Warm up: registers the node and loads the scripts.
	must.Get[bool](t)(p.Acquire(ctx, "warm", "w", 1))
	must.Get[bool](t)(p.Acquire(ctx, "warm", "w2", 1))
	must.Get[presence.Stats](t)(p.Stats(ctx))
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	redistest.CountRoundTrips(c).Expect(t, []redistest.Call{
		{Name: "Acquire", Want: 1, Do: func() error { _, err := p.Acquire(ctx, "alice", "c1", 1); return err }},
		{Name: "Acquire refused", Want: 2, Do: func() error { _, err := p.Acquire(ctx, "alice", "c2", 1); return err }},
		{Name: "Acquire after a refusal", Want: 1, Do: func() error { _, err := p.Acquire(ctx, "alice", "c1", 1); return err }},
		{Name: "Release", Want: 1, Do: func() error { return p.Release(ctx, "alice", "c1") }},
		{Name: "SetChats", Want: 1, Do: func() error { return p.SetChats(ctx, []string{"a", "b"}) }},
		{Name: "Refresh", Want: 1, Do: func() error { return p.Refresh(ctx) }},
		{Name: "Stats", Want: 2, Do: func() error { _, err := p.Stats(ctx); return err }},
	})
}

// After SCRIPT FLUSH the scripts are sent again; nothing runs twice.
func TestRedisScriptFlush(t *testing.T) {
	c := redistest.Client(t)
	ctx := ctxFor(t)
	p := newRedis(t, c, presence.RedisConfig{Prefix: redistest.Prefix(t), NodeID: "n1"})
	must.Get[bool](t)(p.Acquire(ctx, "alice", "c1", 2))
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if !must.Get[bool](t)(p.Acquire(ctx, "alice", "c2", 2)) {
		t.Fatal("acquire after SCRIPT FLUSH refused")
	}
	if must.Get[bool](t)(p.Acquire(ctx, "alice", "c3", 2)) {
		t.Fatal("over the cap")
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if st := must.Get[presence.Stats](t)(p.Stats(ctx)); st != (presence.Stats{Nodes: 1, Connections: 2, Users: 1}) {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestRedisUnavailable(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.FailFastClient()
	ctx := ctxFor(t)
	p := newRedis(t, c, presence.RedisConfig{Prefix: redistest.Prefix(t), NodeID: "n1"})
	must.Get[bool](t)(p.Acquire(ctx, "alice", "c1", 3))
	s.Kill()
	calls := map[string]func() error{
		"Acquire":  func() error { _, err := p.Acquire(ctx, "alice", "c2", 3); return err },
		"Release":  func() error { return p.Release(ctx, "alice", "c1") },
		"SetChats": func() error { return p.SetChats(ctx, []string{"x"}) },
		"Refresh":  func() error { return p.Refresh(ctx) },
		"Stats":    func() error { _, err := p.Stats(ctx); return err },
	}
	redistest.ExpectErr(t, presence.ErrUnavailable, "with Redis down", calls)
	// Back up (empty): the node's state is rewritten, the failed calls'
	// leftovers are undone.
	s.Restart()
	if err := redistest.WaitReady(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if st := must.Get[presence.Stats](t)(p.Stats(ctx)); st != (presence.Stats{Nodes: 1, Chats: 1}) {
		t.Fatalf("Stats after recovery = %+v, want 1 node, 1 chat", st)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRedisBadConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for name, cfg := range map[string]presence.RedisConfig{
		"no node ID":     {},
		"node ID with |": {NodeID: "a|b"},
		"node ID with {": {NodeID: "a{b"},
		"prefix with }":  {NodeID: "a", Prefix: "x}"},
		"TTL too short":  {NodeID: "a", EntryTTL: time.Millisecond},
		"negative TTL":   {NodeID: "a", EntryTTL: -time.Second},
	} {
		if _, err := presence.NewRedis(c, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := presence.NewRedis(nil, presence.RedisConfig{NodeID: "a"}); err == nil {
		t.Error("nil client accepted")
	}
}

func BenchmarkRedisAcquireRelease(b *testing.B) {
	c := redistest.Client(b)
	ctx := context.Background()
	p := newRedis(b, c, presence.RedisConfig{Prefix: redistest.Prefix(b), NodeID: "n1"})
	b.Cleanup(func() { _ = p.Close() })
	if _, err := p.Acquire(ctx, "warm", "w", 1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ok, err := p.Acquire(ctx, "alice", "conn-1", 3)
		if err != nil || !ok {
			b.Fatalf("Acquire: %v %v", ok, err)
		}
		if err := p.Release(ctx, "alice", "conn-1"); err != nil {
			b.Fatal(err)
		}
	}
}

// Locate names the node of each entry and leaves out those of a node that
// stopped refreshing once they expire.
func TestRedisLocateAcrossNodes(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.Client()
	ctx := ctxFor(t)
	prefix := redistest.Prefix(t)
	const ttl = 500 * time.Millisecond
	a := newRedis(t, c, presence.RedisConfig{Prefix: prefix, NodeID: "a", EntryTTL: ttl})
	b := newRedis(t, c, presence.RedisConfig{Prefix: prefix, NodeID: "b", EntryTTL: 10 * time.Second})
	t.Cleanup(func() { _ = b.Close() })
	must.Get[bool](t)(a.Acquire(ctx, "alice", "a1", 3))
	must.Get[bool](t)(b.Acquire(ctx, "alice", "b1", 3))
	got := must.Get[map[string][]presence.Entry](t)(b.Locate(ctx, []string{"alice"}))
	want := []presence.Entry{{Node: "a", Conn: "a1"}, {Node: "b", Conn: "b1"}}
	slices.SortFunc(got["alice"], func(x, y presence.Entry) int { return strings.Compare(x.Node, y.Node) })
	if !slices.Equal(got["alice"], want) {
		t.Fatalf("Locate(alice) = %v, want %v", got["alice"], want)
	}
	// Node a stops refreshing: its entry drops out after its TTL.
	eventually(t, ttl+3*time.Second, "a's entry expires from Locate", func() bool {
		got := must.Get[map[string][]presence.Entry](t)(b.Locate(ctx, []string{"alice"}))
		return slices.Equal(got["alice"], []presence.Entry{{Node: "b", Conn: "b1"}})
	})
	_ = a.Close()
}

// TestRedisStatsScansOncePerWindow: with a StatsMaxAge, many nodes asking
// for Stats, concurrently and repeatedly, cost one scan of the nodes' sets
// per window in the whole cluster (counted by the server: one SUNIONSTORE
// and one HKEYS per live node a scan), and all get the same exact figures.
// Once the window is over, the next Stats scans again and sees what changed.
func TestRedisStatsScansOncePerWindow(t *testing.T) {
	redistest.OnEachDeployment(t, func(t *testing.T, c redis.UniversalClient) {
		const nodes, calls = 6, 5
		const maxAge = 2 * time.Second
		ctx := ctxFor(t)
		prefix := redistest.Prefix(t)
		ps := make([]*presence.Redis, nodes)
		for i := range ps {
			ps[i] = newRedis(t, c, presence.RedisConfig{Prefix: prefix, NodeID: fmt.Sprint("n", i), StatsMaxAge: maxAge})
			t.Cleanup(func() { _ = ps[i].Close() })
			holdSlots(t, ps[i], fmt.Sprint("user", i), "c", 2, 5)
			holdSlots(t, ps[i], "shared", fmt.Sprint("n", i, "-"), 1, nodes)
			setChats(t, ps[i], "general", fmt.Sprint("chat", i))
		}
		want := presence.Stats{Nodes: nodes, Connections: 3 * nodes, Users: nodes + 1, Chats: nodes + 1}

		scans := func() (sunionstore, hkeys int64) {
			calls := redistest.CommandCalls(t, c)
			return calls["sunionstore"], calls["hkeys"]
		}
		// Let the cache of a first Stats expire, so the round below starts
		// with none, then count from there.
		must.Get[presence.Stats](t)(ps[0].Stats(ctx))
		time.Sleep(maxAge + 100*time.Millisecond)
		redistest.ResetStats(t, c)
		start := time.Now()
		var wg sync.WaitGroup
		got := make(chan presence.Stats, nodes*calls)
		for _, p := range ps {
			wg.Go(func() {
				for range calls {
					st, err := p.Stats(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					got <- st
				}
			})
		}
		wg.Wait()
		close(got)
		if time.Since(start) >= maxAge {
			t.Skipf("the round took %v, longer than the window %v: too loaded to count", time.Since(start), maxAge)
		}
		for st := range got {
			if st != want {
				t.Fatalf("Stats = %+v, want %+v", st, want)
			}
		}
		if u, h := scans(); u != 1 || h != nodes {
			t.Fatalf("%d nodes × %d Stats ran %d SUNIONSTORE and %d HKEYS, want one scan (1 and %d)", nodes, calls, u, h, nodes)
		}
		if time.Since(start) < maxAge/2 { // the cache is still fresh
			redistest.CountRoundTrips(c).Expect(t, []redistest.Call{
				{Name: "cached Stats", Want: 1, Do: func() error { _, err := ps[2].Stats(ctx); return err }},
			})
		}

		// A change shows once the window is over.
		holdSlots(t, ps[0], "late", "c", 1, 5)
		want.Connections++
		want.Users++
		eventually(t, 5*time.Second, "Stats sees the new user", func() bool {
			return must.Get[presence.Stats](t)(ps[1].Stats(ctx)) == want
		})
		if u, _ := scans(); u != 2 {
			t.Fatalf("after the window: %d scans, want 2", u)
		}
	})
}
