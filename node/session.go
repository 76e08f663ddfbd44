package node

import (
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"

	"github.com/anchat/realtime/socketio"
)

// Namespaces are indexed by bit: bit 0 is "/", bit 1 the configured chat
// namespace (when it is not "/").
type nsMask uint8

const (
	nsRoot nsMask = 1 << iota
	nsChat
)

// session is the Engine.IO / Socket.IO state of one connection.
type session struct {
	who          atomic.Pointer[identity] // set by the first authenticated CONNECT
	upgradeToken string                   // token from the query or Authorization header
	slot         atomic.Bool              // holds a presence entry

	mu    sync.Mutex // guards the following
	nsps  nsMask     // connected namespaces
	sids  [2]string  // Socket.IO sid per namespace
	chats []joined   // chats joined, with their namespaces; a slice, not a map: few per connection
}

// joined is one chat a connection joined, in namespaces ns.
type joined struct {
	chatID string
	ns     nsMask
}

// chatNS returns the namespaces chatID is joined in (0: not joined).
// s.mu must be held.
func (s *session) chatNS(chatID string) nsMask {
	for _, j := range s.chats {
		if j.chatID == chatID {
			return j.ns
		}
	}
	return 0
}

// addChat joins chatID in ns. s.mu must be held.
func (s *session) addChat(chatID string, ns nsMask) {
	for i := range s.chats {
		if s.chats[i].chatID == chatID {
			s.chats[i].ns |= ns
			return
		}
	}
	s.chats = append(s.chats, joined{chatID, ns})
}

// dropChat leaves chatID in ns and returns the namespaces it was joined in.
// s.mu must be held.
func (s *session) dropChat(chatID string, ns nsMask) nsMask {
	for i := range s.chats {
		if s.chats[i].chatID != chatID {
			continue
		}
		was := s.chats[i].ns
		if s.chats[i].ns &^= ns; s.chats[i].ns == 0 {
			s.chats = slices.Delete(s.chats, i, i+1)
		}
		return was
	}
	return 0
}

func (s *session) userID() string {
	if id := s.who.Load(); id != nil {
		return id.userID
	}
	return ""
}

func (s *session) connected(ns nsMask) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nsps&ns != 0
}

// nsName returns the wire name of a namespace bit.
func (srv *server) nsName(ns nsMask) string {
	if ns == nsRoot {
		return "/"
	}
	return srv.cfg.Namespace
}

// nsOf maps a wire namespace to its bit; 0 when not served.
func (srv *server) nsOf(name []byte) nsMask {
	switch string(name) {
	case "/":
		return nsRoot
	case srv.cfg.Namespace:
		return nsChat
	}
	return 0
}

// onText handles one Engine.IO packet (engine.io-protocol v4, "Packet").
func (s *session) onText(c *conn, msg []byte) (reason string) {
	typ, data, err := socketio.ParseEngine(msg)
	if err != nil {
		return c.protocolError("malformed engine.io packet")
	}
	switch typ {
	case socketio.EnginePong:
		c.awaitingPong.Store(false)
	case socketio.EnginePing: // a client probe; answer it
		c.send(textFrame(func(dst []byte) []byte { return append(append(dst, socketio.EnginePong), data...) }))
	case socketio.EngineMessage:
		return s.onPacket(c, data)
	case socketio.EngineClose:
		c.close(reasonClientClose)
		return reasonClientClose
	case socketio.EngineNoop:
	default:
		return c.protocolError("unexpected engine.io packet type " + strconv.Quote(string(typ)))
	}
	return ""
}

// onPacket handles one Socket.IO packet (socket.io-protocol v5, "Packet format").
func (s *session) onPacket(c *conn, data []byte) (reason string) {
	p, err := socketio.ParsePacket(data)
	if err != nil {
		return c.protocolError("malformed socket.io packet")
	}
	ns := c.srv.nsOf(p.Namespace)
	if ns == 0 {
		// Unknown namespace: a clear error, then the connection is closed.
		nsp := string(p.Namespace)
		c.send(textFrame(func(dst []byte) []byte {
			return socketio.AppendConnectError(dst, nsp, "Invalid namespace", "INVALID_NAMESPACE")
		}))
		c.closeAfter(closeFrame(ws.StatusPolicyViolation, "invalid namespace"), reasonNamespace)
		return reasonNamespace
	}
	switch p.Type {
	case socketio.Connect:
		return s.connect(c, ns, p.Data)
	case socketio.Disconnect:
		s.disconnectNamespace(c, ns)
	case socketio.Event:
		if !s.connected(ns) {
			return "" // as the reference server: events of an unconnected namespace are ignored
		}
		name, arg, _, err := socketio.ParseEvent(p.Data)
		if err != nil {
			return c.protocolError("malformed event")
		}
		c.srv.dispatch(c, ns, p.ID, name, arg)
	case socketio.Ack:
		// The server asks for no acks: nothing to match.
	case socketio.BinaryEvent, socketio.BinaryAck:
		// Binary packets are refused; their attachment frames follow and are discarded.
		c.discard += p.Attachments
		if p.Type == socketio.BinaryEvent && s.connected(ns) {
			r := request{c: c, ns: ns, ackID: p.ID, event: "binary"}
			r.fail(errInvalid("binary packets are not accepted"))
		}
	default:
		return c.protocolError("unexpected socket.io packet type")
	}
	return ""
}

