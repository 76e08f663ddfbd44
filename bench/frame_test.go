package bench

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// Header parsing and writing are tested in internal/wsframe; here what the
// client side adds: the bound on server frames and masking.

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFrameHeaderBound(t *testing.T) {
	if _, n, err := parseFrameHeader(unhex(t, "82 7f 0000000001000000")); err != nil || n != 10 {
		t.Fatalf("16 MiB frame: n %d, err %v; want accepted", n, err)
	}
	if _, n, err := parseFrameHeader(unhex(t, "82 7f 0000000001000001")); err != errFrameTooLarge || n != 0 {
		t.Fatalf("16 MiB + 1 frame: n %d, err %v; want errFrameTooLarge", n, err)
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
		f := appendClientFrame(nil, ws.OpText, payload, ws.NewMask())
		h, size, err := parseFrameHeader(f)
		if err != nil || !h.Masked || h.Length != int64(n) || len(f) != size+n {
			t.Fatalf("len %d: header %+v err %v", n, h, err)
		}
		p := append([]byte(nil), f[size:]...)
		ws.Cipher(p, h.Mask, 0)
		if !bytes.Equal(p, payload) {
			t.Fatalf("len %d: payload does not unmask", n)
		}
	}
}
