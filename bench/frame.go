package bench

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"

	"github.com/gobwas/ws"
)

// WebSocket framing for the client side (RFC 6455 section 5). Frames from the
// server are parsed from a byte slice without allocating; frames to the
// server are masked (section 5.3: "a client MUST mask all frames that it
// sends to the server").

var (
	errShortFrame    = errors.New("bench: incomplete frame")
	errFrameRsv      = errors.New("bench: frame with reserved bits set (no extension was negotiated)")
	errFrameTooLarge = errors.New("bench: frame larger than the limit")
	errFrameControl  = errors.New("bench: fragmented or oversized control frame")
	errFrameOpcode   = errors.New("bench: reserved opcode")
)

// maxServerFrame bounds what a server frame may claim; more is a protocol
// error (the node announces 64 KiB, the peer 1 MB).
const maxServerFrame = 16 << 20

// frameHeader is a parsed frame header (RFC 6455 section 5.2).
type frameHeader struct {
	fin    bool
	op     ws.OpCode
	masked bool
	mask   [4]byte
	length int // payload bytes
	size   int // header bytes
}

// parseFrameHeader reads a frame header at the start of b. It returns
// errShortFrame when b does not hold the whole header yet.
func parseFrameHeader(b []byte) (h frameHeader, err error) {
	if len(b) < 2 {
		return h, errShortFrame
	}
	h.fin = b[0]&0x80 != 0
	if b[0]&0x70 != 0 {
		return h, errFrameRsv
	}
	h.op = ws.OpCode(b[0] & 0x0f)
	if h.op.IsReserved() {
		return h, errFrameOpcode
	}
	h.masked = b[1]&0x80 != 0
	n := int(b[1] & 0x7f)
	h.size = 2
	switch n {
	case 126: // section 5.2: "If 126, the following 2 bytes interpreted as a 16-bit unsigned integer"
		if len(b) < 4 {
			return h, errShortFrame
		}
		n = int(binary.BigEndian.Uint16(b[2:]))
		h.size = 4
	case 127: // "If 127, the following 8 bytes interpreted as a 64-bit unsigned integer"
		if len(b) < 10 {
			return h, errShortFrame
		}
		u := binary.BigEndian.Uint64(b[2:])
		if u > maxServerFrame {
			return h, errFrameTooLarge
		}
		n = int(u)
		h.size = 10
	}
	if n > maxServerFrame {
		return h, errFrameTooLarge
	}
	if h.op.IsControl() && (n > 125 || !h.fin) { // section 5.5
		return h, errFrameControl
	}
	if h.masked {
		if len(b) < h.size+4 {
			return h, errShortFrame
		}
		copy(h.mask[:], b[h.size:h.size+4])
		h.size += 4
	}
	h.length = n
	return h, nil
}

// newMask returns a fresh masking key (section 5.3: "unpredictable").
func newMask() (m [4]byte) {
	binary.LittleEndian.PutUint32(m[:], rand.Uint32())
	return m
}

// appendClientFrame appends one final, masked frame of opcode op carrying
// payload to dst.
func appendClientFrame(dst []byte, op ws.OpCode, payload []byte, mask [4]byte) []byte {
	dst = append(dst, 0x80|byte(op))
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}
