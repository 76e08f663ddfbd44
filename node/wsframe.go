package node

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Frame-level errors (RFC 6455 section 5).
var (
	errFrameTooLarge  = errors.New("node: frame over the size limit")
	errFrameProtocol  = errors.New("node: websocket protocol error")
	errFrameNotMasked = errors.New("node: client frame not masked")
)

// parseFrameHeader reads a frame header from the front of b without
// consuming or allocating (RFC 6455 section 5.2). ok is false when b does not
// yet hold a complete header. The returned header's Length is validated
// against maxPayload so a peer cannot make us buffer more than the limit.
func parseFrameHeader(b []byte, maxPayload int) (h ws.Header, hlen int, ok bool, err error) {
	if len(b) < 2 {
		return h, 0, false, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	hlen = 2
	length := int64(b[1] & 0x7f)
	switch length {
	case 126:
		hlen += 2
	case 127:
		hlen += 8
	}
	if h.Masked {
		hlen += 4
	}
	if len(b) < hlen {
		return h, 0, false, nil
	}
	switch length {
	case 126:
		length = int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, false, errFrameProtocol
		}
		length = int64(u)
	}
	h.Length = length
	if h.Masked {
		copy(h.Mask[:], b[hlen-4:hlen])
	}
	// RFC 6455 5.2: no extensions negotiated, so RSV bits must be 0;
	// 5.5: control frames are not fragmented and carry at most 125 bytes.
	if h.Rsv != 0 || h.OpCode.IsReserved() {
		return h, 0, false, errFrameProtocol
	}
	if h.OpCode.IsControl() && (!h.Fin || h.Length > 125) {
		return h, 0, false, errFrameProtocol
	}
	if !h.Masked {
		return h, 0, false, errFrameNotMasked // 5.1: a client masks every frame
	}
	if h.Length > int64(maxPayload) {
		return h, 0, false, errFrameTooLarge
	}
	return h, hlen, true, nil
}

// appendFrame appends an unmasked server frame (RFC 6455 5.2) holding
// payload. Server frames are never masked, so one encoded frame can be
// written to every recipient of a broadcast.
func appendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	dst = appendFrameHeader(dst, op, len(payload))
	return append(dst, payload...)
}

func appendFrameHeader(dst []byte, op ws.OpCode, n int) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xffff:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		return append(dst, b0, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// frameHeaderRoom is the most header bytes appendFrameHeader writes.
const frameHeaderRoom = 10

// textFrame builds a text frame around an Engine.IO payload produced by fill,
// reserving header room first so the payload is written once and the header
// moved into place.
func textFrame(fill func(dst []byte) []byte) []byte { return textFrameSized(256, fill) }

// textFrameSized is textFrame with a payload size hint: with a hint at
// least the payload's size, the frame costs one allocation.
func textFrameSized(hint int, fill func(dst []byte) []byte) []byte {
	buf := make([]byte, frameHeaderRoom, frameHeaderRoom+hint)
	buf = fill(buf)
	n := len(buf) - frameHeaderRoom
	var hdr [frameHeaderRoom]byte
	h := appendFrameHeader(hdr[:0], ws.OpText, n)
	start := frameHeaderRoom - len(h)
	copy(buf[start:], h)
	return buf[start:]
}

// closeFrame builds a close frame with a status code and reason (5.5.1).
func closeFrame(code ws.StatusCode, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	body := make([]byte, 2+len(reason))
	binary.BigEndian.PutUint16(body, uint16(code))
	copy(body[2:], reason)
	return appendFrame(nil, ws.OpClose, body)
}

// parseClosePayload reads the body of a client's close frame (RFC 6455
// 5.5.1): empty (answered as 1000), or a status code and a UTF-8 reason. ok
// is false for a one-byte body, a code an endpoint may not send, or a reason
// that is not UTF-8.
func parseClosePayload(p []byte) (code ws.StatusCode, ok bool) {
	switch len(p) {
	case 0:
		return ws.StatusNormalClosure, true
	case 1:
		return 0, false
	}
	code = ws.StatusCode(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) || !utf8.Valid(p[2:]) {
		return 0, false
	}
	return code, true
}

// validCloseCode reports whether a peer may send code in a close frame: the
// codes RFC 6455 7.4.1 and the IANA WebSocket Close Code Number Registry
// assign (1000-1003, 1007-1014), and the ranges for libraries and
// applications (3000-4999). 1004 is reserved, 1005, 1006 and 1015 must never
// be sent, and the rest is unassigned.
func validCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
