package node

import (
	"strings"
	"testing"
	"time"

	"github.com/anchat/realtime/socketio"
)

// openClient opens a WebSocket with an extra query (e.g. "&token=...") and
// reads the open packet, without connecting a namespace.
func openClient(tb testing.TB, addr, query string) *testClient {
	tb.Helper()
	nc, br, err := dialRaw(tb, addr, query, nil)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	c := &testClient{t: tb, nc: nc, br: br, nsp: "/messenger", in: make(chan packet, 4096), done: make(chan struct{})}
	tb.Cleanup(func() { _ = nc.Close() })
	go c.readLoop()
	if open := c.next(5 * time.Second); open.engine != socketio.EngineOpen {
		tb.Fatalf("first packet %q is not an open packet", open.raw)
	}
	return c
}

// eventFailure is the body of a failed ack or of an error event.
type eventFailure struct {
	OK    bool `json:"ok"`
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
	Event string `json:"event"`
	Code  string `json:"code"`
}

// TestMalformedEventPayloadKeepsConnection: a well-framed EVENT whose
// payload is malformed or nested too deep is answered INVALID_PAYLOAD (as
// its ack, or as an error event without one) and the connection stays.
func TestMalformedEventPayloadKeepsConnection(t *testing.T) {
	for _, io := range []IOMode{IOEpoll, IOGoroutine} {
		t.Run(string(io), func(t *testing.T) {
			n := startNode(t, func(c *Config) { c.IO = io })
			c := connect(t, n.Addr().String(), token(t, "u1", time.Hour, nil))
			deep := strings.Repeat("[", 10000)
			acked := []string{
				`42/messenger,0["send_message",` + deep,                              // the payload, unterminated
				`42/messenger,1["send_message",` + deep + strings.Repeat("]", 10001), // well-formed but too deep
				`42/messenger,2` + deep,                                              // no event name at all
				`42/messenger,3{"chatId":"c1"}`,                                      // not an array
				`42/messenger,4["join_chat",{"chatId":}]`,                            // malformed JSON
				`42/messenger,5[1,2]`,                                                // name not a string
				`42/messenger,6["join_chat",{"chatId":"c1"}] x`,                      // trailing garbage
				`42/messenger,7`,                                                     // no payload
			}
			for i, frame := range acked {
				c.write(frame)
				p := c.nextPacket(5 * time.Second)
				if p.typ != socketio.Ack || p.id != int64(i) {
					t.Fatalf("frame %.50q: got %s, want the ack %d", frame, p, i)
				}
				var f eventFailure
				mustJSON(t, p.data, &f)
				if f.OK || f.Error.Code != codeInvalidPayload {
					t.Fatalf("frame %.50q: ack %s, want INVALID_PAYLOAD", frame, p.data)
				}
			}
			// Without an ack id: an error event naming the event when it can.
			for _, tc := range []struct{ frame, event string }{
				{`42/messenger,["send_message",` + deep, evSendMessage},
				{`42/messenger,["no_such_event",{`, "unknown"},
				{`42/messenger,{}`, "unknown"},
			} {
				c.write(tc.frame)
				p := c.waitEvent(evError, 5*time.Second)
				var f eventFailure
				mustJSON(t, p.data, &f)
				if f.Code != codeInvalidPayload || f.Event != tc.event {
					t.Fatalf("frame %.50q: error event %s, want INVALID_PAYLOAD for %q", tc.frame, p.data, tc.event)
				}
			}
			// Still connected and working.
			var ok struct {
				OK bool `json:"ok"`
			}
			mustJSON(t, c.emit("join_chat", map[string]string{"chatId": "c1"}, true), &ok)
			if !ok.OK {
				t.Fatal("join_chat after the malformed payloads was refused")
			}
		})
	}
}

// TestMalformedPacketHeaderCloses: a Socket.IO packet whose header is
// malformed still closes the connection (1002).
func TestMalformedPacketHeaderCloses(t *testing.T) {
	n := startNode(t, nil)
	for _, frame := range []string{`4x`, `45["x"]`, `421234567890123456789["x"]`, `43["x"]`} {
		c := connect(t, n.Addr().String(), token(t, "u1", time.Hour, nil))
		c.write(frame)
		c.expectClosed(5 * time.Second)
		if c.closeCode != 1002 {
			t.Errorf("%q: close code %d, want 1002", frame, c.closeCode)
		}
	}
}

// TestConnectWithoutTrailingComma: socket.io's parser reads `40/messenger`
// (no comma, no auth payload) as a CONNECT to /messenger.
func TestConnectWithoutTrailingComma(t *testing.T) {
	n := startNode(t, nil)
	c := openClient(t, n.Addr().String(), "&token="+token(t, "u1", time.Hour, nil))
	c.write("40/messenger")
	p := c.nextPacket(5 * time.Second)
	if p.typ != socketio.Connect || p.nsp != "/messenger" {
		t.Fatalf("got %s, want a CONNECT reply for /messenger", p)
	}
}
