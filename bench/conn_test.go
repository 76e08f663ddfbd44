package bench

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// serverFrame is an unmasked server text frame.
func serverFrame(payload string) []byte {
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, ws.NewTextFrame([]byte(payload)))
	return b.Bytes()
}

// Frames split anywhere across reads are all delivered, once, in order.
func TestFeedSplitsAnywhere(t *testing.T) {
	msgs := []string{"2", `42/messenger,["new_message",{"content":"t=1;c=0;m=0;q=0;"}]`, strings.Repeat("4", 300), "6"}
	var wire []byte
	for _, m := range msgs {
		wire = append(wire, serverFrame(m)...)
	}
	for cut1 := 0; cut1 <= len(wire); cut1++ {
		for _, cut2 := range []int{cut1, min(cut1+1, len(wire)), min(cut1+130, len(wire)), len(wire)} {
			c := &Conn{}
			var got []string
			h := func(c *Conn, m []byte) error { got = append(got, string(m)); return nil }
			for _, part := range [][]byte{wire[:cut1], wire[cut1:cut2], wire[cut2:]} {
				if err := c.feed(append([]byte(nil), part...), h); err != nil {
					t.Fatal(err)
				}
			}
			if strings.Join(got, "|") != strings.Join(msgs, "|") {
				t.Fatalf("cuts %d,%d: got %q", cut1, cut2, got)
			}
			if len(c.pending) != 0 {
				t.Fatalf("cuts %d,%d: %d bytes left pending", cut1, cut2, len(c.pending))
			}
		}
	}
}

// RFC 6455 section 5.7: a fragmented "Hello" with a ping in between.
func TestFeedFragmentsAndControl(t *testing.T) {
	client, server := tcpPipe(t)
	defer client.Close()
	defer server.Close()
	c := &Conn{nc: client}
	var got []string
	h := func(c *Conn, m []byte) error { got = append(got, string(m)); return nil }
	pong := make(chan []byte, 1)
	go func() {
		f, err := ws.ReadFrame(server)
		if err == nil {
			f = ws.UnmaskFrameInPlace(f)
		}
		pong <- append([]byte{byte(f.Header.OpCode)}, f.Payload...)
	}()
	wire := unhex(t, "01 03 48656c 89 02 6869 80 02 6c6f")
	if err := c.feed(wire, h); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "Hello" {
		t.Fatalf("got %q", got)
	}
	if p := <-pong; p[0] != byte(ws.OpPong) || string(p[1:]) != "hi" {
		t.Fatalf("ping answered with % x", p)
	}
	go func() { _, _ = ws.ReadFrame(server) }() // the close echo
	if err := c.feed(serverFrame2(ws.OpClose, nil), h); !errors.Is(err, errConnClosed) {
		t.Fatalf("close frame: err %v", err)
	}
}

func serverFrame2(op ws.OpCode, p []byte) []byte {
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, ws.NewFrame(op, true, p))
	return b.Bytes()
}

// fakeServer answers one client handshake over a pipe, the way
// PROTOCOL.md and the Socket.IO v5 spec describe it, and returns what the
// client sent.
func fakeServer(t *testing.T, server net.Conn, replies map[string]string) chan []string {
	t.Helper()
	got := make(chan []string, 1)
	go func() {
		var seen []string
		defer func() { got <- seen }()
		if err := wsutil.WriteServerText(server, []byte(`0{"sid":"eio1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}`)); err != nil {
			return
		}
		for {
			msg, err := wsutil.ReadClientText(server)
			if err != nil {
				return
			}
			seen = append(seen, string(msg))
			for prefix, reply := range replies {
				if strings.HasPrefix(string(msg), prefix) {
					for _, r := range strings.Split(reply, "\n") {
						_ = wsutil.WriteServerText(server, []byte(r))
					}
				}
			}
		}
	}()
	return got
}

