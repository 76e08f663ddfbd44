package rtm_test

import (
	"encoding/json"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/anchat/realtime/internal/testclock"
	"github.com/anchat/realtime/rtm"
	"github.com/anchat/realtime/rtm/rtmsim"
)

// seqRand returns the values in turn (the last one repeats).
func seqRand(vals ...float64) func() float64 {
	var mu sync.Mutex
	i := 0
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		v := vals[min(i, len(vals)-1)]
		i++
		return v
	}
}

// TestBackoff: the simulator drops the connection again and again; each
// reconnect attempt comes after exactly the drawn delay (full jitter with an
// injected random source: r·min(max, base·2^(n-1))), rtm_status reports
// reconnecting with that delay and connected again, and a connection that
// stayed up StableAfter (by the injected clock) resets the sequence.
func TestBackoff(t *testing.T) {
	const (
		base  = 100 * time.Millisecond
		maxD  = 400 * time.Millisecond
		slack = 250 * time.Millisecond // notice the drop, dial, upgrade (under -race)
	)
	e := newMemoryEnv(t, rtmsim.Config{})
	clock := testclock.Real()
	cfg := e.config("n1")
	cfg.LeaseTTL = time.Minute // the clock jump below must not touch the lease
	cfg.Now = clock.Now
	rands := []float64{1, 1, 1, 0.5, 1, 1}
	cfg.Backoff = rtm.Backoff{Base: base, Max: maxD, StableAfter: 10 * time.Second, Rand: seqRand(rands...)}
	n := e.start(cfg)
	o := e.observe(n.Bridge, "p1")
	if err := n.PutProfile(t.Context(), "p1", session1); err != nil {
		t.Fatal(err)
	}
	// Consecutive failures n=1..5: caps 100, 200, 400, 400, 400 ms.
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	drop := func(i int) {
		t.Helper()
		eventually(t, 5*time.Second, "connection", func() bool { return len(openConns(e.sim, "p1")) == 1 })
		from := len(o.all())
		if e.sim.Drop("p1") != 1 {
			t.Fatalf("drop %d: nothing dropped", i)
		}
		g := o.wait(t, from, "rtm_status reconnecting", isStatus("p1", "reconnecting"))
		if ms, _ := g.data["retryInMs"].(float64); int64(ms) != want[i].Milliseconds() {
			t.Errorf("drop %d: retryInMs %v, want %d", i, g.data["retryInMs"], want[i].Milliseconds())
		}
		o.wait(t, from, "rtm_status connected", isStatus("p1", "connected"))
	}
	for i := range want {
		drop(i)
	}
	conns := e.sim.Connections("p1")
	if len(conns) != len(want)+1 {
		t.Fatalf("%d connection attempts, want %d", len(conns), len(want)+1)
	}
	for i, w := range want {
		gap := conns[i+1].Time.Sub(*conns[i].ClosedAt)
		t.Logf("attempt %d: %v after the drop (delay %v)", i+2, gap, w)
		if gap < w || gap > w+slack {
			t.Errorf("attempt %d came %v after the drop, want %v (+%v)", i+2, gap, w, slack)
		}
	}

	// Stable for StableAfter (injected clock): the next delay is drawn from
	// [0, base] again.
	clock.Advance(11 * time.Second)
	want = append(want, base)
	drop(len(want) - 1)
	conns = e.sim.Connections("p1")
	if gap := conns[len(conns)-1].Time.Sub(*conns[len(conns)-2].ClosedAt); gap < base || gap > base+slack {
		t.Errorf("after a stable connection the reconnect came %v after the drop, want %v", gap, base)
	}
	if s, _ := n.Stats(t.Context()); s.Reconnects != uint64(len(want)) || s.Profiles["connected"] != 1 {
		t.Errorf("stats %+v, want %d reconnects and p1 connected", s, len(want))
	}
}

