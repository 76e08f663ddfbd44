package node

import (
	"context"
	"encoding/json"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/socketio"
)

// hub indexes local connections by chat, user and RTM profile, keeps this
// node's bus subscriptions following its interests (a chat's channel is
// subscribed before a join returns, and dropped by the cleaner a moment
// after the last local member left: see cleanup.go), and fans deliveries
// out: each event is encoded once per namespace and the same bytes are
// queued to every local recipient. Lock order: CONCURRENCY.md.
type hub struct {
	srv *server

	mu       sync.RWMutex // guards the following
	chats    map[string]map[*conn]nsMask
	users    map[string][]*conn // a user has a handful of connections
	profiles map[string][]*conn

	// Subscription changes for one channel are serialised by a striped lock
	// and re-read the wanted state under it, so a join racing a last leave
	// (or the cleaner's delayed unsubscribe) never ends unsubscribed with
	// members. The bus is called with a stripe held, never with mu.
	subLocks [64]sync.Mutex
	seed     maphash.Seed
	subMu    sync.Mutex // guards subbed
	subbed   map[bus.Channel]bool

	typingMu sync.Mutex // guards typing
	typing   map[typingKey]time.Time

	heldMu sync.Mutex // guards held
	// held collects live events for a connection that is rejoining a chat
	// with lastEventId until its chat_joined (with missed) is out; see
	// joinChat and endRecovery.
	held map[heldKey][]heldFrame
}

// nsRecovering marks a member whose live events are held (see held).
const nsRecovering nsMask = 1 << 7

type heldKey struct {
	c      *conn
	chatID string
}

type heldFrame struct {
	eventID string
	frame   []byte
}

type typingKey struct{ chatID, userID string }

func newHub(srv *server) *hub {
	return &hub{
		srv:      srv,
		chats:    make(map[string]map[*conn]nsMask),
		users:    make(map[string][]*conn),
		profiles: make(map[string][]*conn),
		seed:     maphash.MakeSeed(),
		subbed:   make(map[bus.Channel]bool),
		typing:   make(map[typingKey]time.Time),
		held:     make(map[heldKey][]heldFrame),
	}
}

// wanted reports whether any local connection needs ch. h.mu must not be held.
func (h *hub) wanted(ch bus.Channel) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	switch ch.Kind {
	case bus.KindChat:
		return len(h.chats[ch.ID]) > 0
	case bus.KindUser:
		return len(h.users[ch.ID]) > 0
	case bus.KindProfile:
		return len(h.profiles[ch.ID]) > 0
	}
	return false
}

// sync makes this node's subscription to ch match its local interest.
func (h *hub) sync(ctx context.Context, ch bus.Channel) error {
	l := &h.subLocks[maphash.String(h.seed, ch.ID)%uint64(len(h.subLocks))]
	l.Lock()
	defer l.Unlock()
	want := h.wanted(ch)
	h.subMu.Lock()
	have := h.subbed[ch]
	h.subMu.Unlock()
	if want == have {
		return nil
	}
	var err error
	if want {
		err = h.srv.cfg.Engines.Bus.Subscribe(ctx, ch)
	} else {
		err = h.srv.cfg.Engines.Bus.Unsubscribe(ctx, ch)
	}
	if err != nil {
		return err
	}
	h.subMu.Lock()
	if want {
		h.subbed[ch] = true
	} else {
		delete(h.subbed, ch)
	}
	h.subMu.Unlock()
	return nil
}

func (h *hub) syncLogged(ch bus.Channel) {
	ctx, cancel := context.WithTimeout(context.Background(), h.srv.engineTimeout())
	defer cancel()
	if err := h.sync(ctx, ch); err != nil {
		h.srv.log.Error().Err(err).Str("channel", ch.ID).Msg("bus subscription change failed")
	}
}

