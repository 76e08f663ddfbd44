package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/membership"
	"github.com/anchat/realtime/presence"
	"github.com/anchat/realtime/registry"
	"github.com/anchat/realtime/socketio"
)

// consoleCluster starts three nodes sharing one redis-server (bus,
// presence, membership and registry on Redis), as a cluster.
func consoleCluster(t *testing.T) []*Node {
	t.Helper()
	nodes, _, _ := consoleClusterOn(t)
	return nodes
}

// consoleClusterOn is consoleCluster that also returns the redis-server and
// the key prefix the nodes use.
func consoleClusterOn(t *testing.T) ([]*Node, *redistest.Server, string) {
	t.Helper()
	return consoleClusterWith(t, nil)
}

// consoleClusterWith is consoleClusterOn with mod applied to the first
// node's configuration (n1) after the cluster's own settings.
func consoleClusterWith(t *testing.T, mod func(*Config)) ([]*Node, *redistest.Server, string) {
	t.Helper()
	rs := redistest.Start(t, redistest.Options{})
	prefix := redistest.Prefix(t)
	var nodes []*Node
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		client := redis.NewClient(&redis.Options{Addr: rs.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second,
			WriteTimeout: time.Second, PoolTimeout: time.Second, MaxRetries: -1})
		b, err := bus.NewRedis(client, bus.RedisConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		p, err := presence.NewRedis(client, presence.RedisConfig{Prefix: prefix, NodeID: id})
		if err != nil {
			t.Fatal(err)
		}
		m, err := membership.NewRedis(client, membership.RedisConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		reg, err := registry.NewRedis(client, prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.Close() }) // after the node's stop (cleanups run last first)
		nodes = append(nodes, startNode(t, func(c *Config) {
			c.NodeID = id
			c.Dev = false // membership is checked: the API adds members
			c.Version = "v-test"
			c.Engines = Engines{Bus: b, Presence: p, Membership: m, Limiter: limits.NewMemory(nil), Registry: reg}
			if id == "n1" && mod != nil {
				mod(c)
			}
		}))
	}
	return nodes, rs, prefix
}

// apiJSON sends an authorised server API request, requires status want and
// decodes the answer into v (when not nil).
func apiJSON(t *testing.T, n *Node, method, path, body string, want int, v any) {
	t.Helper()
	var r *strings.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	var resp *http.Response
	var text string
	if r != nil {
		resp, text = apiCall(t, n, method, path, r)
	} else {
		resp, text = apiCall(t, n, method, path, nil)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, text, want)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(text), v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, text)
		}
	}
}

// waitUntil is waitFor with a yes/no condition.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	waitFor(t, within, func() string {
		if cond() {
			return ""
		}
		return "still waiting for " + what
	})
}

type userConnsAnswer struct {
	Connections []connInfo  `json:"connections"`
	Errors      []nodeError `json:"errors"`
}