// TestConnectFailures: a refused upgrade (503) is retried with backoff and
// reported as reconnecting; it is not an expired session.
func TestConnectFailures(t *testing.T) {
	e := newMemoryEnv(t, rtmsim.Config{})
	e.sim.SetRefuse("p1", 503)
	cfg := e.config("n1")
	cfg.Backoff = rtm.Backoff{Base: 50 * time.Millisecond, Max: 100 * time.Millisecond, Rand: seqRand(1)}
	n := e.start(cfg)
	o := e.observe(n.Bridge, "p1")
	if err := n.PutProfile(t.Context(), "p1", session1); err != nil {
		t.Fatal(err)
	}
	o.wait(t, 0, "reconnecting", isStatus("p1", "reconnecting"))
	eventually(t, 5*time.Second, "four attempts", func() bool { return len(e.sim.Connections("p1")) >= 4 })
	e.sim.SetRefuse("p1", 0)
	o.wait(t, 0, "connected", isStatus("p1", "connected"))
	if n := o.count(isStatus("p1", "session_expired")); n != 0 {
		t.Fatal("a 503 was reported as an expired session")
	}
	c := e.sim.Connections("p1")
	for i := 2; i < len(c); i++ {
		if gap := c[i].Time.Sub(c[i-1].Time); gap < 100*time.Millisecond {
			t.Errorf("attempt %d only %v after the previous one, want >= 100ms (the cap)", i+1, gap)
		}
	}
}

// TestSessionExpired: 401 (or 403) on upgrade yields session_expired and no
// further attempts, whatever the backoff; PutProfile with a new session
// reconnects with its cookies.
func TestSessionExpired(t *testing.T) {
	e := newMemoryEnv(t, rtmsim.Config{Expired: []string{"p1"}})
	e.sim.SetRefuse("p2", 403)
	cfg := e.config("n1")
	cfg.Backoff = rtm.Backoff{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond}
	n := e.start(cfg)
	o := e.observe(n.Bridge, "p1", "p2")
	ctx := t.Context()
	for _, p := range []string{"p1", "p2"} {
		if err := n.PutProfile(ctx, p, session1); err != nil {
			t.Fatal(err)
		}
	}
	g := o.wait(t, 0, "p1 session_expired", isStatus("p1", "session_expired"))
	if g.raw != `{"profileId":"p1","state":"session_expired"}` {
		t.Fatalf("rtm_status %s", g.raw)
	}
	o.wait(t, 0, "p2 session_expired (403)", isStatus("p2", "session_expired"))
	e.sim.SetExpired("p1", false) // the provider would accept now, but nobody asks
	time.Sleep(time.Second)       // a storm at 10-20ms would make ~50 attempts
	if c := e.sim.Connections("p1"); len(c) != 1 || c[0].Status != 401 {
		t.Fatalf("attempts while expired: %+v, want exactly the one 401", c)
	}
	if s, _ := n.Stats(ctx); s.Profiles["session_expired"] != 2 {
		t.Fatalf("stats profiles %v", s.Profiles)
	}

	if err := n.PutProfile(ctx, "p1", json.RawMessage(`{"cookies":"sid=fresh"}`)); err != nil {
		t.Fatal(err)
	}
	o.wait(t, 0, "p1 connected", isStatus("p1", "connected"))
	c := e.sim.Connections("p1")
	if len(c) != 2 || c[1].Status != 101 || c[1].Cookie != "sid=fresh" {
		t.Fatalf("attempts after the new session: %+v", c)
	}
	if len(e.sim.Connections("p2")) != 1 {
		t.Fatal("p2 retried without a new session")
	}
}

