package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/rtm/rtmsim"
	"github.com/anchat/realtime/rtm/rtmsim/rtmsimtest"
)

// The RTM scenarios run three `realtime serve` processes on one redis-server
// with --rtm-url pointing at an in-process rtmsim (the stand-in provider,
// driven through its HTTP control API), and socket.io-client connections
// spread over the nodes (js/rtm_clients.mjs reports every event they get;
// the checks are here).

const (
	rtmLeaseTTL = 2 * time.Second
	rtmRenew    = rtmLeaseTTL / 3 // rtm's default RenewInterval
)

// TestRTMToasts: a MessageSent for P1 reaches, as message_toast, every
// connection of the users operating P1 on all three nodes and no one else;
// the profile's own messages toast nobody; MessageRead and
// DialogLimitChanged reach P1's users; the provider sees the session cookie.
func TestRTMToasts(t *testing.T) {
	c := startRTMCluster(t)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	alice, bob := rtmToken(t, "alice", "P1"), rtmToken(t, "bob", "P1", "P2")
	carol, dave := rtmToken(t, "carol", "P2"), rtmToken(t, "dave")
	cl := startRTMClients(t, n1, []rtmClient{
		{"a1", n1.URL, alice}, {"a2", n2.URL, alice},
		{"b1", n3.URL, bob}, {"b2", n1.URL, bob},
		{"c1", n2.URL, carol}, {"d1", n3.URL, dave},
	})
	p1 := []string{"a1", "a2", "b1", "b2"}
	p2 := []string{"b1", "b2", "c1"}

	c.putSession(n2, "P1", `{"cookies":{"sid":"p1-a"}}`)
	c.putSession(n3, "P2", `{"cookies":"sid=p2-a; lang=en"}`)
	cl.waitAll(p1, "rtm_status P1 connected", isStatus("P1", "connected"))
	cl.waitAll(p2, "rtm_status P2 connected", isStatus("P2", "connected"))
	if got := c.lastUpgrade("P1").Cookie; got != "sid=p1-a" {
		t.Errorf("provider got Cookie %q for P1, want %q", got, "sid=p1-a")
	}
	if got := c.lastUpgrade("P2").Cookie; got != "sid=p2-a; lang=en" {
		t.Errorf("provider got Cookie %q for P2, want %q", got, "sid=p2-a; lang=en")
	}

	c.mustEmit("P1", "MessageSent", "e-1", map[string]any{"dialogId": "d1", "messageId": "m-1", "fromId": "u7", "text": "hello", "createdAt": "2025-01-02T03:04:05.678Z"})
	cl.waitAll(p1, "message_toast m-1", isToast("m-1"))
	want := `{"profileId":"P1","dialogId":"d1","messageId":"m-1","fromId":"u7","text":"hello","createdAt":"2025-01-02T03:04:05.678Z"}`
	for _, name := range p1 {
		e, _ := cl.first(name, isToast("m-1"))
		if !jsonEqual(e.Data, want) {
			t.Errorf("%s: message_toast = %s, want %s", name, e.Data, want)
		}
	}

	// P1's own messages (fromId is the profile, or outgoing) toast nobody.
	c.mustEmit("P1", "MessageSent", "e-own-1", map[string]any{"dialogId": "d1", "messageId": "m-own-1", "fromId": "P1", "text": "mine"})
	c.mustEmit("P1", "MessageSent", "e-own-2", map[string]any{"dialogId": "d1", "messageId": "m-own-2", "fromId": "u9", "outgoing": true, "text": "mine too"})
	c.mustEmit("P1", "MessageRead", "e-2", map[string]any{"dialogId": "d1", "messageId": "m-1", "readAt": "2025-01-02T03:05:00.000Z"})
	c.mustEmit("P1", "DialogLimitChanged", "e-3", map[string]any{"dialogId": "d1", "limit": 10, "remaining": 9})
	c.mustEmit("P2", "MessageSent", "e-4", map[string]any{"dialogId": "d9", "messageId": "m-p2", "fromId": "u3", "text": "for P2"})
	c.mustEmit("P1", "MessageSent", "e-5", map[string]any{"dialogId": "d1", "messageId": "m-2", "fromId": "u7", "text": "marker"})
	cl.waitAll(p1, "message_toast m-2", isToast("m-2"))
	cl.waitAll(p1, "message_read", isEvent("message_read"))
	cl.waitAll(p1, "dialog_limit_changed", isEvent("dialog_limit_changed"))
	cl.waitAll(p2, "message_toast m-p2", isToast("m-p2"))
	time.Sleep(300 * time.Millisecond) // let anything that should not come arrive

	for _, name := range p1 {
		if e, _ := cl.first(name, isEvent("message_read")); !jsonEqual(e.Data, `{"profileId":"P1","dialogId":"d1","messageId":"m-1","readAt":"2025-01-02T03:05:00.000Z"}`) {
			t.Errorf("%s: message_read = %s", name, e.Data)
		}
		if e, _ := cl.first(name, isEvent("dialog_limit_changed")); !jsonEqual(e.Data, `{"profileId":"P1","dialogId":"d1","limit":10,"remaining":9}`) {
			t.Errorf("%s: dialog_limit_changed = %s", name, e.Data)
		}
	}
	wantToasts := map[string][]string{
		"a1": {"m-1", "m-2"}, "a2": {"m-1", "m-2"},
		"b1": {"m-1", "m-p2", "m-2"}, "b2": {"m-1", "m-p2", "m-2"},
		"c1": {"m-p2"}, "d1": nil,
	}
	for name, want := range wantToasts {
		got := cl.toastIDs(name)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: toasts %v, want %v (each once; no own messages, only its profiles)", name, got, want)
		}
	}
	for _, name := range []string{"c1", "d1"} {
		for _, e := range cl.events(name) {
			if isRTMEvent(e.Event) && !strings.Contains(string(e.Data), `"profileId":"P2"`) {
				t.Errorf("%s (not operating P1) got %s %s", name, e.Event, e.Data)
			}
		}
	}
	if n := cl.count("d1", func(e clientEvent) bool { return isRTMEvent(e.Event) }); n != 0 {
		t.Errorf("d1 (no profiles) got %d RTM events: %v", n, cl.events("d1"))
	}

	// Every node reports the same leader and both profiles connected.
	leaders := 0
	var leader string
	for _, n := range c.nodes {
		st, err := c.stats(n)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: rtm %+v", n.id, st)
		if leader == "" {
			leader = st.Leader
		}
		if st.Leader == "" || st.Leader != leader {
			t.Errorf("%s: rtm.leader %q, want one leader for all (%q)", n.id, st.Leader, leader)
		}
		if st.IsLeader {
			leaders++
			// 7 frames in; out: all but the two own messages (statuses are not counted).
			if st.EventsIn != 7 || st.EventsOut != 5 {
				t.Errorf("leader %s: eventsIn %d, eventsOut %d, want 7 and 5", n.id, st.EventsIn, st.EventsOut)
			}
		}
		if st.Profiles["connected"] != 2 {
			t.Errorf("%s: rtm.profiles %v, want 2 connected", n.id, st.Profiles)
		}
	}
	if leaders != 1 {
		t.Errorf("%d nodes say isLeader, want 1", leaders)
	}
}

