package socketio

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/anchat/realtime/internal/jsonstr"
)

// Engine.IO v4 packet types, the first byte of every WebSocket text frame
// (Engine.IO v4, "Protocol": open 0, close 1, ping 2, pong 3, message 4,
// upgrade 5, noop 6).
const (
	EngineOpen    byte = '0' // server -> client handshake, JSON data (Open)
	EngineClose   byte = '1' // the transport can be closed
	EnginePing    byte = '2' // heartbeat, sent by the server in v4
	EnginePong    byte = '3' // heartbeat answer, sent by the client in v4
	EngineMessage byte = '4' // data is a Socket.IO packet (ParsePacket)
	EngineUpgrade byte = '5' // completes a polling -> websocket upgrade
	EngineNoop    byte = '6' // used during upgrades
)

// ParseEngine splits a WebSocket text frame into its Engine.IO packet type and
// data, without copying: data aliases frame.
//
// Engine.IO v4, "Packet encoding > WebSocket": each packet is one frame,
// "<packet type>[<data>]", e.g. "2", "3probe", "4hello". Binary frames carry
// Socket.IO attachments and are not Engine.IO-framed text; do not pass them
// here.
//
// The frame must be valid UTF-8, as RFC 6455 section 8.1 requires of text
// frames; checking it here keeps a relaying server from forwarding bytes that
// would make browsers fail the connection.
func ParseEngine(frame []byte) (typ byte, data []byte, err error) {
	if len(frame) == 0 {
		return 0, nil, ErrEmpty
	}
	typ = frame[0]
	if typ < EngineOpen || typ > EngineNoop {
		return 0, nil, ErrEngineType
	}
	if !utf8.Valid(frame[1:]) {
		return 0, nil, ErrUTF8
	}
	return typ, frame[1:], nil
}

// Open is the handshake data of the Engine.IO open packet.
type Open struct {
	SID          string        // Engine.IO session id (not the Socket.IO socket id)
	PingInterval time.Duration // how often the server pings; sent in milliseconds
	PingTimeout  time.Duration // how long the server waits for the pong; sent in milliseconds
	MaxPayload   int           // bytes per chunk; advisory on WebSocket
}

// AppendOpen appends a complete Engine.IO open packet (type '0') to dst:
//
//	0{"sid":"...","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}
//
// Engine.IO v4, "Protocol > Handshake": the payload has exactly the keys sid,
// upgrades, pingInterval, pingTimeout (both in milliseconds) and maxPayload.
// upgrades is always empty: this package serves WebSocket only, there is
// nothing to upgrade to.
func AppendOpen(dst []byte, o Open) []byte {
	dst = append(dst, EngineOpen)
	dst = append(dst, `{"sid":`...)
	dst = jsonstr.Append(dst, o.SID)
	dst = append(dst, `,"upgrades":[],"pingInterval":`...)
	dst = strconv.AppendInt(dst, o.PingInterval.Milliseconds(), 10)
	dst = append(dst, `,"pingTimeout":`...)
	dst = strconv.AppendInt(dst, o.PingTimeout.Milliseconds(), 10)
	dst = append(dst, `,"maxPayload":`...)
	dst = strconv.AppendInt(dst, int64(o.MaxPayload), 10)
	return append(dst, '}')
}

// maxOpenNumber bounds the numbers ParseOpen accepts: 2^31-1, as
// milliseconds about 24 days, beyond any sane heartbeat and far from
// time.Duration overflow.
const maxOpenNumber = 1<<31 - 1

// ParseOpen decodes the handshake data of an Engine.IO open packet, the data
// that follows the '0' (Engine.IO v4, "Protocol > Handshake"). It is meant for
// clients (the load generator), not for the server's hot path, and uses
// encoding/json.
//
// sid must be a non-empty string, pingInterval and pingTimeout positive
// integers; maxPayload is optional. Errors wrap ErrOpen.
func ParseOpen(data []byte) (Open, error) {
	var h struct {
		SID          *string `json:"sid"`
		PingInterval *int64  `json:"pingInterval"`
		PingTimeout  *int64  `json:"pingTimeout"`
		MaxPayload   int64   `json:"maxPayload"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return Open{}, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	switch {
	case h.SID == nil || *h.SID == "":
		return Open{}, fmt.Errorf("%w: missing sid", ErrOpen)
	case h.PingInterval == nil || *h.PingInterval <= 0 || *h.PingInterval > maxOpenNumber:
		return Open{}, fmt.Errorf("%w: pingInterval missing or out of range", ErrOpen)
	case h.PingTimeout == nil || *h.PingTimeout <= 0 || *h.PingTimeout > maxOpenNumber:
		return Open{}, fmt.Errorf("%w: pingTimeout missing or out of range", ErrOpen)
	case h.MaxPayload < 0 || h.MaxPayload > maxOpenNumber:
		return Open{}, fmt.Errorf("%w: maxPayload out of range", ErrOpen)
	}
	return Open{
		SID:          *h.SID,
		PingInterval: time.Duration(*h.PingInterval) * time.Millisecond,
		PingTimeout:  time.Duration(*h.PingTimeout) * time.Millisecond,
		MaxPayload:   int(h.MaxPayload),
	}, nil
}
