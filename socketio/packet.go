package socketio

import "strconv"

// PacketType is a Socket.IO v5 packet type (Socket.IO v5, "Exchange
// protocol": CONNECT 0, DISCONNECT 1, EVENT 2, ACK 3, CONNECT_ERROR 4,
// BINARY_EVENT 5, BINARY_ACK 6).
type PacketType byte

// Socket.IO v5 packet types.
const (
	Connect      PacketType = iota // 0: connect to a namespace; client sends auth, server answers {"sid":...}
	Disconnect                     // 1: leave a namespace, no payload
	Event                          // 2: ["name", args...], optional ack id
	Ack                            // 3: [args...] answering an ack id
	ConnectError                   // 4: namespace connection refused, {"message":...,"data":...}
	BinaryEvent                    // 5: EVENT with "<n>-" binary attachments in the following frames
	BinaryAck                      // 6: ACK with "<n>-" binary attachments in the following frames
)

var packetTypeNames = [...]string{"CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"}

// String returns the spec's name of the type, e.g. "CONNECT_ERROR".
func (t PacketType) String() string {
	if int(t) < len(packetTypeNames) {
		return packetTypeNames[t]
	}
	return "PacketType(" + strconv.Itoa(int(t)) + ")"
}

// Packet is a parsed Socket.IO packet. Namespace and Data alias the input
// buffer (no copy).
type Packet struct {
	Type PacketType
	// Namespace is "/" when absent from the wire. When absent it is a shared
	// read-only slice: never write through it.
	Namespace []byte
	// Attachments is the number of binary WebSocket frames that follow a
	// BINARY_EVENT or BINARY_ACK; 0 for other types. A receiver that refuses
	// the packet must still read and discard that many frames.
	Attachments int
	// ID is the acknowledgement id, -1 when absent. Ids start at 0, so 0 is a
	// valid id.
	ID int64
	// Data is the raw JSON payload after the id; may be empty.
	Data []byte
}

// rootNamespace is Packet.Namespace when the wire omits it. Capacity 1, so an
// append by a careless caller copies instead of writing past it.
var rootNamespace = []byte("/")[:1:1]

const (
	// maxAckIDDigits keeps ack ids inside int64 (10^18 < 2^63).
	maxAckIDDigits = 18
	// maxAttachmentDigits keeps the attachment count inside int32.
	maxAttachmentDigits = 9
)

// ParsePacket parses the data of an Engine.IO message packet (what follows the
// '4') into a Socket.IO packet. It does not allocate.
//
// Socket.IO v5, "Packet encoding > Format":
//
//	<packet type>[<# of binary attachments>-][<namespace>,][<acknowledgment id>][JSON-stringified payload]
//
// Each part is read as follows.
//
//   - The attachments count is present, and required, for BINARY_EVENT and
//     BINARY_ACK only.
//   - The namespace is present only if what follows starts with '/', and runs
//     to the first ',' or to the end of the packet, as the reference
//     decoder reads it: `40/messenger` is a CONNECT to "/messenger" (the
//     built-in parser has no escape, so a namespace never holds a comma).
//   - The ack id, the digits right after that, is read for EVENT, ACK,
//     BINARY_EVENT and BINARY_ACK, and required for the two ACK types
//     ("The receiver MUST respond with an ACK packet with the same event ID").
//   - The payload kind is checked by its first byte, as the reference
//     decoder's isPayloadValid does: CONNECT an optional object, DISCONNECT
//     nothing, EVENT and ACK an array (ParseEvent and ParseArgs walk it),
//     CONNECT_ERROR an object or a string.
//
// A packet whose header parses but whose payload is of the wrong kind is
// ErrPayload, and then the returned Packet's header fields (Type,
// Attachments, Namespace, ID) are valid: a server can answer such a packet
// (for example an EVENT with an error) instead of closing the connection.
func ParsePacket(b []byte) (Packet, error) {
	p := Packet{Namespace: rootNamespace, ID: -1}
	if len(b) == 0 {
		return p, ErrEmpty
	}
	if b[0] < '0' || b[0] > '0'+byte(BinaryAck) {
		return p, ErrPacketType
	}
	p.Type = PacketType(b[0] - '0')
	i := 1

	// "<# of binary attachments>-", BINARY_EVENT and BINARY_ACK only.
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		start := i
		n := 0
		for i < len(b) && isDigit(b[i]) {
			if i-start == maxAttachmentDigits {
				return p, ErrAttachments
			}
			n = n*10 + int(b[i]-'0')
			i++
		}
		if i == start || i == len(b) || b[i] != '-' {
			return p, ErrAttachments
		}
		p.Attachments = n
		i++
	}

	// "<namespace>,", only when it starts with '/'.
	if i < len(b) && b[i] == '/' {
		j := i
		for j < len(b) && b[j] != ',' {
			j++
		}
		p.Namespace = b[i:j]
		i = min(j+1, len(b))
	}

	// "<acknowledgment id>", packets that can carry one.
	switch p.Type {
	case Event, Ack, BinaryEvent, BinaryAck:
		start := i
		var id int64
		for i < len(b) && isDigit(b[i]) {
			if i-start == maxAckIDDigits {
				return p, ErrAckID
			}
			id = id*10 + int64(b[i]-'0')
			i++
		}
		if i > start {
			p.ID = id
		} else if p.Type == Ack || p.Type == BinaryAck {
			return p, ErrAckID
		}
	}

	p.Data = b[i:]
	if !payloadFits(p.Type, p.Data) {
		return p, ErrPayload
	}
	return p, nil
}

// payloadFits checks the kind of payload by its first byte (Socket.IO v5,
// "Exchange protocol"; reference decoder's isPayloadValid).
func payloadFits(t PacketType, data []byte) bool {
	switch t {
	case Connect: // optional object: auth from the client, {"sid":...} from the server
		return len(data) == 0 || data[0] == '{'
	case Disconnect: // no payload
		return len(data) == 0
	case ConnectError: // object {"message":...} (v5), or a string
		return len(data) > 0 && (data[0] == '{' || data[0] == '"')
	default: // EVENT and ACK: "The payload is mandatory and MUST be an array"
		return len(data) > 0 && data[0] == '['
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
