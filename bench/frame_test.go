package bench

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The examples of RFC 6455 section 5.7.
func TestParseFrameHeaderRFCExamples(t *testing.T) {
	tests := []struct {
		name   string
		wire   string
		fin    bool
		op     ws.OpCode
		masked bool
		length int
		size   int
	}{
		{"unmasked text Hello", "81 05 48656c6c6f", true, ws.OpText, false, 5, 2},
		{"masked text Hello", "81 85 37fa213d 7f9f4d5158", true, ws.OpText, true, 5, 6},
		{"first fragment Hel", "01 03 48656c", false, ws.OpText, false, 3, 2},
		{"last fragment lo", "80 02 6c6f", true, ws.OpContinuation, false, 2, 2},
		{"unmasked ping", "89 05 48656c6c6f", true, ws.OpPing, false, 5, 2},
		{"masked pong", "8a 85 37fa213d 7f9f4d5158", true, ws.OpPong, true, 5, 6},
		{"256 bytes binary", "82 7e 0100", true, ws.OpBinary, false, 256, 4},
		{"64KiB binary", "82 7f 0000000000010000", true, ws.OpBinary, false, 65536, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := unhex(t, tt.wire)
			h, err := parseFrameHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.fin != tt.fin || h.op != tt.op || h.masked != tt.masked || h.length != tt.length || h.size != tt.size {
				t.Fatalf("got %+v", h)
			}
			for i := 0; i < h.size; i++ { // every cut inside the header is incomplete
				if _, err := parseFrameHeader(b[:i]); err != errShortFrame {
					t.Fatalf("prefix %d: err %v, want errShortFrame", i, err)
				}
			}
		})
	}
}

func TestParseFrameHeaderErrors(t *testing.T) {
	for name, wire := range map[string]string{
		"rsv1 set":           "c1 05",
		"reserved opcode":    "83 00",
		"long ping":          "89 7e 0080",
		"fragmented close":   "08 00",
		"beyond frame limit": "82 7f 0000000100000000",
	} {
		if _, err := parseFrameHeader(unhex(t, wire)); err == nil || err == errShortFrame {
			t.Errorf("%s: err %v, want a protocol error", name, err)
		}
	}
}

// The masked example of RFC 6455 section 5.7, produced by the client encoder.
func TestAppendClientFrameRFCExample(t *testing.T) {
	got := appendClientFrame(nil, ws.OpText, []byte("Hello"), [4]byte{0x37, 0xfa, 0x21, 0x3d})
	if want := unhex(t, "81 85 37fa213d 7f9f4d5158"); !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte{'a'}, n)
		f := appendClientFrame(nil, ws.OpText, payload, newMask())
		h, err := parseFrameHeader(f)
		if err != nil || !h.masked || h.length != n || len(f) != h.size+n {
			t.Fatalf("len %d: header %+v err %v", n, h, err)
		}
		p := append([]byte(nil), f[h.size:]...)
		ws.Cipher(p, h.mask, 0)
		if !bytes.Equal(p, payload) {
			t.Fatalf("len %d: payload does not unmask", n)
		}
	}
}
