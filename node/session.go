package node

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
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

	// Read side only: CONNECTs are handled by the connection's reader.
	refusals  int               // refused CONNECTs; maxRefusedConnects closes the connection
	nsJoins   int               // CONNECTs to a namespace not connected; maxNamespaceConnects closes the connection
	lastSum   [sha256.Size]byte // of the token last verified on this connection
	lastToken *identity         // its identity; nil before the first

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
	// An EVENT or ACK whose header parses but whose payload is of the wrong
	// kind is answered below; any other malformed packet closes.
	badPayload := errors.Is(err, socketio.ErrPayload) && p.Type != socketio.Connect &&
		p.Type != socketio.Disconnect && p.Type != socketio.ConnectError
	if err != nil && !badPayload {
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
		if badPayload || err != nil {
			s.badEvent(c, ns, p.ID, p.Data)
			return ""
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

// badEvent answers an EVENT whose payload is not a well-formed
// `["name", ...]` array (malformed or too deeply nested JSON, a name that is
// not a plain string) with INVALID_PAYLOAD, as an ack or an error event; the
// connection stays (PROTOCOL.md: a bad event payload never closes it).
func (s *session) badEvent(c *conn, ns nsMask, ackID int64, payload []byte) {
	event := handledEventLabels.other // a label: only known names are used
	if name := socketio.PeekEventName(payload); name != nil {
		event = handledEventLabels.boundBytes(name)
	}
	r := request{c: c, ns: ns, ackID: ackID, event: event}
	r.fail(errInvalid("malformed event payload: want [\"name\", ...] as well-formed JSON, nested at most %d deep", socketio.MaxJSONDepth))
}

// connect handles a Socket.IO CONNECT with an optional auth payload in one of
// the client's three forms: `40`, `40/nsp,` and `40/nsp,{"token":"..."}`.
func (s *session) connect(c *conn, ns nsMask, authData []byte) (reason string) {
	srv := c.srv
	if !s.connected(ns) {
		if s.nsJoins++; s.nsJoins > maxNamespaceConnects {
			// Not a CONNECT_ERROR: a transport close, so socket.io-client
			// reconnects by itself on a fresh connection.
			c.closeAfter(closeFrame(ws.StatusPolicyViolation, "too many namespace connects"), reasonNamespaceConnects)
			return reasonNamespaceConnects
		}
	}
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
	id, err := s.verify(srv.verifier, token)
	if err != nil {
		ae := err.(*authError)
		return s.refuse(c, nsp, ae.code, ae.err.Error())
	}
	if prev := s.who.Load(); prev != nil && prev.userID != id.userID {
		return s.refuse(c, nsp, codeAuthInvalid, "token is for another user than this connection's")
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
			return s.refuse(c, nsp, codeConnectionLimit, "too many connections for this user")
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
		srv.hotLog.Info().Str("user", id.userID).Str("conn", c.sid).Str("remote", c.remote()).Str("namespace", nsp).Msg("connected") // sampled, as "disconnected"
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

// verify checks token, or reuses the identity of the token last verified on
// this connection: a CONNECT repeating it (another namespace, or a flood
// from a logged-in client) costs a hash instead of a signature check, which
// for RS256 and ES256 is the costliest thing a client can ask of the node.
// The expiry is still checked against the clock.
func (s *session) verify(v *verifier, token string) (identity, error) {
	sum := sha256.Sum256([]byte(token))
	if s.lastToken != nil && sum == s.lastSum {
		if !v.now().Before(s.lastToken.expires) { // as golang-jwt: valid while now < exp
			return identity{}, &authError{codeAuthExpired, errors.New("token has expired")}
		}
		return *s.lastToken, nil
	}
	id, err := v.verify(token)
	if err == nil {
		idCopy := id
		s.lastSum, s.lastToken = sum, &idCopy
	}
	return id, err
}

// maxRefusedConnects is how many refused CONNECTs a connection may send:
// the one that reaches it is answered, then the connection is closed (1008).
// A client retrying with a fresh token needs one or two; a flood of forged
// tokens costs at most this many signature checks per connection, and the
// per-address connection rate bounds the connections.
const maxRefusedConnects = 5

// reasonRefusedConnects closes a connection at maxRefusedConnects.
const reasonRefusedConnects = "refused_connects"

// maxNamespaceConnects is how many times a connection may connect a
// namespace it is not connected to (the first CONNECT of each namespace
// included): each such CONNECT reads the user's RTM states from Redis, and a
// client cycling DISCONNECT/CONNECT would otherwise make one read per packet.
// An application needs two (root and /messenger) plus a few toggles; the one
// beyond the cap closes the connection (1008) and socket.io-client
// reconnects on a new one, which the per-address connection rate bounds.
const maxNamespaceConnects = 20

// reasonNamespaceConnects closes a connection beyond maxNamespaceConnects.
const reasonNamespaceConnects = "namespace_connects"

// maxRefusalLogBytes bounds the reason logged for a refusal (token parser
// errors may quote a little of the token).
const maxRefusalLogBytes = 200

// refuse answers a CONNECT with CONNECT_ERROR carrying a PROTOCOL.md code.
// The client does not retry by itself; the transport stays open so the
// application can retry on it, up to maxRefusedConnects refusals. The log
// line is sampled: a refusal flood must not become a log flood.
func (s *session) refuse(c *conn, nsp, code, message string) (reason string) {
	srv := c.srv
	srv.metrics.refused.WithLabelValues(code).Inc()
	srv.live.record(liveEvent{Kind: liveRefused, Code: code, Conn: c.sid, Remote: c.remote(), Detail: nsp + ": " + message})
	s.refusals++
	srv.hotLog.Info().Str("conn", c.sid).Str("remote", c.remote()).Str("code", code).
		Str("reason", truncate(message, maxRefusalLogBytes)).Int("refusals", s.refusals).Msg("connect refused")
	c.send(textFrame(func(dst []byte) []byte { return socketio.AppendConnectError(dst, nsp, message, code) }))
	if s.refusals >= maxRefusedConnects {
		c.closeAfter(closeFrame(ws.StatusPolicyViolation, "too many refused connects"), reasonRefusedConnects)
		return reasonRefusedConnects
	}
	return ""
}
