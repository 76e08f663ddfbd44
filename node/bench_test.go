package node

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/gobwas/ws"

	"github.com/anchat/realtime/socketio"
)

var sendFrame = maskedFrame(ws.OpText, true, []byte(
	`42/messenger,12["send_message",{"chatId":"chat-42","content":"Hello there, how is it going today?","messageType":"TEXT","tempId":"tmp-123456"}]`))

// BenchmarkParseEventFrame measures the steady-state read path for one
// EVENT frame: header, unmasking, Engine.IO, Socket.IO and event split. It
// allocates nothing: the decoded payload is a slice of the read buffer.
func BenchmarkParseEventFrame(b *testing.B) {
	buf := append([]byte(nil), sendFrame...)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		h, hlen, ok, err := parseFrameHeader(buf, 65536)
		if !ok || err != nil {
			b.Fatal("header")
		}
		payload := buf[hlen : hlen+int(h.Length)]
		ws.Cipher(payload, h.Mask, 0)
		typ, data, err := socketio.ParseEngine(payload)
		if err != nil || typ != socketio.EngineMessage {
			b.Fatal("engine")
		}
		p, err := socketio.ParsePacket(data)
		if err != nil {
			b.Fatal(err)
		}
		name, arg, _, err := socketio.ParseEvent(p.Data)
		if err != nil || len(name) == 0 || len(arg) == 0 {
			b.Fatal("event")
		}
		ws.Cipher(payload, h.Mask, 0) // mask again for the next round
	}
}

var newMessagePayload = []byte(`{"eventId":"1732378000000-0","messageId":"1732378000000-0","chatId":"chat-42","senderId":"alice","senderName":"Alice","content":"Hello there, how is it going today? Here is a longer message body to be realistic.","messageType":"TEXT","attachments":[],"tempId":"tmp-123456","createdAt":"2026-11-23T18:00:00.000Z"}`)

var benchServer = &server{cfg: &Config{Namespace: "/messenger"}}

// BenchmarkEncodeEventFrame measures encoding one outgoing EVENT frame:
// one allocation, the frame itself (shared by every recipient).
func BenchmarkEncodeEventFrame(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		f := (&frames{event: "new_message", data: newMessagePayload, srv: benchServer}).get(nsChat)
		if len(f) == 0 {
			b.Fatal("empty")
		}
	}
}

// rwConn replays a request and discards the response, for the upgrade benchmark.
type rwConn struct {
	io.Reader
	io.Writer
}

// BenchmarkUpgrade measures the zero-copy upgrade with the node's hooks
// (path, query and Authorization header read in the hooks).
func BenchmarkUpgrade(b *testing.B) {
	srv := &server{cfg: &Config{}}
	req := []byte("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: chat.example.com\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer abc.def.ghi\r\n\r\n")
	var token string
	u := ws.Upgrader{
		OnRequest: func(uri []byte) error {
			if r := srv.checkRequest(uri, &token); r != nil {
				return r
			}
			return nil
		},
		OnHeader: func(key, value []byte) error {
			if bytes.EqualFold(key, []byte("Authorization")) {
				token = string(value)
			}
			return nil
		},
	}
	r := bytes.NewReader(req)
	w := bufio.NewWriter(io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(req)
		if _, err := u.Upgrade(rwConn{r, w}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBroadcast fans one chat event out to N local members: encoded once
// per namespace, the same bytes queued to each connection. Allocations per
// broadcast must not grow with N. Writers are held off (flushing is set) so
// the benchmark measures the fan-out itself; queues are reset between rounds.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			cfg := &Config{OutboundQueueBytes: 1 << 30, Namespace: "/messenger"}
			srv := &server{cfg: cfg}
			srv.metrics = newMetrics(srv)
			srv.hub = newHub(srv)
			members := make(map[*conn]nsMask, n)
			conns := make([]*conn, n)
			for i := range conns {
				c := &conn{srv: srv, flushing: true, out: make([][]byte, 0, 4)}
				conns[i] = c
				members[c] = nsChat
			}
			srv.hub.chats["c"] = members
			b.ReportAllocs()
			for b.Loop() {
				srv.hub.toChat("c", "1-0", evNewMessage, newMessagePayload, "")
				for _, c := range conns {
					c.out = c.out[:0]
					c.outBytes = 0
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}