// TestRTMFailover: SIGKILL the leader while the provider emits for P1;
// another node takes the lease within TTL plus one renew interval,
// reconnects every profile, toasts flow again, and no toast reaches a
// connection twice, even when the provider replays events the old leader
// already published.
func TestRTMFailover(t *testing.T) {
	c := startRTMCluster(t)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	alice, bob := rtmToken(t, "alice", "P1"), rtmToken(t, "bob", "P1", "P2")
	specs := []rtmClient{
		{"a1", n1.URL, alice}, {"a2", n2.URL, alice}, {"a3", n3.URL, alice},
		{"b1", n1.URL, bob}, {"b3", n3.URL, bob},
	}
	cl := startRTMClients(t, n1, specs)
	c.putSession(n1, "P1", `{"cookies":{"sid":"p1"}}`)
	c.putSession(n1, "P2", `{"cookies":{"sid":"p2"}}`)
	cl.waitAll([]string{"a1", "a2", "a3", "b1", "b3"}, "rtm_status P1 connected", isStatus("P1", "connected"))
	cl.waitAll([]string{"b1", "b3"}, "rtm_status P2 connected", isStatus("P2", "connected"))
	old := c.leader()
	t.Logf("leader: %s", old.id)

	em := startEmitter(c, "P1", "f", 100*time.Millisecond)
	defer em.stop()
	waitCond(t, 10*time.Second, "5 events delivered to the leader", func() (bool, string) {
		n := len(em.delivered(time.Time{}, time.Now()))
		return n >= 5, fmt.Sprintf("%d delivered", n)
	})

	killAt := time.Now()
	old.Signal(t, syscall.SIGKILL)
	old.expectExit()
	var survivors []*rtmNode
	for _, n := range c.nodes {
		if n != old {
			survivors = append(survivors, n)
		}
	}
	fresh := c.waitNewLeader(t, survivors, old)
	took := time.Since(killAt)
	t.Logf("FIGURE failover: %s holds the lease %v after SIGKILL of %s (TTL %v + renew %v = %v)", fresh.id, took.Round(time.Millisecond), old.id, rtmLeaseTTL, rtmRenew, rtmLeaseTTL+rtmRenew)
	if limit := rtmLeaseTTL + rtmRenew + time.Second; took > limit { // 1 s for polling and a busy machine
		t.Errorf("takeover took %v, want within TTL + renew interval (%v, allowing %v)", took, rtmLeaseTTL+rtmRenew, limit)
	}

	// The new leader reconnects every profile.
	var reconnected time.Time
	waitCond(t, 10*time.Second, "the provider sees P1 and P2 reconnected", func() (bool, string) {
		var missing []string
		for _, p := range []string{"P1", "P2"} {
			var ok bool
			for _, rec := range c.connections(p) {
				if rec.Status == http.StatusSwitchingProtocols && rec.Time.After(killAt) && rec.ClosedAt == nil {
					ok = true
					if p == "P1" {
						reconnected = rec.Time
					}
				}
			}
			if !ok {
				missing = append(missing, p)
			}
		}
		return len(missing) == 0, fmt.Sprintf("not reconnected: %v", missing)
	})
	t.Logf("FIGURE failover: P1 reconnected %v after SIGKILL", reconnected.Sub(killAt).Round(time.Millisecond))
	for _, rec := range c.connections("P1") {
		if rec.Time.Before(killAt) && rec.Status == http.StatusSwitchingProtocols && rec.ClosedAt == nil {
			t.Errorf("the killed leader's P1 connection %d is still open at the provider", rec.ID)
		}
	}

	// The provider replays some events the old leader already published.
	before := em.delivered(time.Time{}, killAt)
	replays := append(slices.Clone(before[:min(3, len(before))]), before[len(before)-1])
	waitCond(t, 10*time.Second, "emits reach the new leader", func() (bool, string) {
		n := len(em.delivered(reconnected, time.Now()))
		return n >= 3, fmt.Sprintf("%d delivered since the reconnect", n)
	})
	for _, id := range replays {
		c.mustEmit("P1", "MessageSent", id, toastData(id))
	}
	waitCond(t, 10*time.Second, "10 more emits after the replays", func() (bool, string) {
		n := len(em.delivered(reconnected, time.Now()))
		return n >= 13, fmt.Sprintf("%d delivered since the reconnect", n)
	})
	em.stop()
	c.mustEmit("P1", "MessageSent", "f-final", toastData("f-final"))
	var alive []string // the clients of the surviving nodes
	for _, s := range specs {
		if s.URL != old.URL {
			alive = append(alive, s.Name)
		}
	}
	cl.waitAll(alive, "the final toast", isToast("f-final"))
	time.Sleep(300 * time.Millisecond) // replays, if any got through, would have arrived

	after := em.delivered(reconnected, time.Now())
	early := em.delivered(time.Time{}, killAt.Add(-500*time.Millisecond))
	t.Logf("emitted: %d delivered to the provider's connections before the kill, %d after P1 reconnected, %d refused (no connection); replayed %v", len(before), len(after), em.refused(), replays)
	for _, spec := range specs {
		name := spec.Name
		ids := cl.toastIDs(name)
		seen := map[string]int{}
		for _, id := range ids {
			seen[id]++
		}
		for id, n := range seen {
			if n > 1 {
				t.Errorf("%s: toast %s delivered %d times", name, id, n)
			}
		}
		if !slices.Contains(alive, name) {
			if !cl.has(name, isEvent("disconnect")) {
				t.Errorf("%s (on the killed node) saw no disconnect", name)
			}
			continue
		}
		var missing []string
		for _, id := range append(slices.Clone(early), after...) {
			if seen[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s: missing toasts %v (got %v)", name, missing, ids)
		}
	}
	st, err := c.stats(fresh)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("new leader %s: rtm %+v", fresh.id, st)
	if !st.IsLeader || st.Profiles["connected"] != 2 {
		t.Errorf("new leader %s: isLeader %v, profiles %v; want leader with 2 connected", fresh.id, st.IsLeader, st.Profiles)
	}
	if st.DuplicatesDrop < uint64(len(replays)) {
		t.Errorf("new leader %s: duplicatesDropped %d, want at least %d (the replays)", fresh.id, st.DuplicatesDrop, len(replays))
	}
}

// TestRTMGracefulHandover: SIGTERM of the leader releases the lease as it
// starts draining; another node leads in under 2 s and toasts flow again.
func TestRTMGracefulHandover(t *testing.T) {
	c := startRTMCluster(t)
	alice := rtmToken(t, "alice", "P1")
	specs := make([]rtmClient, 0, 3)
	for i, n := range c.nodes {
		specs = append(specs, rtmClient{fmt.Sprintf("a%d", i+1), n.URL, alice})
	}
	cl := startRTMClients(t, c.nodes[0], specs)
	c.putSession(c.nodes[1], "P1", `{"cookies":{"sid":"p1"}}`)
	cl.waitAll([]string{"a1", "a2", "a3"}, "rtm_status P1 connected", isStatus("P1", "connected"))
	old := c.leader()
	var survivors []*rtmNode
	var alive []string
	for i, n := range c.nodes {
		if n != old {
			survivors = append(survivors, n)
			alive = append(alive, specs[i].Name)
		}
	}

	sigAt := time.Now()
	old.Signal(t, syscall.SIGTERM)
	old.Node.ExpectExit() // the test checks its exit status itself
	fresh := c.waitNewLeader(t, survivors, old)
	took := time.Since(sigAt)
	t.Logf("FIGURE graceful: %s leads %v after SIGTERM of %s", fresh.id, took.Round(time.Millisecond), old.id)
	if took >= 2*time.Second {
		t.Errorf("graceful handover took %v, want under 2 s", took)
	}
	waitCond(t, 10*time.Second, "P1 reconnected by the new leader", func() (bool, string) {
		rec := c.lastUpgrade("P1")
		return rec.Time.After(sigAt) && rec.Status == http.StatusSwitchingProtocols && rec.ClosedAt == nil, fmt.Sprintf("last upgrade %+v", rec)
	})
	c.mustEmit("P1", "MessageSent", "g-1", toastData("g-1"))
	cl.waitAll(alive, "a toast through the new leader", isToast("g-1"))
	select {
	case <-old.Exited():
		if old.Err() != nil {
			t.Errorf("%s exited with %v after SIGTERM, want 0", old.id, old.Err())
		}
	case <-time.After(15 * time.Second):
		t.Errorf("%s did not exit within 15 s of SIGTERM", old.id)
	}
	if logs := old.Logs(); !strings.Contains(logs, "released the lease") {
		t.Errorf("%s did not log releasing the lease", old.id)
	}
}

// TestRTMExpiredSession: the provider refusing P2's session (401) yields
// rtm_status session_expired to P2's users and no reconnect storm; a new
// session makes the leader connect again.
func TestRTMExpiredSession(t *testing.T) {
	c := startRTMCluster(t)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	cl := startRTMClients(t, n1, []rtmClient{
		{"c1", n1.URL, rtmToken(t, "carol", "P2")},
		{"b2", n2.URL, rtmToken(t, "bob", "P1", "P2")},
		{"a3", n3.URL, rtmToken(t, "alice", "P1")},
	})
	p2 := []string{"c1", "b2"}
	c.putSession(n3, "P1", `{"cookies":{"sid":"p1"}}`)
	c.putSession(n3, "P2", `{"cookies":{"sid":"p2-old"}}`)
	cl.waitAll(p2, "rtm_status P2 connected", isStatus("P2", "connected"))
	cl.waitAll([]string{"b2", "a3"}, "rtm_status P1 connected", isStatus("P1", "connected"))

	expiredAt := time.Now()
	c.control("POST", "/control/expire", map[string]any{"profileId": "P2", "expired": true}, nil)
	var dropped struct{ Dropped int }
	c.control("POST", "/control/drop", map[string]any{"profileId": "P2"}, &dropped)
	if dropped.Dropped != 1 {
		t.Fatalf("rtmsim dropped %d P2 connections, want 1", dropped.Dropped)
	}
	cl.waitAll(p2, "rtm_status P2 session_expired", isStatus("P2", "session_expired"))
	sawExpired := time.Now()
	t.Logf("FIGURE expired: session_expired reached P2's users %v after the drop", sawExpired.Sub(expiredAt).Round(time.Millisecond))

	// No reconnect storm: watch the provider's log for a few seconds.
	time.Sleep(3 * time.Second)
	var attempts []rtmsim.Connection
	for _, rec := range c.connections("P2") {
		if rec.Time.After(expiredAt) {
			attempts = append(attempts, rec)
		}
	}
	t.Logf("P2 upgrade attempts in the %v after the expiry: %+v", time.Since(expiredAt).Round(time.Millisecond), attempts)
	if len(attempts) == 0 || len(attempts) > 2 {
		t.Errorf("P2: %d upgrade attempts after the expiry, want 1 or 2", len(attempts))
	}
	for _, rec := range attempts {
		if rec.Status != http.StatusUnauthorized {
			t.Errorf("P2 attempt %d answered %d, want 401", rec.ID, rec.Status)
		}
	}
	if n := cl.count("a3", func(e clientEvent) bool { return strings.Contains(string(e.Data), `"P2"`) }); n != 0 {
		t.Errorf("a3 (P1 only) got %d P2 events: %v", n, cl.events("a3"))
	}
	st, err := c.stats(n2)
	if err != nil {
		t.Fatal(err)
	}
	if st.Profiles["session_expired"] != 1 || st.Profiles["connected"] != 1 {
		t.Errorf("rtm.profiles %v, want 1 session_expired and 1 connected", st.Profiles)
	}
	// P1 is unaffected.
	c.mustEmit("P1", "MessageSent", "x-1", toastData("x-1"))
	cl.waitAll([]string{"b2", "a3"}, "a P1 toast", isToast("x-1"))

	// A new session: the leader connects again with its cookie.
	c.control("POST", "/control/expire", map[string]any{"profileId": "P2", "expired": false}, nil)
	c.putSession(n1, "P2", `{"cookies":{"sid":"p2-new"}}`)
	waitCond(t, 10*time.Second, "P2 connected with the new session", func() (bool, string) {
		rec := c.lastUpgrade("P2")
		return rec.Status == http.StatusSwitchingProtocols && rec.Cookie == "sid=p2-new", fmt.Sprintf("last upgrade %+v", rec)
	})
	cl.waitAll(p2, "rtm_status P2 connected again", func(e clientEvent) bool {
		return isStatus("P2", "connected")(e) && e.At.After(sawExpired)
	})
	c.mustEmit("P2", "MessageSent", "y-1", toastData("y-1"))
	cl.waitAll(p2, "a P2 toast", isToast("y-1"))
}

// ---- cluster -----------------------------------------------------------

type rtmCluster struct {
	t      *testing.T
	sim    *rtmsim.Server
	simURL string // http://127.0.0.1:<port>: the control API
	nodes  []*rtmNode
	http   *http.Client
}

// rtmNode is a harness node with the id the RTM stats report; these tests
// kill or stop nodes on purpose (expectExit).
type rtmNode struct {
	*Node
	id string
}

// startRTMCluster starts redis-server, rtmsim and three nodes with the RTM
// bridge on a 2 s lease.
func startRTMCluster(t *testing.T) *rtmCluster {
	t.Helper()
	srv := startRedis(t, redistest.Options{})
	sim := rtmsimtest.Start(t, rtmsim.Config{RequireCookie: true})
	c := &rtmCluster{t: t, sim: sim.Server, simURL: sim.URL, http: &http.Client{Timeout: 5 * time.Second}}
	rtmURL := sim.WSURL()
	for i := 1; i <= 3; i++ {
		c.nodes = append(c.nodes, startRTMNode(t, fmt.Sprintf("rtm-n%d", i),
			srv.Args("--rtm-url", rtmURL, "--rtm-lease-ttl", rtmLeaseTTL.String(), "--dev")...))
	}
	return c
}

func startRTMNode(t *testing.T, id string, args ...string) *rtmNode {
	t.Helper()
	return &rtmNode{Node: StartNode(t, append([]string{"--node-id", id}, args...)...), id: id}
}

// expectExit marks the node as stopped by the test and waits for its exit.
func (n *rtmNode) expectExit() {
	n.Node.ExpectExit()
	<-n.Exited()
}

func rtmToken(t *testing.T, user string, profiles ...string) string {
	return Token(t, user, func(c jwt.MapClaims) {
		if len(profiles) > 0 {
			c["profiles"] = profiles
		}
	})
}

// putSession stores a profile's session through a node's server API.
func (c *rtmCluster) putSession(n *rtmNode, profile, session string) {
	c.t.Helper()
	body := `{"session":` + session + `}`
	req, _ := http.NewRequest(http.MethodPut, n.AdminURL+"/api/rtm/profiles/"+profile, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("PUT /api/rtm/profiles/%s on %s: %d %s", profile, n.id, resp.StatusCode, b)
	}
}

type rtmStats struct {
	Leader         string         `json:"leader"`
	Term           int64          `json:"term"`
	IsLeader       bool           `json:"isLeader"`
	Profiles       map[string]int `json:"profiles"`
	Reconnects     uint64         `json:"reconnects"`
	EventsIn       uint64         `json:"eventsIn"`
	EventsOut      uint64         `json:"eventsOut"`
	DuplicatesDrop uint64         `json:"duplicatesDropped"`
	StaleTermsDrop uint64         `json:"staleTermsDropped"`
}

// stats reads rtm from a node's GET /api/stats.
func (c *rtmCluster) stats(n *rtmNode) (rtmStats, error) {
	req, _ := http.NewRequest(http.MethodGet, n.AdminURL+"/api/stats", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := c.http.Do(req)
	if err != nil {
		return rtmStats{}, err
	}
	defer resp.Body.Close()
	var out struct {
		RTM *rtmStats `json:"rtm"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return rtmStats{}, fmt.Errorf("%s: GET /api/stats: %d %s", n.id, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &out); err != nil || out.RTM == nil {
		return rtmStats{}, fmt.Errorf("%s: GET /api/stats: no rtm figures (%v): %s", n.id, err, b)
	}
	return *out.RTM, nil
}

// waitNewLeader waits until a surviving node reports one of survivors as
// the lease holder (old held it) and returns that node.
func (c *rtmCluster) waitNewLeader(t *testing.T, survivors []*rtmNode, old *rtmNode) *rtmNode {
	t.Helper()
	var fresh *rtmNode
	waitCond(t, 10*time.Second, "a surviving node holds the lease", func() (bool, string) {
		for _, n := range survivors {
			st, err := c.stats(n)
			if err != nil {
				return false, err.Error()
			}
			for _, s := range survivors {
				if st.Leader == s.id {
					fresh = s
					return true, ""
				}
			}
			if st.Leader != old.id && st.Leader != "" {
				return false, "leader " + st.Leader
			}
		}
		return false, "still " + old.id
	})
	return fresh
}

// leader waits until the nodes agree on a leader and returns it.
func (c *rtmCluster) leader() *rtmNode {
	c.t.Helper()
	var l *rtmNode
	waitCond(c.t, 10*time.Second, "one leader", func() (bool, string) {
		var ids []string
		for _, n := range c.nodes {
			st, err := c.stats(n)
			if err != nil {
				return false, err.Error()
			}
			ids = append(ids, st.Leader)
			if st.IsLeader {
				l = n
			}
		}
		return l != nil && ids[0] == l.id && ids[1] == l.id && ids[2] == l.id, fmt.Sprintf("leaders %v", ids)
	})
	return l
}

// control calls rtmsim's control API; out (if not nil) receives the answer.
// It returns the status; 409 (no open connection) is not an error.
func (c *rtmCluster) control(method, path string, body any, out any) int {
	c.t.Helper()
	status, b, err := c.controlErr(method, path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if status != http.StatusOK && status != http.StatusConflict {
		c.t.Fatalf("rtmsim %s %s: %d %s", method, path, status, b)
	}
	if out != nil && status == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("rtmsim %s %s: %v: %s", method, path, err, b)
		}
	}
	return status
}

// controlErr is control without the test: safe in any goroutine.
func (c *rtmCluster) controlErr(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.simURL+path, rd)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// emit injects an upstream event; ok is false when the profile had no open
// connection (409).
func (c *rtmCluster) emit(profile, typ, id string, data map[string]any) (bool, error) {
	status, b, err := c.controlErr("POST", "/control/emit", map[string]any{"profileId": profile, "type": typ, "id": id, "data": data})
	switch {
	case err != nil:
		return false, err
	case status == http.StatusOK:
		return true, nil
	case status == http.StatusConflict:
		return false, nil
	}
	return false, fmt.Errorf("rtmsim emit: %d %s", status, b)
}

// mustEmit injects an event, waiting for the profile's connection if needed.
func (c *rtmCluster) mustEmit(profile, typ, id string, data map[string]any) {
	c.t.Helper()
	waitCond(c.t, 10*time.Second, "rtmsim delivers "+id+" to a "+profile+" connection", func() (bool, string) {
		ok, err := c.emit(profile, typ, id, data)
		if err != nil {
			return false, err.Error()
		}
		return ok, "409: no open connection"
	})
}

// connections is rtmsim's connection log for a profile.
func (c *rtmCluster) connections(profile string) []rtmsim.Connection {
	c.t.Helper()
	var out []rtmsim.Connection
	c.control("GET", "/control/connections?profileId="+profile, nil, &out)
	return out
}

func (c *rtmCluster) lastUpgrade(profile string) rtmsim.Connection {
	c.t.Helper()
	l := c.connections(profile)
	if len(l) == 0 {
		return rtmsim.Connection{}
	}
	return l[len(l)-1]
}

func toastData(id string) map[string]any {
	return map[string]any{"dialogId": "d1", "messageId": id, "fromId": "u1", "text": "event " + id}
}

// emitter injects a MessageSent for a profile every interval, ids
// <prefix>-1, -2, ... (the id is also the messageId).
type emitter struct {
	mu      sync.Mutex
	records []emitRecord
	refusal int
	done    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

type emitRecord struct {
	id         string
	start, end time.Time
}

func startEmitter(c *rtmCluster, profile, prefix string, every time.Duration) *emitter {
	e := &emitter{done: make(chan struct{})}
	e.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case <-e.done:
				return
			case <-t.C:
			}
			id := fmt.Sprintf("%s-%d", prefix, i)
			start := time.Now()
			ok, err := c.emit(profile, "MessageSent", id, toastData(id))
			e.mu.Lock()
			if ok && err == nil {
				e.records = append(e.records, emitRecord{id, start, time.Now()})
			} else {
				e.refusal++
			}
			e.mu.Unlock()
		}
	})
	return e
}

func (e *emitter) stop() {
	e.once.Do(func() { close(e.done) })
	e.wg.Wait()
}

// delivered are the ids rtmsim wrote to an open connection, of emits that
// started after from and ended before to.
func (e *emitter) delivered(from, to time.Time) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for _, r := range e.records {
		if r.start.After(from) && r.end.Before(to) {
			ids = append(ids, r.id)
		}
	}
	return ids
}

func (e *emitter) refused() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.refusal
}

// ---- clients -----------------------------------------------------------

// rtmClient is one socket.io connection of js/rtm_clients.mjs.
type rtmClient struct {
	Name  string `json:"name"`
	URL   string `json:"url"`
	Token string `json:"token"`
}

type clientEvent struct {
	Event string
	Data  json.RawMessage
	At    time.Time // when the test read it
}

type rtmClients struct {
	t      *testing.T
	mu     sync.Mutex
	byName map[string][]clientEvent
}

// startRTMClients runs js/rtm_clients.mjs and waits until every client is
// connected. The script runs until the test ends.
func startRTMClients(t *testing.T, n *rtmNode, specs []rtmClient) *rtmClients {
	t.Helper()
	b, _ := json.Marshal(specs)
	cl := &rtmClients{t: t, byName: map[string][]clientEvent{}}
	js := startScenario(t, "rtm_clients.mjs", map[string]string{"URL": n.URL, "ADMIN_URL": n.AdminURL, "CLIENTS": string(b)}, func(line string) bool {
		rest, ok := strings.CutPrefix(line, "EV ")
		if !ok {
			return false
		}
		var e struct {
			Client string          `json:"client"`
			Event  string          `json:"event"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(rest), &e); err != nil {
			return false
		}
		cl.mu.Lock()
		cl.byName[e.Client] = append(cl.byName[e.Client], clientEvent{e.Event, e.Data, time.Now()})
		cl.mu.Unlock()
		return true
	})
	t.Cleanup(func() { // before the runner's own: ends the run and checks the exit
		_ = js.stdin.Close()
		if err := js.end(10 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			cl.mu.Lock()
			for name, evs := range cl.byName {
				var b strings.Builder
				for _, e := range evs {
					fmt.Fprintf(&b, "\n  %s %s %s", e.At.Format("15:04:05.000"), e.Event, e.Data)
				}
				t.Logf("client %s received:%s", name, b.String())
			}
			cl.mu.Unlock()
		}
	})
	js.expect(t, "READY", 20*time.Second)
	return cl
}

