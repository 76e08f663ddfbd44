package node

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/anchat/realtime/internal/syncbuf"
	"github.com/anchat/realtime/presence"
	"github.com/anchat/realtime/registry"
)

// keyTrap is a real HTTP listener that records every connection and the
// Authorization header of every request it gets.
type keyTrap struct {
	*httptest.Server
	conns atomic.Int64
	mu    sync.Mutex // guards auth
	auth  []string
}

// newKeyTrap listens on ip (a loopback address) and answers with h, or
// with an empty connection list when h is nil.
func newKeyTrap(t *testing.T, ip string, h http.HandlerFunc) *keyTrap {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	k := &keyTrap{}
	k.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.auth = append(k.auth, r.Header.Get("Authorization"))
		k.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"connections":[]}`))
	}))
	_ = k.Listener.Close()
	k.Listener = ln
	k.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			k.conns.Add(1)
		}
	}
	k.Start()
	t.Cleanup(k.Close)
	return k
}

// seen is what the trap received: connections and Authorization headers.
func (k *keyTrap) seen() (int64, []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.conns.Load(), append([]string(nil), k.auth...)
}

// TestPeerAPIKeyGoesOnlyToAllowedHosts: nodes announced in Redis by
// someone who can write it, with apiUrls outside --peer-api-hosts (an
// address not listed, a path and query, credentials, another scheme, an
// overlong URL, a redirect to a listener the key must not reach): the
// listeners behind them never see a connection or the key, the console's
// answer names each refused node, and the refusal is logged. A real peer
// inside the allowed hosts still answers.
func TestPeerAPIKeyGoesOnlyToAllowedHosts(t *testing.T) {
	var logs syncbuf.Buffer
	nodes, rs, prefix := consoleClusterWith(t, func(c *Config) {
		c.PeerAPIHosts = []string{"127.0.0.1"}
		c.Logger = zerolog.New(&logs).Level(zerolog.WarnLevel)
	})
	n1, n2 := nodes[0], nodes[1]
	connect(t, n2.Addr().String(), token(t, "alice", time.Hour, nil))

	outside := newKeyTrap(t, "127.0.0.2", nil) // a loopback address not listed
	trap := newKeyTrap(t, "127.0.0.1", nil)    // listed, but only reachable through refused URLs
	redirector := newKeyTrap(t, "127.0.0.1", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, trap.URL+r.URL.Path, http.StatusTemporaryRedirect)
	})
	trapHost := strings.TrimPrefix(trap.URL, "http://")
	announced := map[string]string{
		"outside":    outside.URL,
		"pathy":      trap.URL + "/api/node/users/x/connections?y=",
		"creds":      "http://op:pw@" + trapHost,
		"ftp":        "ftp://" + trapHost,
		"long":       trap.URL + "/" + strings.Repeat("x", 600),
		"redirector": redirector.URL,
	}
	ctx := t.Context()
	client := rs.Client()
	reg, err := registry.NewRedis(client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	for id, apiURL := range announced {
		p, err := presence.NewRedis(client, presence.RedisConfig{Prefix: prefix, NodeID: id})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		if ok, err := p.Acquire(ctx, "alice", id+"-conn", 100); !ok || err != nil {
			t.Fatalf("%s: acquire: %v %v", id, ok, err)
		}
		doc, _ := json.Marshal(nodeInfo{ID: id, APIURL: apiURL})
		if err := reg.Announce(ctx, id, doc, time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	var got userConnsAnswer
	apiJSON(t, n1, "GET", "/api/users/alice/connections", "", http.StatusOK, &got)
	if len(got.Connections) != 1 || got.Connections[0].Node != "n2" {
		t.Errorf("connections %+v, want n2's (an allowed peer still answers)", got.Connections)
	}
	msgs := map[string]string{}
	for _, e := range got.Errors {
		msgs[e.Node] = e.Message
	}
	for id := range announced {
		want := "refused"
		if id == "redirector" {
			want = "redirect"
		}
		if !strings.Contains(msgs[id], want) {
			t.Errorf("node %s: error %q, want it to say %q", id, msgs[id], want)
		}
	}
	// The Cluster page marks every refused node, and only those.
	var list struct {
		Nodes []nodeInfo `json:"nodes"`
	}
	apiJSON(t, n1, "GET", "/api/nodes", "", http.StatusOK, &list)
	for _, n := range list.Nodes {
		_, forged := announced[n.ID]
		refused := forged && n.ID != "redirector"
		if refused != strings.Contains(n.APIURLRefused, "refused") {
			t.Errorf("GET /api/nodes: node %s apiUrlRefused %q, want refused %v", n.ID, n.APIURLRefused, refused)
		}
	}
	// The events of a refused node, through n1: an error, not the key sent.
	resp, text := apiCall(t, n1, "GET", "/api/nodes/outside/events", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(text, "refused") {
		t.Errorf("events of a refused node: %d %s, want 502 naming the refusal", resp.StatusCode, text)
	}

	for name, k := range map[string]*keyTrap{"outside": outside, "trap": trap} {
		if conns, auth := k.seen(); conns != 0 || len(auth) != 0 {
			t.Errorf("%s listener: %d connections, Authorization %q; want none", name, conns, auth)
		}
	}
	if _, auth := redirector.seen(); len(auth) == 0 {
		t.Error("the allowed redirector was never asked")
	}
	if !strings.Contains(logs.String(), "peer apiUrl refused") || !strings.Contains(logs.String(), `"node":"outside"`) {
		t.Errorf("no log line for the refused peer; logs:\n%s", logs.String())
	}
	if got := counterValue(n1.srv.metrics.peersRefused); got == 0 {
		t.Error("realtime_peer_api_refused_total not counted")
	}
}

// TestPeerPolicyChecksTheAddressConnectedTo: a host name not listed is
// accepted only if the address it resolves to is; the check is made on the
// connection itself, so the listener behind a name resolving elsewhere
// never sees a connection.
func TestPeerPolicyChecksTheAddressConnectedTo(t *testing.T) {
	trap := newKeyTrap(t, "127.0.0.1", nil)
	_, port, _ := net.SplitHostPort(trap.Listener.Addr().String())
	for _, tc := range []struct {
		hosts []string
		ok    bool
	}{
		{[]string{"127.0.0.2/32"}, false}, // localhost resolves to 127.0.0.1
		{[]string{"127.0.0.0/8"}, true},
		{[]string{"localhost"}, true},
		{[]string{"*.localdomain", "127.0.0.2"}, false},
	} {
		p, err := newPeerPolicy(tc.hosts, "")
		if err != nil {
			t.Fatal(err)
		}
		base, err := p.target("http://localhost:" + port)
		if err != nil {
			t.Fatalf("%v: target: %v", tc.hosts, err)
		}
		client := newPeerClient(p)
		before, _ := trap.seen()
		req, _ := http.NewRequest(http.MethodGet, base+"/api/node", nil)
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		client.CloseIdleConnections()
		after, auth := trap.seen()
		if tc.ok && (err != nil || after != before+1) {
			t.Errorf("%v: %v, %d new connections; want one", tc.hosts, err, after-before)
		}
		if !tc.ok && (!errors.Is(err, errPeerRefused) || after != before) {
			t.Errorf("%v: %v, %d new connections (Authorization %q); want refused before connecting", tc.hosts, err, after-before, auth)
		}
	}
}

// TestPeerPolicyTarget: what an announced apiUrl may be under the default
// hosts (loopback and private ranges) and under listed ones.
func TestPeerPolicyTarget(t *testing.T) {
	for _, tc := range []struct {
		hosts  []string
		own    string // this node's own apiUrl
		url    string
		want   string // "" refused
		reason string // in the refusal
	}{
		{nil, "", "http://10.1.2.3:9090", "http://10.1.2.3:9090", ""},
		{nil, "", "http://10.1.2.3:9090/", "http://10.1.2.3:9090", ""},
		{nil, "", "https://[fd00::1]:9090", "https://[fd00::1]:9090", ""},
		{nil, "", "http://[::ffff:192.168.1.1]:9090", "http://[::ffff:192.168.1.1]:9090", ""},
		{nil, "", "http://realtime-0.realtime:9090", "http://realtime-0.realtime:9090", ""}, // resolved at connect time
		{nil, "", "http://203.0.113.5:9090", "", "not among the peer API hosts private"},
		{nil, "", "http://169.254.169.254", "", "not among"}, // link-local: cloud metadata
		{nil, "", "http://[fe80::1%25eth0]:9090", "", "not among"},
		{nil, "", "http://10.1.2.3:9090/api", "", "path"},
		{nil, "", "http://10.1.2.3:9090?x=1", "", "query"},
		{nil, "", "http://10.1.2.3:9090#f", "", "fragment"},
		{nil, "", "http://a:b@10.1.2.3:9090", "", "credentials"},
		{nil, "", "file:///etc/passwd", "", "not http"},
		{nil, "", "//10.1.2.3:9090", "", "not http"},
		{nil, "", "http://10.1.2.3:99999", "", "port"},
		{nil, "", "http://10.1.2.3:", "", "no host"},
		{nil, "", "http://ex%41mple.internal:9090", "", "not a URL"},
		{nil, "", "http://" + strings.Repeat("a", peerMaxURL), "", "longer than"},
		{nil, "https://me:9090", "http://10.1.2.3:9090", "", "https"},
		{nil, "https://me:9090", "https://10.1.2.3:9090", "https://10.1.2.3:9090", ""},
		{[]string{"10.0.0.0/16"}, "", "http://10.1.2.3:9090", "", "not among the peer API hosts 10.0.0.0/16"},
		{[]string{"*.rt.svc"}, "", "http://n1.rt.svc:9090", "http://n1.rt.svc:9090", ""},
		{[]string{"*.rt.svc"}, "", "http://n1.other.svc:9090", "", "not among"},
		{[]string{"*.rt.svc"}, "", "http://10.1.2.3:9090", "", "not among"},
		{[]string{"n1.rt.svc"}, "", "http://N1.RT.SVC:9090", "http://N1.RT.SVC:9090", ""},
		{[]string{"*"}, "", "http://203.0.113.5:9090", "http://203.0.113.5:9090", ""},
	} {
		p, err := newPeerPolicy(tc.hosts, tc.own)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.target(tc.url)
		if got != tc.want || (tc.want == "" && (!errors.Is(err, errPeerRefused) || !strings.Contains(err.Error(), tc.reason))) {
			t.Errorf("hosts %v own %q: target(%q) = %q, %v; want %q (refused: %q)", tc.hosts, tc.own, tc.url, got, err, tc.want, tc.reason)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "fe80::/10%eth0", "*.", "a b", "http://x", "*x.y"} {
		if _, err := newPeerPolicy([]string{bad}, ""); !errors.Is(err, ErrBadConfig) {
			t.Errorf("peer API host %q: %v, want ErrBadConfig", bad, err)
		}
	}
}
