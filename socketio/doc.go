// Package socketio is the wire codec for Engine.IO v4 and Socket.IO v5 over
// the WebSocket transport, the protocol spoken by unmodified socket.io-client
// v4 applications (transports: ['websocket']).
//
// It only turns bytes into packets and packets into bytes: no connection
// state, no I/O. The server (node) uses it on its hot path, the load
// generator (bench) on the client side, so parsing does not allocate and
// encoding appends to a caller-owned buffer.
//
// Specifications:
//
//   - Engine.IO protocol, revision 4: socketio/engine.io-protocol README.md
//     (also socketio/socket.io docs/engine.io-protocol/v4-current.md). On
//     WebSocket every Engine.IO packet is one frame, "<packet type>[<data>]".
//   - Socket.IO protocol, revision 5: socketio/socket.io-protocol Readme.md
//     (also socketio/socket.io docs/socket.io-protocol/v5-current.md). A
//     Socket.IO packet travels as the data of an Engine.IO message packet:
//     "<packet type>[<# of binary attachments>-][<namespace>,][<acknowledgment id>][JSON payload]".
//
// Binary attachments travel in binary WebSocket frames of their own, after
// the BINARY_EVENT/BINARY_ACK text frame that announces them; this package
// parses the announcement (Packet.Attachments) but never the raw frames.
//
// Reading a text frame on the server:
//
//	typ, data, err := socketio.ParseEngine(frame)
//	if err != nil { /* close the connection */ }
//	switch typ {
//	case socketio.EnginePong: // heartbeat answered
//	case socketio.EngineMessage:
//		p, err := socketio.ParsePacket(data)
//		if err != nil && !errors.Is(err, socketio.ErrPayload) { /* bad header: close the connection */ }
//		if p.Type == socketio.Event {
//			name, arg0, nargs, err := socketio.ParseEvent(p.Data)
//			// on error (or ErrPayload above): answer p.ID with an error, keep the connection
//			// dispatch on name; decode arg0 with encoding/json; ack with p.ID
//		}
//	}
//
// Each encoder appends one complete Engine.IO text payload, ready to send as a
// text frame, and does not allocate when dst has room. The root namespace
// ("/" or "") is left out on the wire ("42[...]"), others are written with
// their comma ("42/messenger,[...]").
//
// Writing, into a reused buffer:
//
//	buf = socketio.AppendOpen(buf[:0], socketio.Open{SID: sid, PingInterval: 25 * time.Second,
//		PingTimeout: 20 * time.Second, MaxPayload: 65536})    // 0{"sid":...}
//	buf = socketio.AppendConnect(buf[:0], "/messenger", socketSID) // 40/messenger,{"sid":"..."}
//	buf = socketio.AppendEvent(buf[:0], "/messenger", -1, "new_message", payloadJSON)
//	buf = socketio.AppendAck(buf[:0], "/messenger", p.ID, []byte(`{"ok":true}`)) // 43/messenger,0[{"ok":true}]
//
// Parsed values (Packet.Namespace, Packet.Data, event names and arguments)
// alias the input frame: copy them before the frame's buffer is reused.
package socketio
