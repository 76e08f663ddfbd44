package socketio

import (
	"strconv"

	"github.com/anchat/realtime/internal/jsonstr"
)

// Encoders append one complete Engine.IO text payload, ready to be sent as a
// WebSocket text frame, to dst and return the extended slice. With enough
// capacity in dst they do not allocate.
//
// Every Socket.IO packet is an Engine.IO message packet, so it starts with
// '4' (Socket.IO v5, "Packet encoding"). The namespace "/" (or "") is
// omitted on the wire, as the reference encoder does ("42[...]"); any other
// namespace is written followed by a comma ("42/messenger,[...]"). A
// namespace must start with '/' and must not contain a comma (Socket.IO v5,
// "Packet encoding > Format"); the encoders do not check it.

// appendHeader writes "4<type>[<namespace>,]".
func appendHeader(dst []byte, t PacketType, nsp string) []byte {
	dst = append(dst, EngineMessage, '0'+byte(t))
	if nsp != "" && nsp != "/" {
		dst = append(dst, nsp...)
		dst = append(dst, ',')
	}
	return dst
}

// AppendConnect appends the server's CONNECT answer (Socket.IO v5,
// "Connection to a namespace": the server responds "with the session ID in
// the payload"):
//
//	40{"sid":"..."}  or  40/messenger,{"sid":"..."}
//
// sid is the Socket.IO socket id, distinct from the Engine.IO session id. No
// "pid" is ever sent: with one, socket.io-client treats the last string
// argument of every event as a recovery offset.
func AppendConnect(dst []byte, nsp, sid string) []byte {
	dst = appendHeader(dst, Connect, nsp)
	dst = append(dst, `{"sid":`...)
	dst = jsonstr.Append(dst, sid)
	return append(dst, '}')
}

// AppendConnectError appends a CONNECT_ERROR (Socket.IO v5, "Connection to a
// namespace"; v5 made its payload an object), which socket.io-client
// surfaces as connect_error with err.message and err.data.code:
//
//	44/messenger,{"message":"...","data":{"code":"..."}}
//
// With code "" the data member is left out.
func AppendConnectError(dst []byte, nsp, message, code string) []byte {
	dst = appendHeader(dst, ConnectError, nsp)
	dst = append(dst, `{"message":`...)
	dst = jsonstr.Append(dst, message)
	if code != "" {
		dst = append(dst, `,"data":{"code":`...)
		dst = jsonstr.Append(dst, code)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// AppendDisconnect appends a DISCONNECT for the namespace (Socket.IO v5,
// "Disconnection from a namespace"; no payload): "41" or "41/messenger,".
func AppendDisconnect(dst []byte, nsp string) []byte {
	return appendHeader(dst, Disconnect, nsp)
}

// AppendEvent appends an EVENT (Socket.IO v5, "Sending and receiving data"
// and "Acknowledgement"):
//
//	42["name",data]  42/messenger,["name",data]  42/messenger,7["name",data]
//
// ackID < 0 means no acknowledgement is requested. name is JSON-escaped;
// data is the raw JSON of the single argument, written as is (nil: the event
// has no argument). The caller must not pass a reserved name
// (IsReservedEvent): the client rejects such packets.
func AppendEvent(dst []byte, nsp string, ackID int64, name string, data []byte) []byte {
	dst = appendHeader(dst, Event, nsp)
	if ackID >= 0 {
		dst = strconv.AppendInt(dst, ackID, 10)
	}
	dst = append(dst, '[')
	dst = jsonstr.Append(dst, name)
	if data != nil {
		dst = append(dst, ',')
		dst = append(dst, data...)
	}
	return append(dst, ']')
}

// AppendAck appends an ACK answering ackID (Socket.IO v5,
// "Acknowledgement": "The payload is mandatory and MUST be an array"):
//
//	43/messenger,7[data]
//
// data is the raw JSON of the single argument handed to the sender's
// callback; nil gives an empty array, "43/messenger,7[]". ackID is the id of
// the EVENT being answered (Packet.ID), never negative.
func AppendAck(dst []byte, nsp string, ackID int64, data []byte) []byte {
	dst = appendHeader(dst, Ack, nsp)
	dst = strconv.AppendInt(dst, ackID, 10)
	dst = append(dst, '[')
	dst = append(dst, data...)
	return append(dst, ']')
}

// AppendClientConnect appends a client's CONNECT (Socket.IO v5, "Connection
// to a namespace"; v5 lets it carry a payload for authentication), as
// socket.io-client sends it:
//
//	40/messenger,{"token":"..."}  or  40/messenger,  or  40
//
// auth is the raw JSON object of the client's auth option, nil for none.
func AppendClientConnect(dst []byte, nsp string, auth []byte) []byte {
	dst = appendHeader(dst, Connect, nsp)
	return append(dst, auth...)
}