func (cl *rtmClients) events(name string) []clientEvent {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return slices.Clone(cl.byName[name])
}

func (cl *rtmClients) first(name string, pred func(clientEvent) bool) (clientEvent, bool) {
	for _, e := range cl.events(name) {
		if pred(e) {
			return e, true
		}
	}
	return clientEvent{}, false
}

func (cl *rtmClients) has(name string, pred func(clientEvent) bool) bool {
	_, ok := cl.first(name, pred)
	return ok
}

func (cl *rtmClients) count(name string, pred func(clientEvent) bool) int {
	n := 0
	for _, e := range cl.events(name) {
		if pred(e) {
			n++
		}
	}
	return n
}

// toastIDs are the messageIds of a client's message_toast events, in order.
func (cl *rtmClients) toastIDs(name string) []string {
	var ids []string
	for _, e := range cl.events(name) {
		if e.Event == "message_toast" {
			var p struct {
				MessageID string `json:"messageId"`
			}
			_ = json.Unmarshal(e.Data, &p)
			ids = append(ids, p.MessageID)
		}
	}
	return ids
}

// waitAll waits until every named client has an event matching pred.
func (cl *rtmClients) waitAll(names []string, what string, pred func(clientEvent) bool) {
	cl.t.Helper()
	waitCond(cl.t, 10*time.Second, what, func() (bool, string) {
		var missing []string
		for _, name := range names {
			if !cl.has(name, pred) {
				missing = append(missing, name)
			}
		}
		return len(missing) == 0, fmt.Sprintf("not yet at %v", missing)
	})
}

func isEvent(event string) func(clientEvent) bool {
	return func(e clientEvent) bool { return e.Event == event }
}

func isToast(messageID string) func(clientEvent) bool {
	return func(e clientEvent) bool {
		var p struct {
			MessageID string `json:"messageId"`
		}
		return e.Event == "message_toast" && json.Unmarshal(e.Data, &p) == nil && p.MessageID == messageID
	}
}

func isStatus(profile, state string) func(clientEvent) bool {
	return func(e clientEvent) bool {
		var p struct {
			ProfileID string `json:"profileId"`
			State     string `json:"state"`
		}
		return e.Event == "rtm_status" && json.Unmarshal(e.Data, &p) == nil && p.ProfileID == profile && p.State == state
	}
}

func isRTMEvent(event string) bool {
	switch event {
	case "message_toast", "message_read", "dialog_limit_changed", "rtm_status":
		return true
	}
	return false
}

func jsonEqual(got json.RawMessage, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return bytes.Equal(ab, bb)
}

// waitCond polls cond every 20 ms until it holds, or fails the test after
// timeout with cond's last explanation. It returns how long it took.
func waitCond(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v: %s", what, timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
