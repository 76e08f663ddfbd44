package bench

import (
	"errors"

	"github.com/gobwas/ws"

	"github.com/anchat/realtime/internal/wsframe"
)

// WebSocket framing for the client side (RFC 6455 section 5): headers are
// read and written by internal/wsframe, shared with the node; this side
// bounds what a server frame may claim and masks what it sends (section 5.3:
// "a client MUST mask all frames that it sends to the server").

var errFrameTooLarge = errors.New("bench: frame larger than the limit")

// maxServerFrame bounds what a server frame may claim; more is a protocol
// error (the node announces 64 KiB, the peer 1 MB).
const maxServerFrame = 16 << 20

// parseFrameHeader is wsframe.ParseHeader with the bound on server frames;
// n is 0 when b does not hold the whole header yet.
func parseFrameHeader(b []byte) (h ws.Header, n int, err error) {
	h, n, err = wsframe.ParseHeader(b)
	if err == nil && n > 0 && h.Length > maxServerFrame {
		return h, 0, errFrameTooLarge
	}
	return h, n, err
}

// appendClientFrame appends one final frame of opcode op carrying payload,
// masked with mask (ws.NewMask for a fresh one), to dst.
func appendClientFrame(dst []byte, op ws.OpCode, payload []byte, mask [4]byte) []byte {
	dst = wsframe.AppendHeader(dst, ws.Header{Fin: true, OpCode: op, Masked: true, Mask: mask, Length: int64(len(payload))})
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}
