package socketio

import "errors"

// Parse errors. Every error returned by a parse function is, or wraps, one of
// these; test with errors.Is. The hot-path parsers return them unwrapped so
// that even a rejected frame costs no allocation.
var (
	// ErrEmpty: a frame or packet with no bytes at all.
	ErrEmpty = errors.New("socketio: empty packet")
	// ErrUTF8: a text frame that is not valid UTF-8 (RFC 6455 section 8.1).
	ErrUTF8 = errors.New("socketio: text frame is not valid UTF-8")
	// ErrEngineType: the first byte is not an Engine.IO v4 packet type '0'..'6'.
	ErrEngineType = errors.New("socketio: unknown Engine.IO packet type")
	// ErrPacketType: the first byte is not a Socket.IO v5 packet type '0'..'6'.
	ErrPacketType = errors.New("socketio: unknown Socket.IO packet type")
	// ErrAttachments: a BINARY_EVENT/BINARY_ACK without a valid "<n>-" prefix.
	ErrAttachments = errors.New("socketio: bad binary attachments count")
	// ErrAckID: an acknowledgement id that is too long, or an ACK without one.
	ErrAckID = errors.New("socketio: bad acknowledgement id")
	// ErrPayload: a payload of the wrong kind for its packet type (e.g. an
	// EVENT whose payload is not a non-empty array).
	ErrPayload = errors.New("socketio: invalid payload for packet type")
	// ErrEventName: an event name that is not a plain JSON string (not a
	// string, contains a backslash escape, or is not valid UTF-8).
	ErrEventName = errors.New("socketio: bad event name")
	// ErrJSON: malformed JSON, or JSON nested deeper than the parser allows.
	ErrJSON = errors.New("socketio: malformed JSON")
	// ErrOpen: an Engine.IO open packet whose handshake data is unusable.
	ErrOpen = errors.New("socketio: bad open packet")
)
