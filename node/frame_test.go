package node

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"
)

// maskedFrame builds a client frame as a browser would send it.
func maskedFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	f := ws.NewFrame(op, fin, append([]byte(nil), payload...))
	f = ws.MaskFrameInPlaceWith(f, [4]byte{1, 2, 3, 4})
	b, _ := ws.CompileFrame(f)
	return b
}

// frames parses complete frames from input fed in chunks as a reader would:
// unconsumed bytes are kept and prepended to the next chunk.
func feedFrames(chunks [][]byte, max int) (payloads [][]byte, err error) {
	var pending []byte
	for _, ch := range chunks {
		pending = append(pending, ch...)
		for {
			h, hlen, ok, perr := parseFrameHeader(pending, max)
			if perr != nil {
				return payloads, perr
			}
			if !ok || int64(len(pending)-hlen) < h.Length {
				break
			}
			p := append([]byte(nil), pending[hlen:hlen+int(h.Length)]...)
			ws.Cipher(p, h.Mask, 0)
			payloads = append(payloads, p)
			pending = pending[hlen+int(h.Length):]
		}
	}
	return payloads, nil
}

func TestParseFrameHeaderTable(t *testing.T) {
	long := bytes.Repeat([]byte("a"), 70000)
	cases := []struct {
		name string
		in   []byte
		max  int
		ok   bool
		err  error
		plen int64
	}{
		{"empty", nil, 64, false, nil, 0},
		{"one byte", []byte{0x81}, 64, false, nil, 0},
		{"small text", maskedFrame(ws.OpText, true, []byte("42[\"x\"]")), 64, true, nil, 7},
		{"16-bit length", maskedFrame(ws.OpText, true, long[:300]), 65536, true, nil, 300},
		{"64-bit length over limit", maskedFrame(ws.OpText, true, long), 65536, false, errFrameTooLarge, 0},
		{"unmasked", []byte{0x81, 0x01, 'a'}, 64, false, errFrameNotMasked, 0},
		{"rsv set", []byte{0xC1, 0x81, 1, 2, 3, 4, 'a'}, 64, false, errFrameProtocol, 0},
		{"fragmented ping", []byte{0x09, 0x80, 1, 2, 3, 4}, 64, false, errFrameProtocol, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _, ok, err := parseFrameHeader(tc.in, tc.max)
			if err != tc.err || ok != tc.ok || (ok && h.Length != tc.plen) {
				t.Fatalf("got ok=%v err=%v len=%d; want ok=%v err=%v len=%d", ok, err, h.Length, tc.ok, tc.err, tc.plen)
			}
		})
	}
}

func TestAppendFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte("z"), n)
		frame := appendFrame(nil, ws.OpText, payload)
		got, err := ws.ReadFrame(bytes.NewReader(frame))
		if err != nil || !bytes.Equal(got.Payload, payload) || got.Header.Masked {
			t.Fatalf("n=%d: %v", n, err)
		}
		tf := textFrame(func(dst []byte) []byte { return append(dst, payload...) })
		if !bytes.Equal(tf, frame) {
			t.Fatalf("n=%d: textFrame differs from appendFrame", n)
		}
	}
}

// FuzzFrames feeds arbitrary input to the frame header parser whole and
// split in two at every fuzzed point: it must never panic, and a split must
// yield the same frames as the whole input (partial input is buffered, not
// misread). The production read path (conn.onData, epollReader.readReady) is
// fuzzed by FuzzConnOnData and FuzzEpollReadReady.
func FuzzFrames(f *testing.F) {
	seeds := [][]byte{
		maskedFrame(ws.OpText, true, []byte(`40/messenger,{"token":"eyJhbGciOiJIUzI1NiJ9.e30.x"}`)),
		maskedFrame(ws.OpText, true, []byte(`42/messenger,0["send_message",{"chatId":"c1","content":"hi","messageType":"TEXT","tempId":"t1"}]`)),
		maskedFrame(ws.OpText, true, []byte("3")),
		append(maskedFrame(ws.OpText, false, []byte("42[\"a")), maskedFrame(ws.OpContinuation, true, []byte("\"]"))...),
		append(maskedFrame(ws.OpText, true, []byte(`451-/messenger,["x",{"_placeholder":true,"num":0}]`)), maskedFrame(ws.OpBinary, true, []byte{1, 2, 3})...),
		maskedFrame(ws.OpClose, true, []byte{3, 232}),
		maskedFrame(ws.OpText, true, bytes.Repeat([]byte("y"), 300)),
	}
	for _, s := range seeds {
		f.Add(s, uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		const max = 1024
		whole, werr := feedFrames([][]byte{in}, max)
		at := int(split) % (len(in) + 1)
		parts, perr := feedFrames([][]byte{in[:at], in[at:]}, max)
		if werr != perr {
			t.Fatalf("whole input: %v; split at %d: %v", werr, at, perr)
		}
		if len(whole) != len(parts) {
			t.Fatalf("whole gave %d frames, split at %d gave %d", len(whole), at, len(parts))
		}
		for i := range whole {
			if !bytes.Equal(whole[i], parts[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
	})
}
