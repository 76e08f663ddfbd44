package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// A WebSocket conformance table in the style of the Autobahn test suite's
// cases 1-7 and 9 (framing, pings and pongs, reserved bits, opcodes,
// fragmentation, UTF-8, close handling, limits), run against a real node
// over loopback with both readers. The Autobahn suite itself cannot be
// installed here; the cases follow its numbering where one exists.
//
// The node speaks Engine.IO, not echo: a text message "2<data>" (an
// Engine.IO ping) is answered "3<data>", which serves as the echo. A binary
// message outside Socket.IO attachments is unsupported data (1003), so
// Autobahn's binary echo cases become that close.

// wsf builds one client frame; its zero options are a masked final frame.
type wsf struct {
	op       ws.OpCode
	payload  []byte
	noFin    bool
	rsv      byte // the three RSV bits, 0-7
	unmasked bool
}

func (f wsf) bytes() []byte {
	b0 := byte(f.op) | f.rsv<<4
	if !f.noFin {
		b0 |= 0x80
	}
	out := []byte{b0}
	maskBit := byte(0x80)
	if f.unmasked {
		maskBit = 0
	}
	switch n := len(f.payload); {
	case n < 126:
		out = append(out, maskBit|byte(n))
	case n <= 0xffff:
		out = append(out, maskBit|126, byte(n>>8), byte(n))
	default:
		out = append(out, maskBit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	p := append([]byte(nil), f.payload...)
	if !f.unmasked {
		mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
		out = append(out, mask[:]...)
		ws.Cipher(p, mask, 0)
	}
	return append(out, p...)
}

func text(s string) wsf     { return wsf{op: ws.OpText, payload: []byte(s)} }
func textPart(s string) wsf { return wsf{op: ws.OpText, payload: []byte(s), noFin: true} }
func cont(s string) wsf     { return wsf{op: ws.OpContinuation, payload: []byte(s)} }
func contPart(s string) wsf { return wsf{op: ws.OpContinuation, payload: []byte(s), noFin: true} }
func ping(s string) wsf     { return wsf{op: ws.OpPing, payload: []byte(s)} }
func pong(s string) wsf     { return wsf{op: ws.OpPong, payload: []byte(s)} }
func closeWith(code uint16, reason string) wsf {
	return wsf{op: ws.OpClose, payload: append(binary.BigEndian.AppendUint16(nil, code), reason...)}
}

// want is one frame the server must send: a text message or a pong.
type want struct {
	op      ws.OpCode
	payload string
}

func echoed(data string) want { return want{ws.OpText, "3" + data} }
func ponged(data string) want { return want{ws.OpPong, data} }

// stays is the close code of a case after which the connection stays open.
const stays = 0

type conformanceCase struct {
	name  string
	send  []wsf
	want  []want
	close ws.StatusCode // the server's close code at the end, or stays
}

func conformanceCases() []conformanceCase {
	const limit = 65536 // Limits.MaxFrame's default
	var cs []conformanceCase
	add := func(name string, close ws.StatusCode, send []wsf, want ...want) {
		cs = append(cs, conformanceCase{name: name, send: send, want: want, close: close})
	}

	// 1: framing, text payloads of every length class up to the limit.
	for _, n := range []int{0, 124, 125, 126, 127, 128, 65534, 65535} {
		data := strings.Repeat("*", n)
		add(fmt.Sprintf("1.1 text %d", n+1), stays, []wsf{text("2" + data)}, echoed(data))
	}
	// An empty message is not an Engine.IO packet.
	add("1.1 empty text", ws.StatusProtocolError, []wsf{text("")})
	add("1.1 empty text in empty fragments", ws.StatusProtocolError, []wsf{textPart(""), cont("")})
	add("1.2 binary message", ws.StatusUnsupportedData, []wsf{{op: ws.OpBinary, payload: []byte{0xfe, 0xff}}})

	// 2: pings and pongs.
	add("2.1 ping empty", stays, []wsf{ping("")}, ponged(""))
	add("2.2 ping text", stays, []wsf{ping("Hello, world!")}, ponged("Hello, world!"))
	add("2.3 ping binary", stays, []wsf{{op: ws.OpPing, payload: []byte{0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0}}}, ponged("\x00\xff\xfe\xfd\xfc\xfb\x00"))
	add("2.4 ping 125", stays, []wsf{ping(strings.Repeat("\xfe", 125))}, ponged(strings.Repeat("\xfe", 125)))
	add("2.5 ping 126", ws.StatusProtocolError, []wsf{ping(strings.Repeat("\xfe", 126))})
	add("2.6 ping 125 then text", stays, []wsf{ping(strings.Repeat("p", 125)), text("2x")}, ponged(strings.Repeat("p", 125)), echoed("x"))
	add("2.7 unsolicited pong", stays, []wsf{pong("")})
	add("2.8 unsolicited pong with payload", stays, []wsf{pong("unsolicited")})
	add("2.9 unsolicited pong, then ping", stays, []wsf{pong("unsolicited"), ping("solicited")}, ponged("solicited"))
	tenPings, tenPongs := []wsf{}, []want{}
	for i := range 10 {
		tenPings = append(tenPings, ping(fmt.Sprint("ping", i)))
		tenPongs = append(tenPongs, ponged(fmt.Sprint("ping", i)))
	}
	add("2.10 ten pings", stays, tenPings, tenPongs...)

	// 3: reserved bits: a frame carrying one fails the connection after
	// what came before it is answered.
	for rsv := byte(1); rsv <= 7; rsv++ {
		add(fmt.Sprintf("3.%d text with RSV=%d", rsv, rsv), ws.StatusProtocolError,
			[]wsf{text("2a"), {op: ws.OpText, payload: []byte("2b"), rsv: rsv}, ping("")}, echoed("a"))
	}
	add("3.8 ping with RSV=4", ws.StatusProtocolError, []wsf{{op: ws.OpPing, payload: []byte("x"), rsv: 4}})

	// 4: reserved opcodes.
	for _, op := range []ws.OpCode{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		add(fmt.Sprintf("4 opcode %d", op), ws.StatusProtocolError, []wsf{text("2a"), {op: op, payload: []byte("xyz")}, ping("")}, echoed("a"))
	}

	// Unmasked client frames (RFC 6455 5.1).
	add("unmasked text", ws.StatusProtocolError, []wsf{{op: ws.OpText, payload: []byte("2a"), unmasked: true}})
	add("unmasked ping after text", ws.StatusProtocolError, []wsf{text("2a"), {op: ws.OpPing, unmasked: true}}, echoed("a"))

	// 5: fragmentation.
	add("5.1 fragmented ping", ws.StatusProtocolError, []wsf{{op: ws.OpPing, payload: []byte("frag"), noFin: true}, {op: ws.OpContinuation, payload: []byte("ment")}})
	add("5.2 fragmented pong", ws.StatusProtocolError, []wsf{{op: ws.OpPong, payload: []byte("frag"), noFin: true}, {op: ws.OpContinuation, payload: []byte("ment")}})
	add("5.3 text in two fragments", stays, []wsf{textPart("2frag"), cont("ment")}, echoed("fragment"))
	add("5.6 ping between two fragments", stays, []wsf{textPart("2frag"), ping("p"), cont("ment")}, ponged("p"), echoed("fragment"))
	add("5.9 continuation without a start", ws.StatusProtocolError, []wsf{cont("x"), text("2a")})
	add("5.10 open continuation without a start", ws.StatusProtocolError, []wsf{contPart("x"), text("2a")})
	add("5.13 continuations without a start, in parts", ws.StatusProtocolError, []wsf{contPart("x"), text("2a"), cont("y")})
	add("5.15 text inside a fragmented message", ws.StatusProtocolError, []wsf{textPart("2a"), cont("b"), contPart("c"), textPart("2d"), cont("e")}, echoed("ab"))
	add("5.17 continuation after a final text", ws.StatusProtocolError, []wsf{text("2a"), cont("b")}, echoed("a"))
	add("5.18 two first fragments", ws.StatusProtocolError, []wsf{textPart("2a"), text("2b")})
	add("5.19 pings between five fragments", stays,
		[]wsf{textPart("2f1"), contPart("f2"), ping("p1"), contPart("f3"), contPart("f4"), ping("p2"), cont("f5")},
		ponged("p1"), ponged("p2"), echoed("f1f2f3f4f5"))
	add("5.20 pong between fragments", stays, []wsf{textPart("2a"), pong("x"), cont("b")}, echoed("ab"))
	add("6.1 empty fragments", stays, []wsf{textPart(""), contPart(""), contPart("2"), contPart(""), cont("")}, echoed(""))
	add("6.1 empty final fragment", stays, []wsf{textPart("2abc"), cont("")}, echoed("abc"))
	// The fragmentation matrix: message sizes × fragment sizes, a ping
	// after every fragment.
	for _, size := range []int{1, 125, 4096, limit - 1} {
		for _, chunk := range []int{1, 64, 1000, 16384} {
			if size/chunk > 300 {
				continue // keep the case count of pongs reasonable
			}
			msg := "2" + strings.Repeat("m", size)
			var send []wsf
			var got []want
			for i := 0; i < len(msg); i += chunk {
				part := msg[i:min(i+chunk, len(msg))]
				f := wsf{op: ws.OpContinuation, payload: []byte(part), noFin: i+chunk < len(msg)}
				if i == 0 {
					f.op = ws.OpText
				}
				p := fmt.Sprint("p", i)
				send = append(send, f, ping(p))
				if f.noFin {
					got = append(got, ponged(p))
				} else {
					got = append(got, echoed(msg[1:]), ponged(p))
				}
			}
			add(fmt.Sprintf("5 matrix %d bytes in %d-byte fragments", size+1, chunk), stays, send, got...)
		}
	}

	// 6: UTF-8. Valid text, whole and split at every byte across two
	// fragments, is answered; invalid text closes with 1007, whole or in
	// fragments, and a fragment holding invalid bytes fails at once.
	const hello = "Hello-µ@ßöäüàá-UTF-8!! κόσμε \U0001F600 \u00fc"
	add("6.2 valid UTF-8", stays, []wsf{text("2" + hello)}, echoed(hello))
	for i := 1; i < len(hello); i++ {
		add(fmt.Sprintf("6.2 valid UTF-8 split at %d", i), stays, []wsf{textPart("2" + hello[:i]), cont(hello[i:])}, echoed(hello))
	}
	invalid := map[string]string{
		"lone continuation":       "\x80",
		"overlong slash":          "\xc0\xaf",
		"overlong nul 3 bytes":    "\xe0\x80\x80",
		"surrogate high":          "\xed\xa0\x80",
		"surrogate low":           "\xed\xbf\xbf",
		"above U+10FFFF":          "\xf4\x90\x80\x80",
		"byte 0xf5":               "\xf5",
		"byte 0xfe":               "\xfe",
		"byte 0xff":               "\xff",
		"truncated at the end":    "\xce",
		"truncated 4-byte":        "\xf0\x9f\x98",
		"start then ascii":        "\xe2a",
		"kosme with a bad middle": "κόσμε\xed\xa0\x80edited",
	}
	for name, bad := range invalid {
		add("6.3 invalid UTF-8: "+name, ws.StatusInvalidFramePayloadData, []wsf{text("2a"), text("2" + bad)}, echoed("a"))
		add("6.3 invalid UTF-8 in fragments: "+name, ws.StatusInvalidFramePayloadData, []wsf{textPart("2ok"), contPart("ok"), cont(bad)})
	}
	// 6.4 fail fast: the rest of the message is never sent.
	add("6.4 invalid in the first fragment", ws.StatusInvalidFramePayloadData, []wsf{textPart("2κόσμε\xed\xa0\x80")})
	add("6.4 invalid in a middle fragment", ws.StatusInvalidFramePayloadData, []wsf{textPart("2κόσμε"), contPart("\xf4\x90\x80\x80")})
	add("6.4 invalid across a fragment boundary", ws.StatusInvalidFramePayloadData, []wsf{textPart("2ab\xe2\x82"), contPart("a")})
	add("6.4 valid across a boundary, then a lone byte", ws.StatusInvalidFramePayloadData, []wsf{textPart("2\xe2\x82"), contPart("\xac\x80")})
	add("6.4 truncated at the final fragment", ws.StatusInvalidFramePayloadData, []wsf{textPart("2ab"), cont("\xe2\x82")})

	// 7: close.
	add("7.1.1 text then close", ws.StatusNormalClosure, []wsf{text("2a"), closeWith(1000, "")}, echoed("a"))
	add("7.1.2 close twice", ws.StatusNormalClosure, []wsf{closeWith(1000, ""), closeWith(1000, "")})
	add("7.1.3 ping after close", ws.StatusNormalClosure, []wsf{closeWith(1000, ""), ping("after")})
	add("7.1.4 text after close", ws.StatusNormalClosure, []wsf{closeWith(1000, ""), text("2after")})
	add("7.1.5 close between fragments", ws.StatusNormalClosure, []wsf{textPart("2a"), closeWith(1000, ""), cont("b")})
	add("7.3.1 close empty", ws.StatusNormalClosure, []wsf{{op: ws.OpClose}})
	add("7.3.2 close one byte", ws.StatusProtocolError, []wsf{{op: ws.OpClose, payload: []byte{3}}})
	add("7.3.3 close 1000", ws.StatusNormalClosure, []wsf{closeWith(1000, "")})
	add("7.3.4 close 1000 with reason", ws.StatusNormalClosure, []wsf{closeWith(1000, "Hello World!")})
	add("7.3.5 close with a 123-byte reason", ws.StatusNormalClosure, []wsf{closeWith(1000, strings.Repeat("*", 123))})
	add("7.3.6 close with a 124-byte reason", ws.StatusProtocolError, []wsf{closeWith(1000, strings.Repeat("*", 124))})
	add("7.5.1 close reason not UTF-8", ws.StatusProtocolError, []wsf{closeWith(1000, "κόσμε\xed\xa0\x80edited")})
	add("fragmented close", ws.StatusProtocolError, []wsf{{op: ws.OpClose, payload: []byte{3, 232}, noFin: true}})
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		add(fmt.Sprintf("7.7 close code %d echoed", code), ws.StatusCode(code), []wsf{closeWith(code, "reason")})
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		add(fmt.Sprintf("7.9 invalid close code %d", code), ws.StatusProtocolError, []wsf{closeWith(code, "")})
	}

	// 9: the size limit, whole and fragmented (1009 over it).
	add("9.1 text over the limit", ws.StatusMessageTooBig, []wsf{text("2" + strings.Repeat("*", limit))})
	add("9.1 text far over the limit", ws.StatusMessageTooBig, []wsf{text("2" + strings.Repeat("*", 4*limit))})
	for _, chunk := range []int{64, 256, 1024, 4096, 16384, limit / 2} {
		msg := "2" + strings.Repeat("x", limit-1)
		var at, over []wsf
		for i := 0; i < len(msg); i += chunk {
			f := wsf{op: ws.OpContinuation, payload: []byte(msg[i:min(i+chunk, len(msg))]), noFin: i+chunk < len(msg)}
			if i == 0 {
				f.op = ws.OpText
			}
			at = append(at, f)
			f.noFin = true
			over = append(over, f)
		}
		over = append(over, cont("!"))
		add(fmt.Sprintf("9.2 limit in %d-byte fragments", chunk), stays, at, echoed(msg[1:]))
		add(fmt.Sprintf("9.2 limit+1 in %d-byte fragments", chunk), ws.StatusMessageTooBig, over)
	}
	return cs
}

// TestWebSocketConformance runs every case with both readers, each case
// delivered in one write and chopped into small writes.
func TestWebSocketConformance(t *testing.T) {
	cases := conformanceCases()
	for _, mode := range []IOMode{IOEpoll, IOGoroutine} {
		t.Run(string(mode), func(t *testing.T) {
			n := startNode(t, func(c *Config) {
				c.IO = mode
				c.Limits.Connects = 1 << 30
			})
			addr := n.Addr().String()
			for _, tc := range cases {
				for _, chop := range []int{0, 7} {
					name := tc.name
					if chop > 0 {
						name += " chopped"
					}
					t.Run(name, func(t *testing.T) { runConformance(t, addr, tc, chop) })
				}
			}
		})
	}
}

// runConformance sends a case's frames (in one write, or chop bytes at a
// time), reads the answers it wants, then checks the close code, or that the
// connection still answers when the case keeps it open.
func runConformance(t *testing.T, addr string, tc conformanceCase, chop int) {
	p, err := dialPinger(t, addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer p.nc.Close()
	var out []byte
	for _, f := range tc.send {
		out = append(out, f.bytes()...)
	}
	if chop == 0 {
		_, err = p.nc.Write(out)
	} else {
		piece := chop
		if len(out) > 4096 {
			piece = 4093 // large cases: still cut, in fewer writes
		}
		for i := 0; i < len(out) && err == nil; i += piece {
			_, err = p.nc.Write(out[i:min(i+piece, len(out))])
		}
	}
	if err != nil && tc.close == stays {
		t.Fatalf("write: %v", err)
	}
	for i, w := range tc.want {
		f, err := readServerFrame(p)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if f.Header.OpCode != w.op || string(f.Payload) != w.payload {
			t.Fatalf("answer %d: opcode %d payload %.60q, want opcode %d payload %.60q", i, f.Header.OpCode, f.Payload, w.op, w.payload)
		}
	}
	if tc.close == stays {
		if err := p.probe("still-open", 10*time.Second); err != nil {
			t.Fatalf("the connection should stay open: %v", err)
		}
		return
	}
	f, err := readServerFrame(p)
	if err != nil {
		t.Fatalf("want a close frame %d: %v", tc.close, err)
	}
	if f.Header.OpCode != ws.OpClose {
		t.Fatalf("want a close frame %d, got opcode %d payload %.60q", tc.close, f.Header.OpCode, f.Payload)
	}
	code, _ := ws.ParseCloseFrameData(f.Payload)
	if code != tc.close {
		t.Fatalf("close code %d (%q), want %d", code, f.Payload, tc.close)
	}
	// Nothing follows a close frame but the end of the stream.
	if f, err := readServerFrame(p); err == nil {
		t.Fatalf("frame after the close: opcode %d payload %.60q", f.Header.OpCode, f.Payload)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after the close frame: %v, want the end of the stream", err)
	}
}

// readServerFrame reads the next frame, skipping the server's heartbeat
// pings, and checks what RFC 6455 requires of a server frame.
func readServerFrame(p *pinger) (ws.Frame, error) {
	_ = p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = p.nc.SetReadDeadline(time.Time{}) }()
	for {
		f, err := ws.ReadFrame(p.br)
		if err != nil {
			return f, err
		}
		if f.Header.Masked || f.Header.Rsv != 0 || !f.Header.Fin {
			return f, fmt.Errorf("server frame masked=%v rsv=%d fin=%v", f.Header.Masked, f.Header.Rsv, f.Header.Fin)
		}
		if f.Header.OpCode == ws.OpText && bytes.Equal(f.Payload, []byte("2")) {
			continue
		}
		return f, nil
	}
}
