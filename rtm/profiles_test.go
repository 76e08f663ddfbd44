package rtm_test

import (
	"testing"
	"time"

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

	// A new leader starts from the recorded figures.
	leader.stop()
	waitLeader(t, 5*time.Second, []*node{follower})
	eventually(t, 10*time.Second, "the new leader keeps p1's reconnects and last event", func() bool {
		page, _, err := follower.Profiles(ctx, "", 10)
		return err == nil && len(page) == 2 && page[0].Reconnects >= p1.Reconnects && page[0].LastEventAt >= p1.LastEventAt &&
			page[0].State == "connected"
	})
}