// TestConsoleClusterViews: any node lists the three nodes, finds a user's
// connections on the other two, disconnects one of them and then the rest,
// and shows the disconnects in the live events of the node that held them.
func TestConsoleClusterViews(t *testing.T) {
	nodes := consoleCluster(t)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	var list struct {
		Self  string     `json:"self"`
		Nodes []nodeInfo `json:"nodes"`
	}
	waitUntil(t, 10*time.Second, "n1 lists three nodes", func() bool {
		apiJSON(t, n1, "GET", "/api/nodes", "", http.StatusOK, &list)
		return len(list.Nodes) == 3
	})
	for i, n := range list.Nodes {
		want := fmt.Sprintf("n%d", i+1)
		if n.ID != want || n.Version != "v-test" || n.APIURL != "http://"+nodes[i].AdminAddr().String() || !n.Ready {
			t.Errorf("node %d: %+v, want id %s, version v-test, apiUrl of its admin listener, ready", i, n, want)
		}
	}
	if list.Self != "n1" {
		t.Errorf("self %q, want n1", list.Self)
	}
	var self nodeInfo
	apiJSON(t, n2, "GET", "/api/node", "", http.StatusOK, &self)
	if self.ID != "n2" || self.Addr != n2.Addr().String() || self.Namespace != "/messenger" || self.StartedAt == "" {
		t.Errorf("GET /api/node on n2: %+v", self)
	}

	apiJSON(t, n1, "PUT", "/api/chats/room/members/alice", "", http.StatusOK, nil)
	tok := token(t, "alice", time.Hour, map[string]any{"name": "Alice"})
	a2, a3 := connect(t, n2.Addr().String(), tok), connect(t, n3.Addr().String(), tok)
	a2.emit("join_chat", map[string]string{"chatId": "room"}, true)

	var got userConnsAnswer
	waitUntil(t, 10*time.Second, "two connections of alice", func() bool {
		apiJSON(t, n1, "GET", "/api/users/alice/connections", "", http.StatusOK, &got)
		return len(got.Connections) == 2
	})
	if len(got.Errors) != 0 {
		t.Fatalf("lookup errors: %+v", got.Errors)
	}
	if got.Connections[0].Node != "n2" || got.Connections[1].Node != "n3" {
		t.Fatalf("connections on %s and %s, want n2 and n3", got.Connections[0].Node, got.Connections[1].Node)
	}
	c2 := got.Connections[0]
	if !slices.Equal(c2.Chats, []string{"room"}) || !slices.Equal(c2.Namespaces, []string{"/messenger"}) ||
		c2.Name != "Alice" || !strings.HasPrefix(c2.Remote, "127.0.0.1:") || c2.Since == "" {
		t.Fatalf("n2's connection %+v: want chat room, namespace /messenger, name Alice, a loopback remote, since", c2)
	}
	if len(got.Connections[1].Chats) != 0 {
		t.Fatalf("n3's connection joined %v, want none", got.Connections[1].Chats)
	}

	// One connection: only n2's closes, with a Socket.IO DISCONNECT first.
	apiJSON(t, n1, "DELETE", "/api/users/alice/connections/"+c2.ConnID, "", http.StatusAccepted, nil)
	for {
		p := a2.nextPacket(5 * time.Second)
		if p.typ == socketio.Disconnect {
			if p.nsp != "/messenger" {
				t.Fatalf("DISCONNECT for %q", p.nsp)
			}
			break
		}
	}
	a2.expectClosed(5 * time.Second)
	waitUntil(t, 10*time.Second, "one connection of alice left", func() bool {
		apiJSON(t, n1, "GET", "/api/users/alice/connections", "", http.StatusOK, &got)
		return len(got.Connections) == 1 && got.Connections[0].Node == "n3"
	})
	// All of them.
	apiJSON(t, n2, "DELETE", "/api/users/alice/connections", "", http.StatusAccepted, nil)
	a3.expectClosed(5 * time.Second)

	// n2's live events, read through n1, say why.
	var ev struct {
		Node   string      `json:"node"`
		Events []liveEvent `json:"events"`
	}
	waitUntil(t, 5*time.Second, "n2's admin_disconnect event", func() bool {
		apiJSON(t, n1, "GET", "/api/nodes/n2/events?after=0", "", http.StatusOK, &ev)
		return slices.ContainsFunc(ev.Events, func(e liveEvent) bool {
			return e.Kind == liveDisconnect && e.Code == reasonAdmin && e.User == "alice" && e.Conn == c2.ConnID
		})
	})
	if ev.Node != "n2" {
		t.Fatalf("events of node %q, want n2", ev.Node)
	}
	apiJSON(t, n1, "GET", "/api/nodes/nope/events", "", http.StatusNotFound, nil)
}

// TestConsoleChatOverview: members, who of them is online, and the newest
// history of a chat, from any node.
func TestConsoleChatOverview(t *testing.T) {
	nodes := consoleCluster(t)
	n1, n3 := nodes[0], nodes[2]
	for _, u := range []string{"bob", "alice", "carol"} {
		apiJSON(t, n1, "PUT", "/api/chats/room/members/"+u, "", http.StatusOK, nil)
	}
	connect(t, n3.Addr().String(), token(t, "bob", time.Hour, nil))
	apiJSON(t, n1, "POST", "/api/chats/room/messages", `{"senderId":"system","content":"<b>maintenance</b> at 22:00"}`, http.StatusCreated, nil)

	var ov struct {
		MemberCount int      `json:"memberCount"`
		Members     []string `json:"members"`
		Online      []struct {
			UserID      string `json:"userId"`
			Connections int    `json:"connections"`
		} `json:"online"`
		History []historyEvent `json:"history"`
	}
	waitUntil(t, 10*time.Second, "bob online", func() bool {
		apiJSON(t, n1, "GET", "/api/chats/room", "", http.StatusOK, &ov)
		return len(ov.Online) == 1
	})
	if ov.MemberCount != 3 || !slices.Equal(ov.Members, []string{"alice", "bob", "carol"}) {
		t.Fatalf("members %d %v, want 3 sorted", ov.MemberCount, ov.Members)
	}
	if ov.Online[0].UserID != "bob" || ov.Online[0].Connections != 1 {
		t.Fatalf("online %+v, want bob with 1 connection", ov.Online)
	}
	var msg struct{ Content, SenderID string }
	if len(ov.History) == 1 {
		mustJSON(t, ov.History[0].Data, &msg)
	}
	if len(ov.History) != 1 || ov.History[0].Event != "new_message" || msg.Content != "<b>maintenance</b> at 22:00" || msg.SenderID != "system" {
		t.Fatalf("history %+v, want the system message", ov.History)
	}
}