func TestHandshakeSpecFrames(t *testing.T) {
	client, server := tcpPipe(t)
	got := fakeServer(t, server, map[string]string{
		"40/messenger,": `40/messenger,{"sid":"sio1"}`,
		// our node: chat_joined then the ack; then a message in the same burst
		"42/messenger,0": `42/messenger,["chat_joined",{"chatId":"c1","recovered":true,"missed":[]}]` + "\n" +
			`43/messenger,0[{"ok":true,"chatId":"c1","recovered":true,"missed":[]}]` + "\n" +
			`42/messenger,["new_message",{"eventId":"1","chatId":"c1","content":"t=5;c=0;m=0;q=0;xx"}]`,
	})
	c := &Conn{nc: client}
	var after []string
	err := c.handshake(time.Now().Add(5*time.Second), "TOKEN", "/messenger", "c1", true, make([]byte, 4096),
		func(c *Conn, m []byte) error { after = append(after, string(m)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if c.state.Load() != stateReady {
		t.Fatal("not ready")
	}
	// What arrived after the ack in the same read may still be pending; drain it.
	for len(after) == 0 {
		buf := make([]byte, 4096)
		n, err := client.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.feed(buf[:n], func(c *Conn, m []byte) error { after = append(after, string(m)); return nil })
	}
	client.Close()
	sent := <-got
	want := []string{`40/messenger,{"token":"TOKEN"}`, `42/messenger,0["join_chat",{"chatId":"c1"}]`}
	if strings.Join(sent, "|") != strings.Join(want, "|") {
		t.Fatalf("client sent %q, want %q", sent, want)
	}
	if len(after) != 1 || !strings.Contains(after[0], "new_message") {
		t.Fatalf("after the join: %q", after)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	for name, tt := range map[string]struct {
		replies map[string]string
		code    string
	}{
		"connect error":         {map[string]string{"40/": `44/messenger,{"message":"token expired","data":{"code":"AUTH_EXPIRED"}}`}, "connect_error:AUTH_EXPIRED"},
		"peer middleware error": {map[string]string{"40/": `44/messenger,{"message":"unauthorized"}`}, "connect_error:unauthorized"},
		"join refused": {map[string]string{
			"40/": `40/messenger,{"sid":"s"}`,
			"42/": `43/messenger,0[{"ok":false,"error":{"code":"RATE_LIMITED","message":"later","retryAfterMs":10}}]`,
		}, "join:RATE_LIMITED"},
		"peer join refused": {map[string]string{
			"40/": `40/messenger,{"sid":"s"}`,
			"42/": `43/messenger,0[{"ok":false,"error":"bad chatId"}]`,
		}, "join:bad chatId"},
	} {
		t.Run(name, func(t *testing.T) {
			client, server := tcpPipe(t)
			defer client.Close()
			fakeServer(t, server, tt.replies)
			c := &Conn{nc: client}
			err := c.handshake(time.Now().Add(5*time.Second), "T", "/messenger", "c1", true, make([]byte, 4096), nil)
			var he *handshakeError
			if !errors.As(err, &he) || he.code != tt.code {
				t.Fatalf("err %v, want code %s", err, tt.code)
			}
			if classify(err) != tt.code {
				t.Fatalf("classify: %s", classify(err))
			}
		})
	}
}

func TestHandshakeAnswersPing(t *testing.T) {
	client, server := tcpPipe(t)
	defer client.Close()
	got := fakeServer(t, server, map[string]string{"40/": "2\n" + `40/messenger,{"sid":"s"}`})
	c := &Conn{nc: client}
	if err := c.handshake(time.Now().Add(5*time.Second), "T", "/messenger", "", false, make([]byte, 4096), nil); err != nil {
		t.Fatal(err)
	}
	client.Close()
	if sent := <-got; len(sent) != 2 || sent[1] != "3" {
		t.Fatalf("client sent %q, want the CONNECT then a pong", sent)
	}
}

func TestEventNameAndMarkers(t *testing.T) {
	ours := `42/messenger,["new_message",{"eventId":"17","messageId":"m1","chatId":"bx-c3","senderId":"bx-31","content":"t=1700000000123456789;c=3;m=1;q=42;xxxx","messageType":"TEXT","attachments":[],"tempId":"42","createdAt":"2026-01-01T00:00:00.000Z"}]`
	peer := `42/messenger,["new_message",{"messageId":"f7c1","chatId":"bx-c3","senderId":"bx-31","content":"t=1700000000123456789;c=3;m=1;q=42;xxxx","messageType":"TEXT","createdAt":"2026-01-01T00:00:00.000Z","tempId":"42"}]`
	want := marker{t: 1700000000123456789, group: 3, member: 1, seq: 42}
	for _, f := range []string{ours, peer, strings.Replace(ours, "/messenger,", "", 1), strings.Replace(ours, `["new`, `12["new`, 1)} {
		name, ok := eventName([]byte(f))
		if !ok || string(name) != "new_message" {
			t.Fatalf("eventName(%.30q) = %q %v", f, name, ok)
		}
		if m, ok := findMarker([]byte(f), fieldContent); !ok || m != want {
			t.Fatalf("marker %+v %v", m, ok)
		}
	}
	// a ';' in an earlier field falls back to the field search
	odd := strings.Replace(ours, `"senderId":"bx-31"`, `"senderName":"a;b"`, 1)
	if m, ok := findMarker([]byte(odd), fieldContent); !ok || m != want {
		t.Fatalf("marker after an earlier ';': %+v %v", m, ok)
	}
	toast := `42/messenger,["message_toast",{"profileId":"p","dialogId":"d","messageId":"m","fromId":"f","text":"t=9;c=2;m=0;q=7;","createdAt":"x"}]`
	if m, ok := findMarker([]byte(toast), fieldText); !ok || m != (marker{9, 2, 0, 7}) {
		t.Fatalf("toast marker %+v %v", m, ok)
	}
	for _, bad := range []string{`t=;c=1;m=1;q=1;`, `t=1;c=1;m=1;q=1`, `t=1;x=1;m=1;q=1;`, `t=99999999999999999999;c=1;m=1;q=1;`} {
		if _, ok := parseMarker([]byte(bad)); ok {
			t.Errorf("parseMarker(%q) accepted", bad)
		}
	}
	for _, f := range []string{"43/messenger,0[{}]", "2", "42/messenger", `42/messenger,[1]`} {
		if _, ok := eventName([]byte(f)); ok {
			t.Errorf("eventName(%q) accepted", f)
		}
	}
	if got := string(appendMarker(nil, want)); got != "t=1700000000123456789;c=3;m=1;q=42;" {
		t.Fatal(got)
	}
}

// The receive side counts each message once and classifies the rest.
func TestHandlerCountsDeliveries(t *testing.T) {
	cfg := &Config{Scenario: ScenarioChat, Targets: []string{"x:1"}, JWTSecret: "s", Conns: 20, ChatSize: 10}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	w := &worker{cfg: cfg, lo: 0, hi: 20}
	h := &handler{w: w, rec: &recorder{}, now: 1000}
	c := &Conn{idx: 5, group: 0, member: 5}
	msg := func(group, member, seq int) []byte {
		return []byte(`42/messenger,["new_message",{"chatId":"x","content":"` + string(appendMarker(nil, marker{t: 900, group: int64(group), member: int64(member), seq: int64(seq)})) + `"}]`)
	}
	for _, m := range [][]byte{
		msg(0, 1, 0), msg(0, 1, 1), msg(0, 1, 1), // dup
		msg(0, 2, 3), msg(0, 2, 1), // out of order
		msg(1, 2, 0), // another chat's
		[]byte(`42/messenger,["new_message",{"content":"hello"}]`), // no marker
		[]byte(`42/messenger,["message_sent",{"tempId":"1"}]`),     // not counted
		[]byte(`42/messenger,["error",{"code":"RATE_LIMITED"}]`),   // counted as error
		[]byte(`43/messenger,4[{"ok":true}]`),                      // ack: ignored
	} {
		if err := h.on(c, m); err != nil {
			t.Fatal(err)
		}
	}
	r := h.rec
	if r.received != 4 || r.dups != 1 || r.ooo != 1 || r.misrouted != 1 || r.malformed != 1 || r.errors["event_error:RATE_LIMITED"] != 1 {
		t.Fatalf("received %d dups %d ooo %d misrouted %d malformed %d errors %v", r.received, r.dups, r.ooo, r.misrouted, r.malformed, r.errors)
	}
	if r.lat.Count() != 4 || r.lat.Max() != 100 {
		t.Fatalf("latency samples %d max %v", r.lat.Count(), r.lat.Max())
	}
	// server DISCONNECT ends the connection
	if err := h.on(c, []byte("41/messenger,")); !errors.Is(err, errConnClosed) {
		t.Fatalf("disconnect: %v", err)
	}
}

func TestHandlerTyping(t *testing.T) {
	cfg := &Config{Scenario: ScenarioTyping, Targets: []string{"x:1"}, JWTSecret: "s", RunID: "r", Conns: 20, ChatSize: 10}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	w := &worker{cfg: cfg, lo: 0, hi: 10, typingSent: make([]atomic.Int64, 10)}
	w.typingSent[3].Store(500 | 1) // user 3 started typing at 500
	h := &handler{w: w, rec: &recorder{}, now: 800}
	c := &Conn{idx: 5, group: 0}
	typing := func(user string, on bool) []byte {
		v := "false"
		if on {
			v = "true"
		}
		return []byte(`42/messenger,["user_typing",{"chatId":"br-c0","userId":"` + user + `","isTyping":` + v + `}]`)
	}
	for _, m := range [][]byte{typing("br-3", true), typing("br-4", true), typing("br-15", true), typing("br-5", true), typing("br-3", false)} {
		_ = h.on(c, m)
	}
	r := h.rec
	// 3 start, 4 start, 3 stop: received; 15 is another chat's, 5 is the receiver itself.
	if r.received != 3 || r.misrouted != 2 || r.lat.Count() != 1 || r.lat.Max() != 300 {
		t.Fatalf("received %d misrouted %d latency samples %d max %v", r.received, r.misrouted, r.lat.Count(), r.lat.Max())
	}
}

// tcpPipe is a connected pair of loopback TCP connections (buffered, unlike
// net.Pipe, as real sockets are).
func tcpPipe(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
