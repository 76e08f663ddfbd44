package rtm_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/rtm"
	"github.com/anchat/realtime/rtm/rtmsim"
	"github.com/anchat/realtime/rtm/rtmstatus"
)

// TestStatusesAndProfiles: any node (leader or not) tells a connecting
// client's profiles' current states, and lists the profiles page by page with
// their state, last event time and reconnects; the figures survive a leader
// change.
func TestStatusesAndProfiles(t *testing.T) {
	e := newRedisEnv(t, rtmsim.Config{RequireCookie: true, Expired: []string{"p2"}})
	var nodes []*node
	for _, id := range []string{"n1", "n2"} {
		cfg := e.config(id)
		cfg.ResyncInterval = 100 * time.Millisecond
		nodes = append(nodes, e.start(cfg))
	}
	ctx := t.Context()
	for _, p := range []string{"p1", "p2"} {
		if err := nodes[0].PutProfile(ctx, p, session1); err != nil {
			t.Fatal(err)
		}
	}
	leader := waitLeader(t, 5*time.Second, nodes)
	follower := without(nodes, leader)[0]

	for _, n := range []*node{leader, follower} {
		eventually(t, 10*time.Second, n.id+" knows p1 connected and p2 expired", func() bool {
			st, err := n.Statuses(ctx, []string{"p1", "p2", "p3"})
			return err == nil && len(st) == 2 && st["p1"] == rtm.StateConnected && st["p2"] == rtm.StateSessionExpired
		})
	}
	if st, err := follower.Statuses(ctx, []string{"p3"}); err != nil || len(st) != 0 {
		t.Fatalf("a profile without a session: %v, %v", st, err)
	}

	// An event and a dropped connection show in the follower's list.
	before := time.Now()
	emitTo(t, e.sim, sentMessage("p1", "x1", "m1", "u1"))
	e.sim.Drop("p1")
	var p1 rtmstatus.Profile
	eventually(t, 10*time.Second, "the follower lists p1's event and reconnect", func() bool {
		page, _, err := follower.Profiles(ctx, "", 10)
		if err != nil || len(page) != 2 {
			return false
		}
		p1 = page[0]
		at, err := time.Parse(time.RFC3339, p1.LastEventAt)
		return err == nil && !at.Before(before.Truncate(time.Millisecond)) && p1.Reconnects >= 1 && p1.State == "connected"
	})
	if p1.ProfileID != "p1" || p1.Since == "" {
		t.Fatalf("p1: %+v", p1)
	}

	// Pages of one.
	page, next, err := follower.Profiles(ctx, "", 1)
	if err != nil || len(page) != 1 || page[0].ProfileID != "p1" || next != "p1" {
		t.Fatalf("first page: %+v next %q err %v", page, next, err)
	}
	page, next, err = follower.Profiles(ctx, next, 1)
	if err != nil || len(page) != 1 || page[0].ProfileID != "p2" || page[0].State != "session_expired" || next != "" {
		t.Fatalf("second page: %+v next %q err %v", page, next, err)
	}
	if page, next, err = follower.Profiles(ctx, "p2", 1); err != nil || len(page) != 0 || next != "" {
		t.Fatalf("after the last: %+v next %q err %v", page, next, err)
	}
	// The leader pages its own view the same way.
	if page, next, err = leader.Profiles(ctx, "", 1); err != nil || len(page) != 1 || page[0].ProfileID != "p1" || next != "p1" {
		t.Fatalf("leader's first page: %+v next %q err %v", page, next, err)
	}
	if page, next, err = leader.Profiles(ctx, "p1", 5); err != nil || len(page) != 1 || page[0].ProfileID != "p2" || next != "" {
		t.Fatalf("leader's second page: %+v next %q err %v", page, next, err)
	}

	// A new leader starts from the recorded figures.
	leader.stop()
	waitLeader(t, 5*time.Second, []*node{follower})
	eventually(t, 10*time.Second, "the new leader keeps p1's reconnects and last event", func() bool {
		page, _, err := follower.Profiles(ctx, "", 10)
		return err == nil && len(page) == 2 && page[0].Reconnects >= p1.Reconnects && page[0].LastEventAt >= p1.LastEventAt &&
			page[0].State == "connected"
	})
}

// TestStatusesReadOnlyTheAskedProfiles: on a node that does not lead, the
// states a client's CONNECT asks for cost one HMGET of those profiles'
// fields, whatever the number of other profiles in the cluster: the
// rtm_status after every CONNECT must not read the whole state hash (an
// attacker reconnecting in a loop, or a reconnect storm, would make each
// connect cost O(cluster) in Redis, on the wire and in the node's memory).
func TestStatusesReadOnlyTheAskedProfiles(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client, wire := srv.CountingClient()
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	store := newRedisStore(t, client, prefix)
	const others = 10_000
	fields := make([]any, 0, 2*others)
	for i := range others {
		fields = append(fields, fmt.Sprintf("other-%05d", i), string(rtm.StateConnected))
	}
	// The state hash's key, as TestRedisStoreLayout pins it.
	if err := client.HSet(ctx, prefix+":{rtm}:state", fields...).Err(); err != nil {
		t.Fatal(err)
	}
	_ = store.SetState(ctx, "p1", rtm.StateConnected)
	_ = store.SetState(ctx, "p2", rtm.StateSessionExpired)
	if all, err := store.States(ctx); err != nil || len(all) != others+2 {
		t.Fatalf("seeded %d states (%v), want %d", len(all), err, others+2)
	}

	// A bridge that has not won the lease (not Run) answers as any follower.
	b, err := rtm.New(rtm.Config{NodeID: "n1", URL: "ws://127.0.0.1:1/ws", Lease: lease.NewMemory(nil),
		Bus: bus.NewMemory(bus.MemoryConfig{}), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	redistest.ResetStats(t, client)
	before := wire.Read()
	st, err := b.Statuses(ctx, []string{"p1", "p2", "p3"})
	read := wire.Read() - before
	if err != nil || len(st) != 2 || st["p1"] != rtm.StateConnected || st["p2"] != rtm.StateSessionExpired {
		t.Fatalf("Statuses = %v, %v; want p1 connected, p2 session_expired", st, err)
	}
	calls := redistest.CommandCalls(t, client)
	delete(calls, "config|resetstat")
	if len(calls) != 1 || calls["hmget"] != 1 {
		t.Errorf("Redis ran %v; want one hmget", calls)
	}
	// Three fields' reply is tens of bytes; the hash's HGETALL is ~250 KB.
	if read > 256 {
		t.Errorf("Statuses read %d bytes from Redis; want the 3 asked fields only (< 256 bytes)", read)
	}
	if st, err := b.Statuses(ctx, nil); err != nil || len(st) != 0 {
		t.Fatalf("Statuses of no profile = %v, %v", st, err)
	}
}