// TestConsoleDevTokenAndPage: the console page is served with its policy
// and no key; tokens are minted only under --dev; the API refuses without
// the key and says when it is disabled.
func TestConsoleDevTokenAndPage(t *testing.T) {
	dev := startNode(t, nil) // Dev: true
	resp, err := http.Get("http://" + dev.AdminAddr().String() + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /admin/: %d, CSP %q, type %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), resp.Header.Get("Content-Type"))
	}

	var minted struct {
		Token string `json:"token"`
	}
	apiJSON(t, dev, "POST", "/api/dev/tokens", `{"userId":"dora","name":"Dora","profiles":["P1"]}`, http.StatusOK, &minted)
	connect(t, dev.Addr().String(), minted.Token) // fails unless the token verifies
	// On the memory engines the node is the cluster: it lists itself and
	// finds the user's connection without asking anyone.
	var list struct {
		Nodes []nodeInfo `json:"nodes"`
	}
	apiJSON(t, dev, "GET", "/api/nodes", "", http.StatusOK, &list)
	if len(list.Nodes) != 1 || list.Nodes[0].ID != "test-node" {
		t.Fatalf("nodes %+v, want test-node alone", list.Nodes)
	}
	var got userConnsAnswer
	apiJSON(t, dev, "GET", "/api/users/dora/connections", "", http.StatusOK, &got)
	if len(got.Connections) != 1 || got.Connections[0].Node != "test-node" || !slices.Equal(got.Connections[0].Profiles, []string{"P1"}) {
		t.Fatalf("dora's connections %+v, want one on test-node with profile P1", got)
	}
	apiJSON(t, dev, "POST", "/api/dev/tokens", `{"userId":"has space"}`, http.StatusBadRequest, nil)

	prod := startNode(t, func(c *Config) { c.Dev = false })
	apiJSON(t, prod, "POST", "/api/dev/tokens", `{"userId":"dora"}`, http.StatusForbidden, nil)
	resp, err = http.Get("http://" + prod.AdminAddr().String() + "/api/nodes")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/nodes without the key: %d, want 401", resp.StatusCode)
	}

	off := startNode(t, func(c *Config) { c.APIKey = "" })
	resp, err = http.Get("http://" + off.AdminAddr().String() + "/api/node")
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || e.Error.Code != "API_DISABLED" {
		t.Fatalf("API disabled: %d %q, want 503 API_DISABLED", resp.StatusCode, e.Error.Code)
	}
	// The page learns it without a key.
	for n, want := range map[*Node]bool{off: false, prod: true} {
		resp, err = http.Get("http://" + n.AdminAddr().String() + "/admin/config.json")
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct{ APIEnabled bool }
		_ = json.NewDecoder(resp.Body).Decode(&cfg)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || cfg.APIEnabled != want {
			t.Fatalf("config.json: %d apiEnabled %v, want 200 %v", resp.StatusCode, cfg.APIEnabled, want)
		}
	}
}

