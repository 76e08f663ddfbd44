package node

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/anchat/realtime/internal/wsframe"
)

// Frame-level errors (RFC 6455 section 5).
var (
	errFrameTooLarge  = errors.New("node: frame over the size limit")
	errFrameProtocol  = wsframe.ErrProtocol
	errFrameNotMasked = errors.New("node: client frame not masked")
)

// parseFrameHeader is wsframe.ParseHeader plus the server's rules: a client
// masks every frame (RFC 6455 section 5.1), and the payload length is
// checked against maxPayload, so a peer cannot make us buffer more than the
// limit. ok is false when b does not yet hold a complete header.
func parseFrameHeader(b []byte, maxPayload int) (h ws.Header, hlen int, ok bool, err error) {
	h, hlen, err = wsframe.ParseHeader(b)
	switch {
	case err != nil:
		return h, 0, false, err
	case hlen == 0:
		return h, 0, false, nil
	case !h.Masked:
		return h, 0, false, errFrameNotMasked
	case h.Length > int64(maxPayload):
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

// appendFrameHeader appends the header of a final, unmasked frame of n
// payload bytes.
func appendFrameHeader(dst []byte, op ws.OpCode, n int) []byte {
	return wsframe.AppendHeader(dst, ws.Header{Fin: true, OpCode: op, Length: int64(n)})
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

// closeFrame builds a close frame with a status code and reason (5.5.1),
// the reason cut to fit a control frame.
func closeFrame(code ws.StatusCode, reason string) []byte {
	return appendFrame(nil, ws.OpClose, ws.NewCloseFrameBody(code, reason))
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
