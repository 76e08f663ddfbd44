package wsframe_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/gobwas/ws"

	"github.com/anchat/realtime/internal/wsframe"
)

// The examples of RFC 6455 section 5.7, parsed and written back.
func TestRFCExamples(t *testing.T) {
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	tests := []struct {
		name string
		wire []byte // header and payload
		want ws.Header
		size int
	}{
		{"unmasked text Hello", []byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}, ws.Header{Fin: true, OpCode: ws.OpText, Length: 5}, 2},
		{"masked text Hello", []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: mask, Length: 5}, 6},
		{"first fragment Hel", []byte{0x01, 0x03, 'H', 'e', 'l'}, ws.Header{OpCode: ws.OpText, Length: 3}, 2},
		{"last fragment lo", []byte{0x80, 0x02, 'l', 'o'}, ws.Header{Fin: true, OpCode: ws.OpContinuation, Length: 2}, 2},
		{"unmasked ping", []byte{0x89, 0x05, 'H', 'e', 'l', 'l', 'o'}, ws.Header{Fin: true, OpCode: ws.OpPing, Length: 5}, 2},
		{"masked pong", []byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, ws.Header{Fin: true, OpCode: ws.OpPong, Masked: true, Mask: mask, Length: 5}, 6},
		{"256 bytes binary", []byte{0x82, 0x7e, 0x01, 0x00}, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 256}, 4},
		{"64KiB binary", []byte{0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0, 0}, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 65536}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.wire
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
	for name, wire := range map[string][]byte{
		"rsv1 set":              {0xc1, 0x05},
		"rsv3 set":              {0x91, 0x05},
		"reserved data opcode":  {0x83, 0x00},
		"reserved control":      {0x8b, 0x00},
		"long ping":             {0x89, 0x7e, 0x00, 0x80},
		"fragmented close":      {0x08, 0x00},
		"126-byte pong":         {0x8a, 0x7e, 0x00, 0x7e},
		"64-bit length, MSB on": {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0},
	} {
		if _, n, err := wsframe.ParseHeader(wire); !errors.Is(err, wsframe.ErrProtocol) || n != 0 {
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
	frame := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
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
	for _, s := range [][]byte{
		{0x81, 0x05}, {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}, {0x82, 0x7e, 0x01, 0x00},
		{0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0, 0}, {0xc1, 0x05}, {0x89, 0x7e, 0x00, 0x80},
		{0x08, 0x00}, {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, {0x81},
	} {
		f.Add(s)
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