// addUser indexes an authenticated connection by user and profiles.
func (h *hub) addUser(c *conn, id *identity) {
	h.mu.Lock()
	addTo(h.users, id.userID, c)
	for _, p := range id.profiles {
		addTo(h.profiles, p, c)
	}
	h.mu.Unlock()
	h.syncLogged(bus.User(id.userID))
	for _, p := range id.profiles {
		h.syncLogged(bus.Profile(p))
	}
}

func addTo(m map[string][]*conn, key string, c *conn) {
	if !slices.Contains(m[key], c) {
		m[key] = append(m[key], c)
	}
}

// removeFrom drops c from m[key]; it reports whether key is left without
// connections.
func removeFrom(m map[string][]*conn, key string, c *conn) (emptied bool) {
	conns := m[key]
	if i := slices.Index(conns, c); i >= 0 {
		conns = slices.Delete(conns, i, i+1)
		if len(conns) == 0 {
			delete(m, key)
			return true
		}
		m[key] = conns
	}
	return false
}

// joinChat adds c (in namespace ns) to chatID's local members and makes sure
// the node is subscribed before it returns, so nothing appended afterwards is
// missed. With recovering, live events for c in this chat are held until
// endRecovery, so that a client replaying history gets each event once and
// in order.
func (h *hub) joinChat(ctx context.Context, c *conn, chatID string, ns nsMask, recovering bool) error {
	h.mu.Lock()
	set := h.chats[chatID]
	if set == nil {
		set = make(map[*conn]nsMask)
		h.chats[chatID] = set
	}
	set[c] |= ns
	if recovering {
		set[c] |= nsRecovering
	}
	h.mu.Unlock()
	c.sess.mu.Lock()
	c.sess.addChat(chatID, ns)
	c.sess.mu.Unlock()
	if err := h.sync(ctx, bus.Chat(chatID)); err != nil {
		h.leaveChat(c, chatID, ns)
		h.endRecovery(c, chatID, "")
		return err
	}
	return nil
}

// endRecovery releases the events held for c in chatID, dropping those at or
// before lastReplayed (already sent in missed), and returns c to live
// delivery. The hub's lock is held throughout, so no live event can
// overtake a held one.
func (h *hub) endRecovery(c *conn, chatID, lastReplayed string) {
	k := heldKey{c, chatID}
	h.mu.Lock()
	defer h.mu.Unlock()
	member := false
	if set := h.chats[chatID]; set != nil {
		if ns, ok := set[c]; ok {
			set[c] = ns &^ nsRecovering
			member = true
		}
	}
	h.heldMu.Lock()
	frames := h.held[k]
	delete(h.held, k)
	h.heldMu.Unlock()
	if !member {
		return // left meanwhile (or the join failed): nothing to deliver
	}
	for _, f := range frames {
		if f.eventID == "" || lastReplayed == "" || bus.CompareIDs(f.eventID, lastReplayed) > 0 {
			c.send(f.frame)
		}
	}
}

// hold keeps a frame for a recovering member. h.mu is held for reading.
func (h *hub) hold(c *conn, chatID, eventID string, frame []byte) {
	k := heldKey{c, chatID}
	h.heldMu.Lock()
	h.held[k] = append(h.held[k], heldFrame{eventID, frame})
	h.heldMu.Unlock()
}

// leaveChat removes c's namespace ns from chatID; reports whether it was joined.
func (h *hub) leaveChat(c *conn, chatID string, ns nsMask) bool {
	c.sess.mu.Lock()
	was := c.sess.dropChat(chatID, ns)
	c.sess.mu.Unlock()
	if was == 0 {
		return false
	}
	h.mu.Lock()
	last := false
	if set := h.chats[chatID]; set != nil {
		if v := set[c] &^ ns; v == 0 {
			delete(set, c)
		} else {
			set[c] = v
		}
		if len(set) == 0 {
			delete(h.chats, chatID)
			last = true
		}
	}
	h.mu.Unlock()
	if last {
		// Not here: this may run on the bus reader (kick), whose shard a
		// concurrent Subscribe waits on.
		h.srv.cleaner.unsubscribeLater(bus.Chat(chatID))
	}
	return true
}

