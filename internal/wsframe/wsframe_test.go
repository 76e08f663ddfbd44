package wsframe_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/anchat/realtime/internal/wsframe"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The examples of RFC 6455 section 5.7, parsed and written back.
func TestRFCExamples(t *testing.T) {
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	tests := []struct {
		name string
		wire string // header and payload
		want ws.Header
		size int
	}{
		{"unmasked text Hello", "81 05 48656c6c6f", ws.Header{Fin: true, OpCode: ws.OpText, Length: 5}, 2},
		{"masked text Hello", "81 85 37fa213d 7f9f4d5158", ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: mask, Length: 5}, 6},
		{"first fragment Hel", "01 03 48656c", ws.Header{OpCode: ws.OpText, Length: 3}, 2},
		{"last fragment lo", "80 02 6c6f", ws.Header{Fin: true, OpCode: ws.OpContinuation, Length: 2}, 2},
		{"unmasked ping", "89 05 48656c6c6f", ws.Header{Fin: true, OpCode: ws.OpPing, Length: 5}, 2},
		{"masked pong", "8a 85 37fa213d 7f9f4d5158", ws.Header{Fin: true, OpCode: ws.OpPong, Masked: true, Mask: mask, Length: 5}, 6},
		{"256 bytes binary", "82 7e 0100", ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 256}, 4},
		{"64KiB binary", "82 7f 0000000000010000", ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 65536}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := unhex(t, tt.wire)
			h, n, err := wsframe.ParseHeader(b)
			if err != nil || h != tt.want || n != tt.size {
				t.Fatalf("ParseHeader = %+v, %d, %v; want %+v, %d", h, n, err, tt.want, tt.size)
			}
			for i := range n { // every cut inside the header is incomplete
				if _, m, err := wsframe.ParseHeader(b[:i]); m != 0 || err != nil {
					t.Fatalf("prefix %d: n %d, err %v; want incomplete", i, m, err)
				}
			}
			if got := wsframe.AppendHeader(nil, h); !bytes.Equal(got, b[:n]) {
				t.Fatalf("AppendHeader = % x, want % x", got, b[:n])
			}
		})
	}
}

func TestParseHeaderErrors(t *testing.T) {
	for name, wire := range map[string]string{
		"rsv1 set":              "c1 05",
		"rsv3 set":              "91 05",
		"reserved data opcode":  "83 00",
		"reserved control":      "8b 00",
		"long ping":             "89 7e 0080",
		"fragmented close":      "08 00",
		"126-byte pong":         "8a 7e 007e",
		"64-bit length, MSB on": "82 7f 8000000000000000",
	} {
		if _, n, err := wsframe.ParseHeader(unhex(t, wire)); !errors.Is(err, wsframe.ErrProtocol) || n != 0 {
			t.Errorf("%s: n %d, err %v; want ErrProtocol", name, n, err)
		}
	}
}

// AppendHeader writes what gobwas/ws's WriteHeader writes.
func TestAppendHeaderMatchesGobwas(t *testing.T) {
	for _, length := range []int64{0, 1, 125, 126, 127, 65535, 65536, 1 << 40} {
		for _, h := range []ws.Header{
			{Fin: true, OpCode: ws.OpText, Length: length},
			{OpCode: ws.OpBinary, Length: length, Rsv: 5},
			{Fin: true, OpCode: ws.OpText, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: length},
		} {
			var want bytes.Buffer
			if err := ws.WriteHeader(&want, h); err != nil {
				t.Fatal(err)
			}
			if got := wsframe.AppendHeader(nil, h); !bytes.Equal(got, want.Bytes()) {
				t.Errorf("%+v: AppendHeader = % x, gobwas writes % x", h, got, want.Bytes())
			}
		}
	}
}

func TestNoAllocs(t *testing.T) {
	frame := unhex(t, "81 85 37fa213d 7f9f4d5158")
	buf := make([]byte, 0, wsframe.MaxHeaderSize)
	h := ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Length: 70000}
	if n := testing.AllocsPerRun(100, func() {
		_, _, _ = wsframe.ParseHeader(frame)
		buf = wsframe.AppendHeader(buf[:0], h)
	}); n != 0 {
		t.Fatalf("%v allocations per parse and append", n)
	}
}

// FuzzParseHeader checks ParseHeader against gobwas/ws's ReadHeader on any
// input: a header it accepts is the one ReadHeader reads and AppendHeader
// writes back byte for byte; an incomplete one is short for ReadHeader too;
// one it rejects breaks a rule of section 5.2 or 5.5.
func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{"8105", "81 85 37fa213d", "82 7e 0100", "82 7f 0000000000010000", "c1 05", "89 7e 0080", "08 00", "82 7f 8000000000000000", "81"} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := wsframe.ParseHeader(b)
		ref, refErr := ws.ReadHeader(bytes.NewReader(b))
		switch {
		case err != nil:
			broken := refErr == ws.ErrHeaderLengthMSB || ref.Rsv != 0 || ref.OpCode.IsReserved() ||
				(ref.OpCode.IsControl() && (!ref.Fin || ref.Length > 125))
			if refErr != nil && refErr != ws.ErrHeaderLengthMSB || !broken {
				t.Fatalf("% x: ParseHeader: %v, but ReadHeader reads %+v, %v", b, err, ref, refErr)
			}
		case n == 0:
			if refErr != io.EOF && refErr != io.ErrUnexpectedEOF {
				t.Fatalf("% x: incomplete for ParseHeader, ReadHeader: %+v, %v", b, ref, refErr)
			}
		default:
			if refErr != nil || h != ref {
				t.Fatalf("% x: ParseHeader %+v, ReadHeader %+v, %v", b, h, ref, refErr)
			}
			// A length in more bytes than needed parses; AppendHeader
			// writes the shortest form (section 5.2: "the minimal number
			// of bytes MUST be used").
			l7 := b[1] & 0x7f
			minimal := l7 < 126 || l7 == 126 && h.Length >= 126 || l7 == 127 && h.Length > 0xffff
			if got := wsframe.AppendHeader(nil, h); minimal && !bytes.Equal(got, b[:n]) {
				t.Fatalf("% x: AppendHeader writes % x", b, got)
			}
		}
	})
}