// TestFanoutP99FromRegistry reads the fan-out histogram by name: n/a while
// it is not registered, then the p99 of what was observed in the window. It
// reads a registry of its own, so it holds whether or not the node's
// registers the histogram.
func TestFanoutP99FromRegistry(t *testing.T) {
	n := startNode(t, nil)
	reg := prometheus.NewRegistry()
	a := &announcer{srv: n.srv, metrics: reg}
	if p := a.fanoutP99(time.Now()); p != nil {
		t.Fatalf("p99 %v without the histogram, want nil", *p)
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: fanoutHistogram, Help: "test",
		Buckets: []float64{0.001, 0.002, 0.005, 0.01}})
	reg.MustRegister(h)
	t0 := time.Now()
	if p := a.fanoutP99(t0); p != nil {
		t.Fatalf("p99 %v with nothing observed, want nil", *p)
	}
	for range 98 {
		h.Observe(0.0015) // (0.001, 0.002]
	}
	h.Observe(0.004) // (0.002, 0.005]
	h.Observe(0.004)
	p := a.fanoutP99(t0.Add(time.Second))
	// rank 99 of 100: the 1st of 2 in (2 ms, 5 ms]: 2 + 3*(99-98)/2 = 3.5 ms.
	if p == nil || *p != 3.5 {
		t.Fatalf("p99 %v, want 3.5 ms", p)
	}
	// Past the window only what came later counts: nothing.
	if p := a.fanoutP99(t0.Add(fanoutWindow + 2*time.Second)); p != nil {
		t.Fatalf("p99 %v over a window with nothing observed, want nil", *p)
	}
	// Past +Inf's lower bound: the highest finite bound.
	h.Observe(1)
	if p := a.fanoutP99(t0.Add(fanoutWindow + 3*time.Second)); p == nil || *p != 10 {
		t.Fatalf("p99 %v of one observation past the buckets, want 10 ms", p)
	}
}

// TestLiveEventsSampledAndBounded: at most liveEventsPerSecond of a kind per
// second are kept (the rest counted), the newest liveEventsKept overall.
func TestLiveEventsSampledAndBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLiveEvents(func() time.Time { return now })
	for i := range liveEventsPerSecond + 10 {
		l.record(liveEvent{Kind: liveRefused, Detail: fmt.Sprint(i)})
	}
	l.record(liveEvent{Kind: liveSlowConsumer})
	events, newest, sampled := l.since(0)
	if len(events) != liveEventsPerSecond+1 || newest != uint64(liveEventsPerSecond+1) || sampled[liveRefused] != 10 {
		t.Fatalf("kept %d (newest %d), sampled out %v; want %d kept, 10 refusals sampled out",
			len(events), newest, sampled, liveEventsPerSecond+1)
	}
	for s := range 20 { // later seconds keep their own share; the ring keeps the newest
		now = now.Add(time.Second)
		for range liveEventsPerSecond {
			l.record(liveEvent{Kind: liveDisconnect, Code: fmt.Sprint(s)})
		}
	}
	events, newest, _ = l.since(0)
	if len(events) != liveEventsKept || events[len(events)-1].Seq != newest || events[0].Seq != newest-liveEventsKept+1 {
		t.Fatalf("%d events from seq %d to %d (newest %d), want the newest %d", len(events), events[0].Seq, events[len(events)-1].Seq, newest, liveEventsKept)
	}
	if got, _, _ := l.since(newest - 3); len(got) != 3 {
		t.Fatalf("since(newest-3) returned %d events, want 3", len(got))
	}
	if got, _, _ := l.since(newest + 100); len(got) != liveEventsKept {
		t.Fatalf("since a seq past the newest (another process) returned %d, want all %d kept", len(got), liveEventsKept)
	}
}

// TestLiveEventsRecordRefusals: a CONNECT refused for a bad token shows in
// the node's live events with its code and the client's address.
func TestLiveEventsRecordRefusals(t *testing.T) {
	n := startNode(t, nil)
	c := newClient(t, n.Addr().String(), "/messenger", "not-a-token")
	if code := connectErrorCode(t, c.nextPacket(5*time.Second)); code != codeAuthInvalid {
		t.Fatalf("code %q, want AUTH_INVALID", code)
	}
	var ev struct {
		Events []liveEvent `json:"events"`
	}
	apiJSON(t, n, "GET", "/api/node/events", "", http.StatusOK, &ev)
	if len(ev.Events) != 1 || ev.Events[0].Kind != liveRefused || ev.Events[0].Code != codeAuthInvalid ||
		!strings.HasPrefix(ev.Events[0].Remote, "127.0.0.1:") {
		t.Fatalf("live events %+v, want one AUTH_INVALID refusal from loopback", ev.Events)
	}
}

