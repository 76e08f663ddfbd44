package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/leakcheck"
	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/membership"
	"github.com/anchat/realtime/presence"
	"github.com/anchat/realtime/socketio"
)

const testSecret = "test-secret"

func memoryEngines() Engines {
	return Engines{
		Bus:        bus.NewMemory(bus.MemoryConfig{}),
		Presence:   presence.NewMemory(),
		Membership: membership.NewMemory(),
		Limiter:    limits.NewMemory(nil),
	}
}

// startNode runs a node on loopback with memory engines; mod adjusts the
// config. The node is drained and stopped with the test.
func startNode(tb testing.TB, mod func(*Config)) *Node {
	tb.Helper()
	n, stop := runNode(tb, mod)
	tb.Cleanup(stop)
	return n
}

// runNode is startNode with the stop in the caller's hands: stop cancels
// Run, waits for it to return, checks that no node goroutine is left and
// closes the engines (the test built them and owns them: Run never closes
// them). The caller must call stop exactly once.
func runNode(tb testing.TB, mod func(*Config)) (*Node, func()) {
	tb.Helper()
	cfg := Config{
		Addr:          "127.0.0.1:0",
		AdminAddr:     "127.0.0.1:0",
		NodeID:        "test-node",
		JWT:           JWTConfig{Secret: []byte(testSecret)},
		APIKey:        "test-api-key",
		Dev:           true,
		DrainPeriod:   50 * time.Millisecond,
		StatsInterval: -1,
		Engines:       memoryEngines(),
		Logger:        zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel),
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		tb.Fatalf("new node: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		tb.Fatalf("node stopped: %v", err)
	}
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("node run: %v", err)
			}
			if left := n.srv.allGoroutines.count(); left != 0 {
				tb.Errorf("%d node goroutines still running after Run returned", left)
			}
		case <-time.After(15 * time.Second):
			tb.Errorf("node did not stop")
		}
		_ = cfg.Engines.Bus.Close()
		_ = cfg.Engines.Presence.Close()
	}
	return n, stop
}