// connect handles a Socket.IO CONNECT with an optional auth payload in one of
// the client's three forms: `40`, `40/nsp,` and `40/nsp,{"token":"..."}`.
func (s *session) connect(c *conn, ns nsMask, authData []byte) (reason string) {
	srv := c.srv
	nsp := srv.nsName(ns)
	token := s.upgradeToken
	if len(authData) > 0 {
		var auth struct {
			Token string `json:"token"`
		}
		if json.Unmarshal(authData, &auth) != nil {
			return c.protocolError("malformed connect payload")
		}
		if auth.Token != "" {
			token = auth.Token // the Socket.IO auth payload wins
		}
	}
	id, err := srv.verifier.verify(token)
	if err != nil {
		ae := err.(*authError)
		srv.refuse(c, nsp, ae.code, ae.err.Error())
		return ""
	}
	if prev := s.who.Load(); prev != nil && prev.userID != id.userID {
		srv.refuse(c, nsp, codeAuthInvalid, "token is for another user than this connection's")
		return ""
	}
	if !s.slot.Load() {
		if srv.draining.Load() {
			c.closeAfter(closeFrame(ws.StatusGoingAway, codeDraining), reasonDraining)
			return reasonDraining
		}
		ok, err := srv.presence.acquire(c, id.userID)
		if err != nil {
			// Time cures this: close the transport so the client's own
			// reconnection tries again (PROTOCOL.md section 1).
			srv.log.Error().Err(err).Str("conn", c.sid).Str("user", id.userID).Msg("presence unavailable; closing connection")
			c.closeAfter(closeFrame(1013, codeUnavailable), reasonUnavailable)
			return reasonUnavailable
		}
		if !ok {
			srv.refuse(c, nsp, codeConnectionLimit, "too many connections for this user")
			return ""
		}
		s.slot.Store(true)
		if c.isClosed() { // closed while we took the slot: give it back
			srv.releaseSlot(c)
			return reasonClientGone
		}
	}
	first := s.who.Load() == nil
	if first {
		idCopy := id
		s.who.Store(&idCopy)
	} else if id.expires.After(s.who.Load().expires) {
		idCopy := id // a later token extends the connection's life
		s.who.Store(&idCopy)
	}
	s.mu.Lock()
	already := s.nsps&ns != 0
	s.nsps |= ns
	if s.sids[ns>>1] == "" {
		s.sids[ns>>1] = srv.newID()
	}
	sid := s.sids[ns>>1]
	s.mu.Unlock()
	c.send(textFrame(func(dst []byte) []byte { return socketio.AppendConnect(dst, nsp, sid) }))
	if first {
		srv.hub.addUser(c, &id)
		if c.isClosed() { // closed meanwhile: undo what onClosed could not see
			srv.hub.removeConn(c)
			return reasonClientGone
		}
		srv.metrics.connected.Inc()
		srv.log.Info().Str("user", id.userID).Str("conn", c.sid).Str("remote", c.remote()).Str("namespace", nsp).Msg("connected")
	} else if !already {
		srv.log.Debug().Str("user", id.userID).Str("conn", c.sid).Str("namespace", nsp).Msg("namespace connected")
	}
	if !already {
		srv.sendRTMStatus(c, ns, s.who.Load())
	}
	return ""
}

// disconnectNamespace handles a client DISCONNECT: it leaves the namespace's
// chats; the transport stays until the client closes it.
func (s *session) disconnectNamespace(c *conn, ns nsMask) {
	s.mu.Lock()
	s.nsps &^= ns
	var left []string
	for _, j := range s.chats {
		if j.ns&ns != 0 {
			left = append(left, j.chatID)
		}
	}
	s.mu.Unlock()
	for _, chatID := range left {
		c.srv.hub.leaveChat(c, chatID, ns)
	}
}

// refuse answers a CONNECT with CONNECT_ERROR carrying a PROTOCOL.md code.
// The client does not retry by itself; the transport stays open so the
// application can retry on it.
func (srv *server) refuse(c *conn, nsp, code, message string) {
	srv.metrics.refused.WithLabelValues(code).Inc()
	srv.log.Info().Str("conn", c.sid).Str("remote", c.remote()).Str("code", code).Str("reason", message).Msg("connect refused")
	c.send(textFrame(func(dst []byte) []byte { return socketio.AppendConnectError(dst, nsp, message, code) }))
}