// joined reports whether c joined chatID (in any namespace).
func (c *conn) joined(chatID string) bool {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return c.sess.chatNS(chatID) != 0
}

func (c *conn) joinedCount() int {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return len(c.sess.chats)
}

// removeConn drops every index entry of a closing connection. The channels
// it leaves without local interest are unsubscribed by the cleaner: this
// runs on whichever goroutine closed the connection (a writer, the sweeper,
// the bus reader), which must not wait for the engine.
func (h *hub) removeConn(c *conn) {
	c.sess.mu.Lock()
	chats := c.sess.chats
	c.sess.chats = nil
	c.sess.mu.Unlock()
	id := c.sess.who.Load()
	var unwanted []bus.Channel
	h.mu.Lock()
	for _, j := range chats {
		if set := h.chats[j.chatID]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(h.chats, j.chatID)
				unwanted = append(unwanted, bus.Chat(j.chatID))
			}
		}
	}
	if id != nil {
		if removeFrom(h.users, id.userID, c) {
			unwanted = append(unwanted, bus.User(id.userID))
		}
		for _, p := range id.profiles {
			if removeFrom(h.profiles, p, c) {
				unwanted = append(unwanted, bus.Profile(p))
			}
		}
	}
	h.mu.Unlock()
	h.heldMu.Lock()
	for _, j := range chats {
		delete(h.held, heldKey{c, j.chatID})
	}
	h.heldMu.Unlock()
	for _, ch := range unwanted {
		h.srv.cleaner.unsubscribeLater(ch)
	}
}

// userConns returns the local connections of a user (a copy).
func (h *hub) userConns(userID string) []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return slices.Clone(h.users[userID])
}

// counts returns local chats and users.
func (h *hub) counts() (chats, users int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.chats), len(h.users)
}

func (h *hub) chatIDs() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	ids := make([]string, 0, len(h.chats))
	for id := range h.chats {
		ids = append(ids, id)
	}
	return ids
}

// frames lazily encodes one event per namespace.
type frames struct {
	srv   *server
	event string
	data  []byte
	enc   [2][]byte
}

func (f *frames) get(ns nsMask) []byte {
	i := ns >> 1
	if f.enc[i] == nil {
		nsp := f.srv.nsName(ns)
		// "42" + namespace + "," + ["event", + data + ] + escaping slack
		hint := len(nsp) + len(f.event) + len(f.data) + 16
		f.enc[i] = textFrameSized(hint, func(dst []byte) []byte { return socketio.AppendEvent(dst, nsp, -1, f.event, f.data) })
	}
	return f.enc[i]
}

// deliver is the bus handler: it fans one delivery out to local connections.
func (h *hub) deliver(d bus.Delivery) {
	h.srv.metrics.busIn.WithLabelValues(d.Event).Inc()
	switch d.Channel.Kind {
	case bus.KindChat:
		if d.Event == evUserTyping {
			h.deliverTyping(d)
			return
		}
		data := []byte(d.Data)
		if d.EventID != "" {
			data = bus.SpliceFields(d.Data, "eventId", d.EventID)
		}
		h.toChat(d.Channel.ID, d.EventID, d.Event, data, "")
	case bus.KindUser:
		if d.Event == evKick {
			h.kick(d)
			return
		}
		if d.Event == evAdminDisconnect {
			h.srv.adminDisconnect(d)
			return
		}
		h.mu.RLock()
		h.toSet(h.users[d.Channel.ID], d.Event, d.Data)
		h.mu.RUnlock()
	case bus.KindProfile:
		if h.srv.cfg.RTM == nil {
			return
		}
		event, data, ok := h.srv.cfg.RTM.Accept(d)
		if !ok {
			return
		}
		h.mu.RLock()
		h.toSet(h.profiles[d.Channel.ID], event, data)
		h.mu.RUnlock()
	}
}