func token(tb testing.TB, user string, ttl time.Duration, extra map[string]any) string {
	tb.Helper()
	claims := jwt.MapClaims{"sub": user, "exp": time.Now().Add(ttl).Unix()}
	for k, v := range extra {
		claims[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func connectErrorCode(tb testing.TB, p packet) string {
	tb.Helper()
	if p.typ != socketio.ConnectError {
		tb.Fatalf("expected CONNECT_ERROR, got %s", p)
	}
	var body struct {
		Message string `json:"message"`
		Data    struct {
			Code string `json:"code"`
		} `json:"data"`
	}
	mustJSON(tb, p.data, &body)
	if body.Message == "" {
		tb.Errorf("CONNECT_ERROR without message: %s", p)
	}
	return body.Data.Code
}

func TestConnectRefusals(t *testing.T) {
	n := startNode(t, func(c *Config) { c.Limits.MaxUserConnections = 2 })
	addr := n.Addr().String()
	cases := []struct {
		name, token, code string
	}{
		{"no token", "", codeAuthRequired},
		{"bad signature", token(t, "u", time.Hour, nil)[:20] + "x" + token(t, "u", time.Hour, nil)[21:], codeAuthInvalid},
		{"expired", token(t, "u", -time.Minute, nil), codeAuthExpired},
		{"no sub", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(testSecret))
			return s
		}(), codeAuthInvalid},
		{"no exp", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u"}).SignedString([]byte(testSecret))
			return s
		}(), codeAuthInvalid},
		{"wrong alg HS512", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(testSecret))
			return s
		}(), codeAuthInvalid},
		{"alg none", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}(), codeAuthInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, addr, "/messenger", tc.token)
			if got := connectErrorCode(t, c.nextPacket(5*time.Second)); got != tc.code {
				t.Fatalf("code %q, want %q", got, tc.code)
			}
		})
	}
	t.Run("connection limit frees at once", func(t *testing.T) {
		tok := token(t, "capped", time.Hour, nil)
		a := connect(t, addr, tok)
		connect(t, addr, tok)
		third := newClient(t, addr, "/messenger", tok)
		if got := connectErrorCode(t, third.nextPacket(5*time.Second)); got != codeConnectionLimit {
			t.Fatalf("third connection: %q, want CONNECTION_LIMIT", got)
		}
		_ = a.nc.Close()
		// The closed connection's slot is free as soon as the node sees it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			c := newClient(t, addr, "/messenger", tok)
			p := c.nextPacket(5 * time.Second)
			if p.typ == socketio.Connect {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("slot not freed: %s", p)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestTokenFromQueryAndHeader(t *testing.T) {
	n := startNode(t, nil)
	tok := token(t, "q", time.Hour, nil)
	for name, dial := range map[string]func() (*testClient, error){
		"query": func() (*testClient, error) {
			nc, br, err := dialRaw(t, n.Addr().String(), "&token="+tok, nil)
			return &testClient{nc: nc, br: br}, err
		},
		"header": func() (*testClient, error) {
			nc, br, err := dialRaw(t, n.Addr().String(), "", map[string]string{"Authorization": "Bearer " + tok})
			return &testClient{nc: nc, br: br}, err
		},
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := dial()
			if err != nil {
				t.Fatal(err)
			}
			c := &testClient{t: t, nc: raw.nc, br: raw.br, nsp: "/messenger", in: make(chan packet, 64), done: make(chan struct{})}
			t.Cleanup(func() { _ = c.nc.Close() })
			go c.readLoop()
			c.next(5 * time.Second) // open
			c.write("40/messenger,")
			if p := c.nextPacket(5 * time.Second); p.typ != socketio.Connect {
				t.Fatalf("connect with %s token: %s", name, p)
			}
		})
	}
}

func TestPollingRefusedWithJSON(t *testing.T) {
	n := startNode(t, nil)
	resp, err := http.Get("http://" + n.Addr().String() + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var e struct {
		Error struct {
			Code       string   `json:"code"`
			Transports []string `json:"transports"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Error.Transports) != 1 || e.Error.Transports[0] != "websocket" {
		t.Fatalf("body %q: %v", body, err)
	}
}

func TestEventAckAndNamespaces(t *testing.T) {
	n := startNode(t, nil)
	tok := token(t, "alice", time.Hour, nil)
	c := connect(t, n.Addr().String(), tok)
	var res struct {
		OK        bool   `json:"ok"`
		ChatID    string `json:"chatId"`
		Recovered bool   `json:"recovered"`
	}
	mustJSON(t, c.emit("join_chat", map[string]string{"chatId": "c1"}, true), &res)
	if !res.OK || res.ChatID != "c1" || !res.Recovered {
		t.Fatalf("join ack %+v", res)
	}
	// The root namespace on the same WebSocket.
	c.write("40{\"token\":\"" + tok + "\"}")
	for {
		p := c.nextPacket(5 * time.Second)
		if p.typ == socketio.Connect && p.nsp == "/" {
			break
		}
	}
	// An unknown namespace gets an error and the connection is closed.
	c.write("40/nope,")
	for {
		p := c.nextPacket(5 * time.Second)
		if p.typ == socketio.ConnectError && p.nsp == "/nope" {
			break
		}
	}
	c.expectClosed(5 * time.Second)
}

func TestBinaryRefusedAttachmentsDiscarded(t *testing.T) {
	n := startNode(t, nil)
	c := connect(t, n.Addr().String(), token(t, "bin", time.Hour, nil))
	c.write(`451-/messenger,0["send_message",{"_placeholder":true,"num":0}]`)
	_ = wsutilWriteBinary(c, []byte{1, 2, 3})
	p := c.nextPacket(5 * time.Second)
	var ack struct {
		OK    bool `json:"ok"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	mustJSON(t, p.data, &ack)
	if p.typ != socketio.Ack || ack.OK || ack.Error.Code != codeInvalidPayload {
		t.Fatalf("binary event answer %s", p)
	}
	// The connection survived the attachment frame.
	var res struct{ OK bool }
	mustJSON(t, c.emit("join_chat", map[string]string{"chatId": "b"}, true), &res)
	if !res.OK {
		t.Fatal("connection unusable after a refused binary packet")
	}
}

func TestPingTimeoutDropsSilentClient(t *testing.T) {
	leakcheck.Check(t)
	// Frequent pings, and a timeout a loaded machine under -race can answer
	// in (with 100 ms the answering client was dropped now and then): the
	// silent client's drop shows the timeout is enforced.
	n := startNode(t, func(c *Config) { c.PingInterval, c.PingTimeout = 100*time.Millisecond, time.Second })
	alive := connect(t, n.Addr().String(), token(t, "alive", time.Hour, nil))
	silent := connect(t, n.Addr().String(), token(t, "silent", time.Hour, nil))
	silent.noPong.Store(true)
	silent.expectClosed(3 * time.Second)
	time.Sleep(500 * time.Millisecond) // several intervals
	var res struct{ OK bool }
	mustJSON(t, alive.emit("join_chat", map[string]string{"chatId": "p"}, true), &res)
	if !res.OK {
		t.Fatal("answering client was dropped")
	}
}

func TestOversizedFrameClosesWith1009(t *testing.T) {
	n := startNode(t, func(c *Config) { c.Limits.MaxFrame = 1024 })
	c := connect(t, n.Addr().String(), token(t, "big", time.Hour, nil))
	c.write(`42/messenger,["send_message",{"content":"` + strings.Repeat("x", 2000) + `"}]`)
	c.expectClosed(5 * time.Second)
	if c.closeCode != 1009 {
		t.Fatalf("close code %d (error %v), want 1009", c.closeCode, c.closeErr)
	}
}

func TestTokenExpiryDisconnects(t *testing.T) {
	leakcheck.Check(t)
	// The sweep that ends expired connections ticks every tenth of the
	// shorter ping setting: 50 ms here. The ping timeout is long so that a
	// starved test client answering late is not closed for that first (a
	// 50 ms timeout did, 3 in 30 runs under load: the reset lost the event).
	n := startNode(t, func(c *Config) { c.PingInterval, c.PingTimeout = 500*time.Millisecond, 5*time.Second })
	c := connect(t, n.Addr().String(), token(t, "short", 1500*time.Millisecond, nil))
	p := c.waitEvent("error", 5*time.Second)
	var e struct{ Code string }
	mustJSON(t, p.data, &e)
	if e.Code != codeAuthExpired {
		t.Fatalf("error %s", p)
	}
	for {
		if p := c.nextPacket(5 * time.Second); p.typ == socketio.Disconnect {
			break
		}
	}
	c.expectClosed(5 * time.Second)
}

// TestIdleConnectionsHoldNoGoroutines holds 5,000 authenticated idle
// connections through the epoll path and checks the goroutine count does not
// grow with them. The clients are plain sockets with no goroutines of their
// own, so every goroutine counted belongs to the node or the test runtime.
func TestIdleConnectionsHoldNoGoroutines(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 sockets")
	}
	n := startNode(t, func(c *Config) {
		c.Limits.MaxUserConnections = 10000
		c.Limits.Connects = 100000
	})
	addr := n.Addr().String()
	base := runtime.NumGoroutine()
	tok := token(t, "idle", time.Hour, nil)
	const conns = 5000
	for i := range conns {
		nc, br, err := dialRaw(t, addr, "", nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		c := &testClient{t: t, nc: nc, br: br, nsp: "/messenger"}
		if _, err := wsutilReadText(c); err != nil { // open
			t.Fatal(err)
		}
		c.write(`40/messenger,{"token":"` + tok + `"}`)
		msg, err := wsutilReadText(c)
		if err != nil || !strings.HasPrefix(msg, "40/messenger,{\"sid\"") {
			t.Fatalf("connect %d: %q %v", i, msg, err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	got := runtime.NumGoroutine()
	t.Logf("goroutines: %d before, %d with %d idle connections", base, got, conns)
	if got-base > 50 || got > 100 {
		t.Fatalf("goroutines grew from %d to %d with %d idle connections", base, got, conns)
	}
}

// TestDrainSpreadsCloses checks the drain uses its whole period: with few
// connections the last close comes near the end, not after a few ticks.
func TestDrainSpreadsCloses(t *testing.T) {
	leakcheck.Check(t)
	n := startNode(t, func(c *Config) { c.DrainPeriod = time.Second })
	var clients []*testClient
	for i := range 5 {
		clients = append(clients, connect(t, n.Addr().String(), token(t, "d"+itoa(i), time.Hour, nil)))
	}
	start := time.Now()
	go n.srv.drain()
	closedAt := make([]time.Duration, len(clients))
	for i, c := range clients {
		select {
		case <-c.done:
			closedAt[i] = time.Since(start)
		case <-time.After(5 * time.Second):
			t.Fatal("connection still open after 5 s")
		}
	}
	// Waiting in order can only delay a measurement, never advance it, so
	// the latest is exact; the earliest is bounded by the client checked first.
	slices.Sort(closedAt)
	last := closedAt[len(closedAt)-1]
	if last < 600*time.Millisecond || last > 3*time.Second {
		t.Fatalf("last close after %v; want near the 1 s drain period (all: %v)", last, closedAt)
	}
}
