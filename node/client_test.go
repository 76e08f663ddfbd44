package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/anchat/realtime/socketio"
)

// testClient is a minimal Engine.IO v4 / Socket.IO v5 client over a real
// WebSocket, for the node's own tests. It answers pings automatically.
type testClient struct {
	t    testing.TB
	nc   net.Conn
	br   *bufio.Reader
	nsp  string
	in   chan packet
	done chan struct{}
	// closeCode is the WebSocket close code received, if any.
	closeCode ws.StatusCode
	closeErr  error // the read error when the close had no close frame
	ackSeq    int64
	noPong    atomic.Bool
	pings     atomic.Int64 // pings received
}

// packet is one received Socket.IO packet (or engine-level marker).
type packet struct {
	engine byte
	typ    socketio.PacketType
	nsp    string
	id     int64
	event  string
	data   json.RawMessage // arg0 for events, the payload for others
	raw    string
}

func dialRaw(tb testing.TB, addr, query string, header map[string]string) (net.Conn, *bufio.Reader, error) {
	tb.Helper()
	d := ws.Dialer{Timeout: 5 * time.Second}
	if len(header) > 0 {
		h := make(ws.HandshakeHeaderHTTP)
		for k, v := range header {
			h[k] = []string{v}
		}
		d.Header = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, br, _, err := d.Dial(ctx, "ws://"+addr+"/socket.io/?EIO=4&transport=websocket"+query)
	if err == nil && br == nil {
		br = bufio.NewReader(nc) // the dialer returns a reader only when it buffered bytes
	}
	return nc, br, err
}

// connectClient opens a WebSocket, reads the open packet and connects nsp
// with token (empty: no auth payload). It does not wait for the answer.
func newClient(tb testing.TB, addr, nsp, token string) *testClient {
	tb.Helper()
	nc, br, err := dialRaw(tb, addr, "", nil)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	c := &testClient{t: tb, nc: nc, br: br, nsp: nsp, in: make(chan packet, 4096), done: make(chan struct{})}
	tb.Cleanup(func() { _ = nc.Close() })
	go c.readLoop()
	open := c.next(5 * time.Second)
	if open.engine != socketio.EngineOpen {
		tb.Fatalf("first packet %q is not an open packet", open.raw)
	}
	var auth []byte
	if token != "" {
		auth, _ = json.Marshal(map[string]string{"token": token})
	}
	c.write(string(socketio.AppendClientConnect(nil, nsp, auth)))
	return c
}

// connect opens a client and requires a successful CONNECT.
func connect(tb testing.TB, addr, token string) *testClient {
	tb.Helper()
	c := newClient(tb, addr, "/messenger", token)
	p := c.nextPacket(5 * time.Second)
	if p.typ != socketio.Connect {
		tb.Fatalf("expected CONNECT reply, got %q", p.raw)
	}
	return c
}

func (c *testClient) write(s string) {
	if err := wsutil.WriteClientText(c.nc, []byte(s)); err != nil {
		c.t.Logf("write: %v", err)
	}
}

// joinWithoutLoop connects user to /messenger and joins chatID by reading
// the frames itself (the client has no readLoop): for clients that stop
// reading afterwards or are too many for a reader each.
func (c *testClient) joinWithoutLoop(user, chatID string) {
	c.t.Helper()
	if _, err := wsutilReadText(c); err != nil {
		c.t.Fatal(err)
	}
	c.write(`40/messenger,{"token":"` + token(c.t, user, time.Hour, nil) + `"}`)
	if msg, err := wsutilReadText(c); err != nil || !strings.HasPrefix(msg, "40/messenger") {
		c.t.Fatalf("connect %s: %q %v", user, msg, err)
	}
	c.write(`42/messenger,0["join_chat",{"chatId":"` + chatID + `"}]`)
	for {
		msg, err := wsutilReadText(c)
		if err != nil {
			c.t.Fatal(err)
		}
		if strings.HasPrefix(msg, "43/messenger,0") {
			return
		}
	}
}

func (c *testClient) readLoop() {
	defer close(c.done)
	for {
		msgs, err := wsutil.ReadServerMessage(struct {
			io.Reader
			io.Writer
		}{c.br, c.nc}, nil)
		if err != nil {
			var ce wsutil.ClosedError
			if errors.As(err, &ce) {
				c.closeCode = ce.Code
			} else {
				c.closeErr = err
			}
			return
		}
		for _, m := range msgs {
			if m.OpCode == ws.OpClose {
				c.closeCode, _ = ws.ParseCloseFrameData(m.Payload)
				return
			}
			if m.OpCode != ws.OpText {
				continue
			}
			s := string(m.Payload)
			if s == "2" {
				c.pings.Add(1)
				if !c.noPong.Load() {
					c.write("3")
				}
				continue
			}
			p := packet{engine: s[0], raw: s, id: -1}
			if s[0] == socketio.EngineMessage {
				sp, err := socketio.ParsePacket(m.Payload[1:])
				if err != nil {
					c.t.Errorf("client: bad packet %q: %v", s, err)
					continue
				}
				p.typ, p.nsp, p.id = sp.Type, string(sp.Namespace), sp.ID
				p.data = append(json.RawMessage(nil), sp.Data...)
				if sp.Type == socketio.Event {
					name, arg, _, err := socketio.ParseEvent(sp.Data)
					if err == nil {
						p.event = string(name)
						p.data = append(json.RawMessage(nil), arg...)
					}
				}
				if sp.Type == socketio.Ack {
					// unwrap the one-element array
					var arr []json.RawMessage
					if json.Unmarshal(sp.Data, &arr) == nil && len(arr) > 0 {
						p.data = arr[0]
					}
				}
			}
			select {
			case c.in <- p:
			default:
				c.t.Errorf("client: inbox full")
			}
		}
	}
}

// next returns the next packet of any kind or fails after d.
func (c *testClient) next(d time.Duration) packet {
	c.t.Helper()
	select {
	case p := <-c.in:
		return p
	case <-c.done:
		select {
		case p := <-c.in:
			return p
		default:
		}
		c.t.Fatalf("connection closed while waiting (close code %d, error %v)", c.closeCode, c.closeErr)
	case <-time.After(d):
		c.t.Fatalf("no packet within %v", d)
	}
	return packet{}
}

func (c *testClient) nextPacket(d time.Duration) packet {
	c.t.Helper()
	for {
		p := c.next(d)
		if p.engine == socketio.EngineMessage {
			return p
		}
	}
}

// waitEvent returns the next event named name, skipping others.
func (c *testClient) waitEvent(name string, d time.Duration) packet {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		p := c.nextPacket(time.Until(deadline))
		if p.typ == socketio.Event && p.event == name {
			return p
		}
	}
}

// emit sends an event; with ack it returns the ack's payload.
func (c *testClient) emit(event string, data any, ack bool) json.RawMessage {
	c.t.Helper()
	b, _ := json.Marshal(data)
	id := int64(-1)
	if ack {
		id = c.ackSeq
		c.ackSeq++
	}
	c.write(string(socketio.AppendEvent(nil, c.nsp, id, event, b)))
	if !ack {
		return nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := c.nextPacket(time.Until(deadline))
		if p.typ == socketio.Ack && p.id == id {
			return p.data
		}
	}
}

// expectClosed waits for the server to close the connection.
func (c *testClient) expectClosed(d time.Duration) {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(d):
		c.t.Fatalf("connection still open after %v", d)
	}
}

func mustJSON(tb testing.TB, raw json.RawMessage, v any) {
	tb.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		tb.Fatalf("decode %s: %v", raw, err)
	}
}

func (p packet) String() string { return fmt.Sprintf("%q", strings.TrimSpace(p.raw)) }