// toChat queues one event to every local member of a chat except the
// connections of exceptUser.
func (h *hub) toChat(chatID, eventID, event string, data []byte, exceptUser string) {
	f := frames{srv: h.srv, event: event, data: data}
	n := 0
	h.mu.RLock()
	for c, ns := range h.chats[chatID] {
		if exceptUser != "" && c.sess.userID() == exceptUser {
			continue
		}
		for _, one := range [2]nsMask{nsChat, nsRoot} {
			if ns&one == 0 {
				continue
			}
			if ns&nsRecovering != 0 {
				h.hold(c, chatID, eventID, f.get(one))
			} else {
				c.send(f.get(one))
			}
			n++
		}
	}
	h.mu.RUnlock()
	h.srv.metrics.eventsOut.WithLabelValues(event).Add(float64(n))
	if event == evNewMessage {
		h.srv.fanout.fannedOut(chatID, eventID)
		h.srv.stats.messagesOut.Add(uint64(n))
	}
}

// toSet queues an event to each connection of set on every namespace it has
// connected. h.mu must be held for reading.
func (h *hub) toSet(set []*conn, event string, data []byte) {
	f := frames{srv: h.srv, event: event, data: data}
	n := 0
	for _, c := range set {
		c.sess.mu.Lock()
		ns := c.sess.nsps
		c.sess.mu.Unlock()
		if ns&nsChat != 0 {
			c.send(f.get(nsChat))
			n++
		}
		if ns&nsRoot != 0 {
			c.send(f.get(nsRoot))
			n++
		}
	}
	h.srv.metrics.eventsOut.WithLabelValues(event).Add(float64(n))
}

// typingEvent is the user_typing payload.
type typingEvent struct {
	ChatID   string `json:"chatId"`
	UserID   string `json:"userId"`
	IsTyping bool   `json:"isTyping"`
}

// deliverTyping forwards a typing change to the chat's other users and tracks
// starts so that one never refreshed or stopped ends as a stop after the
// expiry, even when the stop is lost (or its node died).
func (h *hub) deliverTyping(d bus.Delivery) {
	var ev typingEvent
	if json.Unmarshal(d.Data, &ev) != nil || ev.UserID == "" {
		return
	}
	k := typingKey{ev.ChatID, ev.UserID}
	h.typingMu.Lock()
	_, was := h.typing[k]
	if ev.IsTyping {
		h.typing[k] = h.srv.cfg.Now().Add(h.srv.cfg.TypingExpiry)
	} else {
		delete(h.typing, k)
	}
	h.typingMu.Unlock()
	if !ev.IsTyping && !was {
		return // already expired and sent as a stop
	}
	h.toChat(ev.ChatID, "", evUserTyping, d.Data, ev.UserID)
}

// expireTyping sends a stop for every start past its expiry.
func (h *hub) expireTyping(now time.Time) {
	var expired []typingKey
	h.typingMu.Lock()
	for k, at := range h.typing {
		if !now.Before(at) {
			expired = append(expired, k)
			delete(h.typing, k)
		}
	}
	h.typingMu.Unlock()
	for _, k := range expired {
		data, _ := json.Marshal(typingEvent{ChatID: k.chatID, UserID: k.userID, IsTyping: false})
		h.toChat(k.chatID, "", evUserTyping, data, k.userID)
	}
}

// kick makes the local connections of a removed member leave the chat.
func (h *hub) kick(d bus.Delivery) {
	var p chatPayload
	if json.Unmarshal(d.Data, &p) != nil || p.ChatID == "" {
		return
	}
	for _, c := range h.userConns(d.Channel.ID) {
		c.sess.mu.Lock()
		ns := c.sess.chatNS(p.ChatID)
		c.sess.mu.Unlock()
		if ns == 0 || !h.leaveChat(c, p.ChatID, ns) {
			continue
		}
		for _, one := range []nsMask{nsChat, nsRoot} {
			if ns&one != 0 {
				c.emitJSON(one, evChatLeft, p)
			}
		}
	}
}
