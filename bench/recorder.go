package bench

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"github.com/anchat/realtime/socketio"
)

// recorder counts what one reading goroutine sees. Its owner locks mu once
// per read (not per message); the ticker locks it to take a snapshot.
type recorder struct {
	mu        sync.Mutex
	lat       Histogram // every first delivery of the run
	interval  Histogram // since the last tick
	received  int64     // distinct deliveries
	dups      int64
	ooo       int64
	misrouted int64 // delivered to a connection outside the sender's chat
	malformed int64 // a delivery whose marker could not be read
	invalid   int64 // --strict: a delivery whose fields are wrong
	frames    int64 // text messages handled after the handshake
	lastRecv  int64 // unix ns of the latest delivery
	errors    map[string]int64
}

func (r *recorder) countError(kind string) {
	if r.errors == nil {
		r.errors = make(map[string]int64)
	}
	r.errors[kind]++
}

// handler returns the event handler for connections read under r: it answers
// pings and counts deliveries. now is the receive time of the current read,
// set by the reader before each feed.
type handler struct {
	w   *worker
	rec *recorder
	now int64
}

// on handles one Engine.IO text message of a ready connection. It is called
// with h.rec.mu held.
func (h *handler) on(c *Conn, msg []byte) error {
	r := h.rec
	r.frames++
	if len(msg) == 0 {
		r.malformed++
		return nil
	}
	switch msg[0] {
	case socketio.EnginePing: // Engine.IO v4: the server pings, the client pongs
		var pong [16]byte
		return c.writeText(append(append(pong[:0], socketio.EnginePong), msg[1:min(len(msg), 8)]...))
	case socketio.EngineClose:
		return errConnClosed
	case socketio.EngineMessage:
	default:
		return nil
	}
	if len(msg) >= 2 {
		switch msg[1] {
		case '1': // Socket.IO DISCONNECT from the server
			r.countError("server_disconnect")
			return errConnClosed
		case '4':
			r.countError("connect_error")
			return errConnClosed
		}
	}
	name, ok := eventName(msg)
	if !ok {
		return nil // acks and other packets are not measured
	}
	w := h.w
	switch string(name) {
	case "new_message":
		if w.strict {
			return h.strictMessage(c, msg)
		}
		m, ok := findMarker(msg, fieldContent)
		h.deliver(c, m, ok)
	case "message_toast":
		m, ok := findMarker(msg, fieldText)
		h.deliver(c, m, ok)
	case "user_typing":
		h.typing(c, msg)
	case "error":
		code, ok := jsonStringAt(msg, fieldCode)
		if !ok {
			code = []byte("unknown")
		}
		r.countError("event_error:" + string(code))
	}
	return nil
}

// deliver counts one message delivery to receiver c.
func (h *handler) deliver(c *Conn, m marker, ok bool) {
	r := h.rec
	if !ok {
		r.malformed++
		return
	}
	if int(m.group) != c.group {
		r.misrouted++
		return
	}
	if m.member < 0 || int(m.member) >= h.w.cfg.groupSize(c.group)+1 {
		r.malformed++
		return
	}
	if int(m.member) >= len(c.seen) {
		seen := make([]seqSet, m.member+1)
		copy(seen, c.seen)
		c.seen = seen
	}
	dup, ooo, valid := c.seen[m.member].add(m.seq)
	switch {
	case !valid:
		r.malformed++
		return
	case dup:
		r.dups++
		return
	}
	if ooo {
		r.ooo++
	}
	r.received++
	d := h.now - m.t
	r.lat.Record(d)
	r.interval.Record(d)
	if h.now > r.lastRecv {
		r.lastRecv = h.now
	}
}

// typing counts a user_typing delivery. Latency is known when the sender is
// a connection of this worker (its send time is in typingSent).
func (h *handler) typing(c *Conn, msg []byte) {
	r := h.rec
	uid, ok := jsonStringAt(msg, fieldUserID)
	dash := bytes.LastIndexByte(uid, '-')
	if !ok || dash < 0 {
		r.malformed++
		return
	}
	sender, err := strconv.Atoi(string(uid[dash+1:]))
	w := h.w
	if err != nil || sender < 0 || sender >= w.cfg.Conns {
		r.malformed++
		return
	}
	if g, _ := w.cfg.groupOf(sender); g != c.group || sender == c.idx {
		r.misrouted++
		return
	}
	r.received++
	if h.now > r.lastRecv {
		r.lastRecv = h.now
	}
	if sender < w.lo || sender >= w.hi {
		return
	}
	i := bytes.Index(msg, fieldTyping)
	if i < 0 || i+len(fieldTyping) >= len(msg) {
		return
	}
	isTyping := int64(0)
	if msg[i+len(fieldTyping)] == 't' {
		isTyping = 1
	}
	stamp := w.typingSent[sender-w.lo].Load() // send time with the start/stop flag in bit 0
	if stamp != 0 && stamp&1 == isTyping {
		d := h.now - stamp&^1
		r.lat.Record(d)
		r.interval.Record(d)
	}
}

// strictMessage decodes a new_message fully and checks it against what was
// sent: the chat, the sender, the marker.
func (h *handler) strictMessage(c *Conn, msg []byte) error {
	r := h.rec
	typ, data, err := socketio.ParseEngine(msg)
	if err != nil || typ != socketio.EngineMessage {
		r.invalid++
		return nil
	}
	p, err := socketio.ParsePacket(data)
	if err != nil || p.Type != socketio.Event || string(p.Namespace) != h.w.cfg.Namespace {
		r.invalid++
		return nil
	}
	_, arg, _, err := socketio.ParseEvent(p.Data)
	if err != nil {
		r.invalid++
		return nil
	}
	var ev struct {
		ChatID   string `json:"chatId"`
		SenderID string `json:"senderId"`
		Content  string `json:"content"`
	}
	if err := json.Unmarshal(arg, &ev); err != nil || !strings.HasPrefix(ev.Content, "t=") {
		r.invalid++
		return nil
	}
	m, ok := parseMarker([]byte(ev.Content))
	if !ok {
		r.malformed++
		return nil
	}
	cfg := h.w.cfg
	sender := int(m.group)*cfg.ChatSize + int(m.member)
	if ev.ChatID != cfg.chatID(int(m.group)) || ev.SenderID != cfg.userID(sender) {
		r.invalid++
		return nil
	}
	h.deliver(c, m, true)
	return nil
}
