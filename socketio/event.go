package socketio

import "unicode/utf8"

// ParseEvent splits the payload of an EVENT or BINARY_EVENT packet,
// `["name", arg0, ...]`, without decoding it and without allocating.
//
// Socket.IO v5, "Sending and receiving data": "The payload is mandatory and
// MUST be a non-empty array"; the first element is the event name.
//
// name is the event name without its quotes. Only plain strings are accepted:
// a name holding a backslash escape (it could not be returned unescaped
// without allocating) or invalid UTF-8 is ErrEventName, as is a first element
// that is not a string. arg0 is the raw JSON of the first argument, nil if
// there is none; nargs is the number of arguments after the name. The whole
// array is checked to be well-formed JSON (ErrJSON otherwise), with nothing
// but whitespace after it.
//
// Reserved names (IsReservedEvent) are not refused here: that is the caller's
// policy.
func ParseEvent(data []byte) (name []byte, arg0 []byte, nargs int, err error) {
	name, next, err := eventName(data)
	if err != nil {
		return nil, nil, 0, err
	}
	arg0, nargs, err = arrayTail(data, next)
	if err != nil {
		return nil, nil, 0, err
	}
	return name, arg0, nargs, nil
}

// PeekEventName returns the event name of an EVENT payload whose arguments
// may be malformed: the plain string that opens the array, as ParseEvent
// reads it, or nil when there is none. It lets a server name the event it
// refuses as INVALID_PAYLOAD; it validates nothing after the name.
func PeekEventName(data []byte) []byte {
	name, _, err := eventName(data)
	if err != nil {
		return nil
	}
	return name
}

// eventName reads `["name"` at the start of data and returns the name and
// the index just after its closing quote.
func eventName(data []byte) (name []byte, next int, err error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, 0, ErrPayload
	}
	i = skipSpace(data, i+1)
	if i >= len(data) {
		return nil, 0, ErrJSON
	}
	switch data[i] {
	case ']': // "MUST be a non-empty array"
		return nil, 0, ErrPayload
	case '"':
	default:
		return nil, 0, ErrEventName
	}
	start := i + 1
	for i = start; i < len(data) && data[i] != '"'; i++ {
		if data[i] == '\\' {
			return nil, 0, ErrEventName
		}
		if data[i] < 0x20 {
			return nil, 0, ErrJSON
		}
	}
	if i >= len(data) {
		return nil, 0, ErrJSON
	}
	name = data[start:i]
	if !utf8.Valid(name) {
		return nil, 0, ErrEventName
	}
	return name, i + 1, nil
}

// ParseArgs splits the payload of an ACK or BINARY_ACK packet, `[arg0, ...]`,
// without decoding it and without allocating: arg0 is the raw JSON of the
// first element (nil if the array is empty), nargs the number of elements.
//
// Socket.IO v5, "Acknowledgement": "The payload is mandatory and MUST be an
// array (possibly empty)". The array is checked like ParseEvent's.
func ParseArgs(data []byte) (arg0 []byte, nargs int, err error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, 0, ErrPayload
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		if skipSpace(data, i+1) != len(data) {
			return nil, 0, ErrJSON
		}
		return nil, 0, nil
	}
	end, err := skipValue(data, i, 1)
	if err != nil {
		return nil, 0, err
	}
	_, n, err := arrayTail(data, end)
	if err != nil {
		return nil, 0, err
	}
	return data[i:end], n + 1, nil
}

// arrayTail walks the rest of a top-level JSON array from just after one of
// its elements, `(, value)* ]`, then requires the end of data (whitespace
// aside). first is the raw JSON of the first element it meets, n the number
// of elements it met.
func arrayTail(data []byte, i int) (first []byte, n int, err error) {
	for {
		i = skipSpace(data, i)
		if i >= len(data) {
			return nil, 0, ErrJSON
		}
		switch data[i] {
		case ']':
			if skipSpace(data, i+1) != len(data) {
				return nil, 0, ErrJSON
			}
			return first, n, nil
		case ',':
			i = skipSpace(data, i+1)
			end, err := skipValue(data, i, 1)
			if err != nil {
				return nil, 0, err
			}
			if n == 0 {
				first = data[i:end]
			}
			n++
			i = end
		default:
			return nil, 0, ErrJSON
		}
	}
}

// IsReservedEvent reports whether name is an event name the Socket.IO client
// reserves for itself (socket.io-client's RESERVED_EVENTS). A packet emitting
// one is rejected by the client, so a server must never send it.
func IsReservedEvent(name string) bool {
	switch name {
	case "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener":
		return true
	}
	return false
}