// TestDeleteProfile: DELETE drops the upstream connection and forgets the
// profile's state; nothing reconnects.
func TestDeleteProfile(t *testing.T) {
	e := newMemoryEnv(t, rtmsim.Config{})
	cfg := e.config("n1")
	cfg.Backoff = rtm.Backoff{Base: 10 * time.Millisecond, Max: 20 * time.Millisecond}
	n := e.start(cfg)
	ctx := t.Context()
	for _, p := range []string{"p1", "p2"} {
		if err := n.PutProfile(ctx, p, session1); err != nil {
			t.Fatal(err)
		}
	}
	connectedSince(t, e.sim, time.Time{}, "p1", "p2")
	if err := n.DeleteProfile(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "p1's connection closed", func() bool { return len(openConns(e.sim, "p1")) == 0 })
	time.Sleep(200 * time.Millisecond)
	if c := e.sim.Connections("p1"); len(c) != 1 {
		t.Fatalf("p1 attempts after delete: %+v", c)
	}
	if len(openConns(e.sim, "p2")) != 1 {
		t.Fatal("p2 lost its connection")
	}
	s, _ := n.Stats(ctx)
	if s.Profiles["connected"] != 1 || s.Profiles["reconnecting"] != 0 || !s.IsLeader || s.Leader != "n1" {
		t.Fatalf("stats %+v", s)
	}
	if st, _ := e.memStore.States(ctx); len(st) != 1 || st["p2"] != rtm.StateConnected {
		t.Fatalf("stored states %v", st)
	}
}

// TestSessionReplaced: a new session with other cookies reconnects a
// connected profile with them; the same cookies keep the connection.
func TestSessionReplaced(t *testing.T) {
	e := newMemoryEnv(t, rtmsim.Config{})
	n := e.start(e.config("n1"))
	ctx := t.Context()
	if err := n.PutProfile(ctx, "p1", session1); err != nil {
		t.Fatal(err)
	}
	connectedSince(t, e.sim, time.Time{}, "p1")
	if err := n.PutProfile(ctx, "p1", json.RawMessage(`{"cookies":"sid=s1"}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if c := e.sim.Connections("p1"); len(c) != 1 || c[0].ClosedAt != nil {
		t.Fatalf("identical cookies reconnected: %+v", c)
	}
	if err := n.PutProfile(ctx, "p1", json.RawMessage(`{"cookies":"sid=s2"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a connection with the new cookie", func() bool {
		open := openConns(e.sim, "p1")
		return len(open) == 1 && open[0].Cookie == "sid=s2"
	})
	if c := e.sim.Connections("p1"); len(c) != 2 || c[0].ClosedAt == nil {
		t.Fatalf("connections %+v", c)
	}
}

// TestKeepalive: the bridge pings; a provider that answers keeps the
// connection past the idle limit (twice the ping interval).
func TestKeepalive(t *testing.T) {
	// Each pong must be back within about one interval of its ping (the
	// read deadline is two intervals after the previous frame): 500 ms
	// leaves room for a loaded machine under -race, where 50 ms failed a
	// third of the runs.
	const interval = 500 * time.Millisecond
	e := newMemoryEnv(t, rtmsim.Config{})
	cfg := e.config("n1")
	cfg.PingInterval = interval
	n := e.start(cfg)
	if err := n.PutProfile(t.Context(), "p1", session1); err != nil {
		t.Fatal(err)
	}
	connectedSince(t, e.sim, time.Time{}, "p1")
	time.Sleep(5 * interval) // two and a half idle limits
	if c := e.sim.Connections("p1"); len(c) != 1 || c[0].ClosedAt != nil {
		t.Fatalf("connections %+v: the answered pings did not keep it open", c)
	}
}

// TestSilentUpstream: a provider that upgrades and then never answers is
// dropped after twice the ping interval, and the bridge reconnects.
func TestSilentUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	var held sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); held.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held.Go(func() {
				defer c.Close()
				if _, err := ws.Upgrade(c); err != nil {
					return
				}
				accepted.Add(1)
				_, _ = io.Copy(io.Discard, c) // read pings, never answer
			})
		}
	}()
	e := newMemoryEnv(t, rtmsim.Config{})
	cfg := e.config("n1")
	cfg.URL = "ws://" + ln.Addr().String() + "/ws"
	cfg.PingInterval = 50 * time.Millisecond
	cfg.Backoff = rtm.Backoff{Base: 10 * time.Millisecond, Max: 10 * time.Millisecond}
	n := e.start(cfg)
	if err := n.PutProfile(t.Context(), "p1", session1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a reconnect after the silent connection", func() bool { return accepted.Load() >= 2 })
	n.stop()
}
