// Package wsframe reads and writes WebSocket frame headers (RFC 6455 section
// 5.2) in byte slices, for both sides this module speaks: the node (server)
// and the bench tool (client). Each side adds its own rules: the node
// requires masked frames and bounds the payload by its frame limit; the
// client masks what it sends.
//
// The header type, opcodes, masking (ws.Cipher, ws.NewMask) and close bodies
// are gobwas/ws's. Its ReadHeader and WriteHeader work on io.Reader and
// io.Writer instead: their buffers escape through the interface (an
// allocation per frame), and a reader parsing what epoll delivered has the
// bytes already and must tell an incomplete header, kept for the next read,
// from an invalid one without consuming anything. These two functions are
// that, checked byte for byte against gobwas/ws in the tests.
//
//	h, n, err := wsframe.ParseHeader(buf) // n == 0: incomplete, read more
//	payload := buf[n : n+int(h.Length)]
//	out = wsframe.AppendHeader(out, ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(len(p))})
package wsframe

import (
	"encoding/binary"
	"errors"

	"github.com/gobwas/ws"
)

// ErrProtocol is a header no endpoint may send (RFC 6455 section 5.2): RSV
// bits set (no extension is ever negotiated), a reserved opcode, a
// fragmented or over-125-byte control frame (5.5), or a 64-bit length with
// its most significant bit set.
var ErrProtocol = errors.New("wsframe: websocket protocol error")

// MaxHeaderSize is the longest header: 2 bytes, an 8-byte length, a mask.
const MaxHeaderSize = ws.MaxHeaderSize

// ParseHeader reads the frame header at the front of b without consuming or
// allocating, and returns it with its size in bytes. n is 0 (and err nil)
// when b does not hold the whole header yet. The payload length is the
// peer's claim: check it against a limit before waiting for that much.
func ParseHeader(b []byte) (h ws.Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n = 2
	length := int64(b[1] & 0x7f)
	switch length {
	case 126: // "the following 2 bytes interpreted as a 16-bit unsigned integer"
		n += 2
	case 127: // "the following 8 bytes interpreted as a 64-bit unsigned integer"
		n += 8
	}
	if h.Masked {
		n += 4
	}
	if len(b) < n {
		return h, 0, nil
	}
	switch length {
	case 126:
		length = int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 { // "the most significant bit MUST be 0"
			return h, 0, ErrProtocol
		}
		length = int64(u)
	}
	h.Length = length
	if h.Masked {
		copy(h.Mask[:], b[n-4:n])
	}
	if h.Rsv != 0 || h.OpCode.IsReserved() {
		return h, 0, ErrProtocol
	}
	if h.OpCode.IsControl() && (!h.Fin || h.Length > 125) {
		return h, 0, ErrProtocol
	}
	return h, n, nil
}

// AppendHeader appends h as written on the wire (its Mask only if Masked)
// and returns the extended buffer; with room in dst it does not allocate.
// h.Length must not be negative.
func AppendHeader(dst []byte, h ws.Header) []byte {
	b0 := h.Rsv<<4 | byte(h.OpCode)
	if h.Fin {
		b0 |= 0x80
	}
	var mask byte
	if h.Masked {
		mask = 0x80
	}
	switch n := h.Length; {
	case n < 126:
		dst = append(dst, b0, mask|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, mask|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, mask|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if h.Masked {
		dst = append(dst, h.Mask[:]...)
	}
	return dst
}