// TestConsoleLookupReportsUnreachableNodes: a node that holds connections
// in presence but cannot be asked (gone from the registry, or announcing an
// address nobody answers at) is named in errors; the others still answer.
func TestConsoleLookupReportsUnreachableNodes(t *testing.T) {
	nodes, rs, prefix := consoleClusterOn(t)
	n1, n2 := nodes[0], nodes[1]
	connect(t, n2.Addr().String(), token(t, "alice", time.Hour, nil))
	client := rs.Client()
	ctx := t.Context()
	for _, ghost := range []string{"ghost", "silent"} {
		p, err := presence.NewRedis(client, presence.RedisConfig{Prefix: prefix, NodeID: ghost})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		if ok, err := p.Acquire(ctx, "alice", ghost+"-conn", 3); !ok || err != nil {
			t.Fatalf("%s: acquire: %v %v", ghost, ok, err)
		}
	}
	// "silent" announces an address where nothing listens; "ghost" never announces.
	reg, err := registry.NewRedis(client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(nodeInfo{ID: "silent", APIURL: "http://127.0.0.1:1"})
	if err := reg.Announce(ctx, "silent", doc, time.Minute); err != nil {
		t.Fatal(err)
	}
	var got userConnsAnswer
	apiJSON(t, n1, "GET", "/api/users/alice/connections", "", http.StatusOK, &got)
	if len(got.Connections) != 1 || got.Connections[0].Node != "n2" {
		t.Fatalf("connections %+v, want n2's", got.Connections)
	}
	slices.SortFunc(got.Errors, func(a, b nodeError) int { return strings.Compare(a.Node, b.Node) })
	if len(got.Errors) != 2 || got.Errors[0].Node != "ghost" || !strings.Contains(got.Errors[0].Message, "not in the registry") ||
		got.Errors[1].Node != "silent" || !strings.Contains(got.Errors[1].Message, "node silent") {
		t.Fatalf("errors %+v, want ghost (not in the registry) and silent (unreachable)", got.Errors)
	}
}

// TestConsolePolicyNarrowsConnectSrc: the console page may open WebSockets
// only to this node's public listener, at the host the browser reached the
// page by, and to the configured console socket origins; config.json tells
// the test console the same list. A Host header that is no host name or
// address adds nothing.
func TestConsolePolicyNarrowsConnectSrc(t *testing.T) {
	n := startNode(t, func(c *Config) { c.ConsoleSocketOrigins = []string{"wss://Chat.Example.com/"} })
	_, port, _ := net.SplitHostPort(n.Addr().String())
	for host, want := range map[string][]string{
		"":               {"'self'", "ws://127.0.0.1:" + port, "wss://chat.example.com"}, // the client's own: the admin address
		"LocalHost:9090": {"'self'", "ws://localhost:" + port, "wss://chat.example.com"},
		"[::1]:9090":     {"'self'", "wss://chat.example.com"}, // no CSP form for an IPv6 address
		"my_lb:9090":     {"'self'", "wss://chat.example.com"}, // nor for a '_'
		"a;b":            {"'self'", "wss://chat.example.com"},
		"*":              {"'self'", "wss://chat.example.com"},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.AdminAddr().String()+"/admin/", nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var connect []string
		for d := range strings.SplitSeq(resp.Header.Get("Content-Security-Policy"), ";") {
			if f := strings.Fields(d); len(f) > 0 && f[0] == "connect-src" {
				connect = f[1:]
			}
		}
		if resp.StatusCode != http.StatusOK || !slices.Equal(connect, want) {
			t.Errorf("Host %q: %d, connect-src %q, want %q", host, resp.StatusCode, connect, want)
		}

		req, _ = http.NewRequest(http.MethodGet, "http://"+n.AdminAddr().String()+"/admin/config.json", nil)
		if host != "" {
			req.Host = host
		}
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct{ Sockets []string }
		_ = json.NewDecoder(resp.Body).Decode(&cfg)
		resp.Body.Close()
		if !slices.Equal(cfg.Sockets, want[1:]) {
			t.Errorf("Host %q: config.json sockets %q, want %q", host, cfg.Sockets, want[1:])
		}
	}
	for _, bad := range []string{"https://chat.example.com", "wss://chat.example.com/path", "wss://u:p@chat.example.com", "ws://", "wss://a b"} {
		cfg := Config{NodeID: "x", JWT: JWTConfig{Secret: []byte("s")}, Engines: memoryEngines(), ConsoleSocketOrigins: []string{bad}}
		if _, err := New(cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("console socket origin %q: %v, want ErrBadConfig", bad, err)
		}
	}
}
