package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/ident"
	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/socketio"
)

// Client and server event names of PROTOCOL.md section 2.
const (
	evJoinChat       = "join_chat"
	evLeaveChat      = "leave_chat"
	evSendMessage    = "send_message"
	evEditMessage    = "edit_message"
	evDeleteMessage  = "delete_message"
	evTypingStart    = "typing_start"
	evTypingStop     = "typing_stop"
	evAddReaction    = "add_reaction"
	evRemoveReaction = "remove_reaction"

	evNewMessage      = "new_message"
	evMessageSent     = "message_sent"
	evMessageEdited   = "message_edited"
	evMessageDeleted  = "message_deleted"
	evUserTyping      = "user_typing"
	evReactionUpdated = "reaction_updated"
	evChatJoined      = "chat_joined"
	evChatLeft        = "chat_left"
	evError           = "error"
)

// Error codes of PROTOCOL.md section 2.
const (
	codeInvalidPayload = "INVALID_PAYLOAD"
	codeTooLarge       = "TOO_LARGE"
	codeNotMember      = "NOT_MEMBER"
	codeNotJoined      = "NOT_JOINED"
	codeForbidden      = "FORBIDDEN"
	codeNotFound       = "NOT_FOUND"
	codeInternal       = "INTERNAL"
)

// eventError is a refused event, carrying its wire code.
type eventError struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	RetryAfterMs int64  `json:"retryAfterMs,omitempty"`
}

func (e *eventError) Error() string { return e.Code + ": " + e.Message }

func errInvalid(format string, args ...any) *eventError {
	return &eventError{Code: codeInvalidPayload, Message: fmt.Sprintf(format, args...)}
}

func errTooLarge(format string, args ...any) *eventError {
	return &eventError{Code: codeTooLarge, Message: fmt.Sprintf(format, args...)}
}

// request is one client event being handled.
type request struct {
	c      *conn
	ns     nsMask
	ackID  int64  // -1: no ack callback
	event  string // a handled event's name, or an unknown one cut to maxEventNameEcho
	chatID string
	tempID string
	// received is when the event was dispatched (the send fan-out clock
	// starts there).
	received time.Time
}

// ok answers a successful event: the ack gets {"ok":true, ...fields of v}.
func (r *request) ok(v any) {
	if r.ackID < 0 {
		return
	}
	body, err := json.Marshal(v)
	if err != nil || len(body) < 2 || body[0] != '{' {
		body = []byte("{}")
	}
	payload := make([]byte, 0, len(body)+12)
	payload = append(payload, `{"ok":true`...)
	if len(body) > 2 {
		payload = append(payload, ',')
		payload = append(payload, body[1:]...)
	} else {
		payload = append(payload, '}')
	}
	r.ack(payload)
}

func (r *request) ack(payload []byte) {
	nsp := r.c.srv.nsName(r.ns)
	r.c.send(textFrame(func(dst []byte) []byte { return socketio.AppendAck(dst, nsp, r.ackID, payload) }))
}

// fail answers a refused event: through the ack when there is one, else as
// an "error" event naming the event.
func (r *request) fail(e *eventError) {
	srv := r.c.srv
	if e.Code == codeRateLimited {
		srv.metrics.rateLimited.WithLabelValues(r.event).Inc()
		srv.stats.rateLimited.Add(1)
		srv.live.record(liveEvent{Kind: liveRateLimited, Code: codeRateLimited, User: r.c.sess.userID(), Conn: r.c.sid,
			Remote: r.c.remote(), Detail: r.event})
	}
	srv.metrics.countEventError(r.event, e.Code)
	if r.ackID >= 0 {
		payload, _ := json.Marshal(struct {
			OK    bool        `json:"ok"`
			Error *eventError `json:"error"`
		}{false, e})
		r.ack(payload)
		return
	}
	payload, _ := json.Marshal(struct {
		Event        string `json:"event"`
		Code         string `json:"code"`
		Message      string `json:"message"`
		TempID       string `json:"tempId,omitempty"`
		ChatID       string `json:"chatId,omitempty"`
		RetryAfterMs int64  `json:"retryAfterMs,omitempty"`
	}{r.event, e.Code, e.Message, r.tempID, r.chatID, e.RetryAfterMs})
	r.c.emit(r.ns, evError, payload)
}

// emit queues one event to this connection in namespace ns.
func (c *conn) emit(ns nsMask, event string, data []byte) {
	nsp := c.srv.nsName(ns)
	c.send(textFrame(func(dst []byte) []byte { return socketio.AppendEvent(dst, nsp, -1, event, data) }))
	c.srv.metrics.eventsOut.WithLabelValues(event).Inc()
}

func (c *conn) emitJSON(ns nsMask, event string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		c.srv.log.Error().Err(err).Str("event", event).Msg("encode event")
		return
	}
	c.emit(ns, event, data)
}

type handler func(srv *server, r *request, arg []byte) *eventError

var handlers = map[string]handler{
	evJoinChat:       handleJoin,
	evLeaveChat:      handleLeave,
	evSendMessage:    handleSend,
	evEditMessage:    handleEdit,
	evDeleteMessage:  handleDelete,
	evTypingStart:    handleTyping,
	evTypingStop:     handleTyping,
	evAddReaction:    handleReaction,
	evRemoveReaction: handleReaction,
}

// dispatch handles one client EVENT on the read side. The name is the
// client's: it reaches metrics only through clientEventLabels, and an
// unknown one is echoed back cut to maxEventNameEcho bytes.
func (srv *server) dispatch(c *conn, ns nsMask, ackID int64, name []byte, arg []byte) {
	start := time.Now()
	h, known := handlers[string(name)] // no allocation for the lookup
	event := evUnknown
	if known {
		event = clientEventLabels.boundBytes(name)
	}
	srv.metrics.eventsIn.WithLabelValues(event).Inc()
	if event == evSendMessage {
		srv.stats.messagesIn.Add(1)
	}
	if !known {
		echo := truncate(string(name), maxEventNameEcho)
		r := &request{c: c, ns: ns, ackID: ackID, event: echo}
		r.fail(errInvalid("unknown event %q", echo))
		srv.metrics.handlerSeconds.observe(evUnknown, time.Since(start))
		return
	}
	r := &request{c: c, ns: ns, ackID: ackID, event: event, received: start}
	if e := h(srv, r, arg); e != nil {
		r.fail(e)
	}
	srv.metrics.handlerSeconds.observe(event, time.Since(start))
}

// evUnknown is the event label of names no handler knows; evBinary the
// event named in refusals of binary packets.
const (
	evUnknown = "unknown"
	evBinary  = "binary"
)

// maxEventNameEcho bounds the client-chosen event name echoed in an error.
const maxEventNameEcho = 64

// truncate cuts s to at most n bytes, on a UTF-8 boundary when s is valid
// UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// decode unmarshals an event argument into v; any malformation is
// INVALID_PAYLOAD, never a closed connection.
func decode(r *request, arg []byte, v any) *eventError {
	if len(arg) == 0 || arg[0] != '{' {
		return errInvalid("payload must be an object")
	}
	if err := json.Unmarshal(arg, v); err != nil {
		r.captureIDs(arg)
		return errInvalid("malformed payload: %v", err)
	}
	return nil
}

// captureIDs picks chatId and tempId out of a payload that failed to
// decode, so the error event still names them.
func (r *request) captureIDs(arg []byte) {
	var ids struct {
		ChatID, TempID any
	}
	if json.Unmarshal(arg, &ids) != nil {
		return
	}
	if s, ok := ids.ChatID.(string); ok && len(s) <= maxIDLen {
		r.chatID = s
	}
	if s, ok := ids.TempID.(string); ok && len(s) <= maxIDLen {
		r.tempID = s
	}
}

const maxIDLen = ident.MaxLen

// validID accepts ids of 1..128 characters without whitespace, control
// characters or braces (internal/ident, the rule the RTM profiles share).
func validID(s string) bool { return ident.Valid(s) }

func checkChat(r *request, chatID string) *eventError {
	if !validID(chatID) {
		return errInvalid("chatId must be a string of 1 to %d characters without spaces or braces", maxIDLen)
	}
	r.chatID = chatID
	return nil
}

// chatRef is a payload addressed to one chat.
type chatRef interface{ chat() string }

func (p *chatPayload) chat() string     { return p.ChatID }
func (p *editPayload) chat() string     { return p.ChatID }
func (p *messageRef) chat() string      { return p.ChatID }
func (p *reactionPayload) chat() string { return p.ChatID }

// admitAction runs the checks every action on a joined chat needs, in order:
// a well-formed payload, its chat id, the payload's own field checks
// (validate, may be nil), that this connection joined the chat, and the
// user's budget for the action.
func (srv *server) admitAction(r *request, arg []byte, p chatRef, validate func() *eventError, action string, limit int) *eventError {
	if e := admit(r, arg, p, validate); e != nil {
		return e
	}
	return srv.rateLimit(r, action, limit)
}

// admitWrite is admitAction for a chat write or typing event: without the
// rate limit when folded, that is when the engines count it in the same call
// as the action (appendLimited, handleTyping).
func (srv *server) admitWrite(r *request, arg []byte, p chatRef, validate func() *eventError, folded bool, action string, limit int) *eventError {
	if folded {
		return admit(r, arg, p, validate)
	}
	return srv.admitAction(r, arg, p, validate, action, limit)
}

// admit is admitAction without the rate limit, for an action whose limit is
// counted in the same engine call as the action itself.
func admit(r *request, arg []byte, p chatRef, validate func() *eventError) *eventError {
	if e := decode(r, arg, p); e != nil {
		return e
	}
	if e := checkChat(r, p.chat()); e != nil {
		return e
	}
	if validate != nil {
		if e := validate(); e != nil {
			return e
		}
	}
	return checkJoined(r)
}

func checkMessageID(id string) *eventError {
	if !validID(id) {
		return errInvalid("messageId must be a message id")
	}
	return nil
}

func checkJoined(r *request) *eventError {
	if !r.c.joined(r.chatID) {
		return &eventError{Code: codeNotJoined, Message: "join the chat first"}
	}
	return nil
}

// engineCtx bounds one engine call.
func (srv *server) engineCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), srv.engineTimeout())
}

func (srv *server) engineTimeout() time.Duration { return 2 * time.Second }

// errEngineDown is returned without a round trip while the engine's health
// check fails.
var errEngineDown = fmt.Errorf("node: engine unreachable: %w", context.DeadlineExceeded)

// engineError maps an engine failure to a wire error.
func (srv *server) engineError(r *request, op string, err error) *eventError {
	switch {
	case errors.Is(err, bus.ErrNotFound):
		return &eventError{Code: codeNotFound, Message: "message not found"}
	case errors.Is(err, bus.ErrForbidden):
		return &eventError{Code: codeForbidden, Message: "only the author may do this"}
	case isUnavailable(err):
		srv.hotLog.Warn().Err(err).Str("op", op).Msg("engine unavailable")
		return &eventError{Code: codeUnavailable, Message: "the service is temporarily unavailable; the action was not performed and may be retried"}
	}
	srv.log.Error().Err(err).Str("op", op).Str("user", r.c.sess.userID()).Msg("engine error")
	return &eventError{Code: codeInternal, Message: "internal error"}
}

// rateLimit counts one action of the user against its per-minute limit.
func (srv *server) rateLimit(r *request, action string, n int) *eventError {
	if srv.engineDown.Load() {
		// Fail fast while the engine is known to be unreachable: every
		// action starts with this check, so none waits on a timeout.
		return srv.engineError(r, "rate limit", errEngineDown)
	}
	ctx, cancel := srv.engineCtx()
	defer cancel()
	res, err := srv.cfg.Engines.Limiter.Allow(ctx, action+":"+r.c.sess.userID(),
		limits.Limit{Policy: limits.Window, N: n, Window: srv.cfg.Limits.Window})
	if err != nil {
		return srv.engineError(r, "rate limit", err)
	}
	if !res.Allowed {
		return rateLimited(action, res.RetryAfter)
	}
	return nil
}

// rateLimited is the RATE_LIMITED error of a refused action.
func rateLimited(action string, retryAfter time.Duration) *eventError {
	ms := max(retryAfter.Milliseconds(), 1)
	return &eventError{Code: codeRateLimited, Message: "too many " + action + " actions; retry later", RetryAfterMs: ms}
}

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// join_chat

type joinPayload struct {
	ChatID      string  `json:"chatId"`
	LastEventID *string `json:"lastEventId"`
}

type missedEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

type chatJoined struct {
	ChatID    string            `json:"chatId"`
	Recovered bool              `json:"recovered"`
	Missed    []json.RawMessage `json:"missed"` // encoded missedEvents (fitMissed)
}

func handleJoin(srv *server, r *request, arg []byte) *eventError {
	var p joinPayload
	if e := decode(r, arg, &p); e != nil {
		return e
	}
	if e := checkChat(r, p.ChatID); e != nil {
		return e
	}
	if p.LastEventID != nil && (*p.LastEventID == "" || len(*p.LastEventID) > 64) {
		return errInvalid("lastEventId must be a non-empty event id")
	}
	if !r.c.joined(p.ChatID) && r.c.joinedCount() >= srv.cfg.Limits.ChatsPerConn {
		return errTooLarge("at most %d chats per connection", srv.cfg.Limits.ChatsPerConn)
	}
	if e := srv.rateLimit(r, "join", srv.cfg.Limits.Joins); e != nil {
		return e
	}
	ctx, cancel := srv.engineCtx()
	defer cancel()
	if !srv.cfg.Dev {
		ok, err := srv.cfg.Engines.Membership.IsMember(ctx, p.ChatID, r.c.sess.userID())
		if err != nil {
			return srv.engineError(r, "membership", err)
		}
		if !ok {
			return &eventError{Code: codeNotMember, Message: "not a member of this chat"}
		}
	}
	recovering := p.LastEventID != nil
	if err := srv.hub.joinChat(ctx, r.c, p.ChatID, r.ns, recovering); err != nil {
		return srv.engineError(r, "subscribe", err)
	}
	if r.c.isClosed() { // closed while joining: onClosed ran before the join
		srv.hub.removeConn(r.c)
		return nil
	}
	res := chatJoined{ChatID: p.ChatID, Recovered: true, Missed: []json.RawMessage{}}
	lastReplayed := ""
	if recovering {
		// Live events are held for this connection meanwhile; released
		// after chat_joined, minus those replayed in missed.
		defer func() { srv.hub.endRecovery(r.c, p.ChatID, lastReplayed) }()
		events, recovered, err := srv.missedSince(ctx, p.ChatID, *p.LastEventID)
		if err != nil {
			srv.hub.leaveChat(r.c, p.ChatID, r.ns) // the join fails as a whole
			return srv.engineError(r, "history", err)
		}
		if len(events) > 0 {
			lastReplayed = events[len(events)-1].EventID
		}
		res.Missed, res.Recovered = srv.fitMissed(r, p.ChatID, events, recovered)
	}
	r.c.emitJSON(r.ns, evChatJoined, res)
	r.ok(res)
	return nil
}

// missedSince returns the events of chatID after lastEventID, oldest first:
// all of them when there are at most HistoryReplay, else the newest
// HistoryReplay (recovered false), so that they join the live events held
// meanwhile without a gap.
func (srv *server) missedSince(ctx context.Context, chatID, lastEventID string) ([]bus.Event, bool, error) {
	limit := srv.cfg.HistoryReplay
	events, recovered, err := srv.cfg.Engines.Bus.Since(ctx, chatID, lastEventID, limit+1)
	if err != nil || len(events) <= limit {
		return events, recovered, err
	}
	// More were missed than we replay: the newest limit ("" asks for them),
	// of which those after lastEventID (all of them, unless events were
	// deleted from history in between).
	newest, _, err := srv.cfg.Engines.Bus.Since(ctx, chatID, "", limit)
	if err != nil {
		return nil, false, err
	}
	if bus.ValidID(lastEventID) {
		newest = slices.DeleteFunc(newest, func(ev bus.Event) bool { return bus.CompareIDs(ev.EventID, lastEventID) <= 0 })
	}
	return newest, false, nil
}

// fitMissed encodes the missed events that fit a recovery frame, keeping
// the newest: chat_joined and its ack both carry missed, and each must fit
// maxPayload (the client's own limit, PROTOCOL.md section 3); together they
// take at most half the outbound queue, so a recovery never makes its own
// connection a slow consumer. recovered turns false when events are left out.
func (srv *server) fitMissed(r *request, chatID string, events []bus.Event, recovered bool) ([]json.RawMessage, bool) {
	budget := min(srv.cfg.Limits.MaxFrame, srv.cfg.OutboundQueueBytes/4) - srv.joinedOverhead(r, chatID)
	out := make([]json.RawMessage, 0, len(events))
	used := 0
	i := len(events) - 1
	for ; i >= 0; i-- {
		ev := events[i]
		enc, err := json.Marshal(missedEvent{Event: ev.Event, Data: bus.SpliceFields(ev.Data, "eventId", ev.EventID)})
		if err != nil {
			srv.hotLog.Warn().Err(err).Str("chat", chatID).Str("event_id", ev.EventID).Msg("unencodable history event skipped")
			recovered = false
			continue
		}
		if used+len(enc)+1 > budget { // +1: the separating comma
			break
		}
		used += len(enc) + 1
		out = append(out, enc)
	}
	if i >= 0 {
		recovered = false // older events did not fit
	}
	slices.Reverse(out)
	return out, recovered
}

// joinedOverhead is the size of the larger of the two recovery frames
// (chat_joined and its ack) with an empty missed list: what is left of a
// frame for the list itself.
func (srv *server) joinedOverhead(r *request, chatID string) int {
	body, _ := json.Marshal(chatJoined{ChatID: chatID, Recovered: false, Missed: []json.RawMessage{}})
	nsp := srv.nsName(r.ns)
	event := len(socketio.AppendEvent(nil, nsp, -1, evChatJoined, body))
	ack := len(socketio.AppendAck(nil, nsp, max(r.ackID, 0), body)) + len(`"ok":true,`)
	return max(event, ack)
}

// leave_chat

type chatPayload struct {
	ChatID string `json:"chatId"`
}

func handleLeave(srv *server, r *request, arg []byte) *eventError {
	var p chatPayload
	if e := srv.admitAction(r, arg, &p, nil, "join", srv.cfg.Limits.Joins); e != nil {
		return e
	}
	srv.hub.leaveChat(r.c, p.ChatID, nsRoot|nsChat)
	res := chatPayload{ChatID: p.ChatID}
	r.c.emitJSON(r.ns, evChatLeft, res)
	r.ok(res)
	return nil
}

// send_message

type attachment struct {
	URL      string `json:"url"`
	Name     string `json:"name,omitempty"`
	MimeType string `json:"mimeType,omitempty"`
	Size     *int64 `json:"size,omitempty"`
}

type sendPayload struct {
	ChatID      string            `json:"chatId"`
	Content     *string           `json:"content"`
	MessageType string            `json:"messageType"`
	TempID      *string           `json:"tempId"`
	Attachments []json.RawMessage `json:"attachments"`
	ReplyTo     *string           `json:"replyTo"`
}

// newMessage is the new_message payload without eventId and messageId (the
// bus adds messageId at append time; eventId is spliced in at delivery).
type newMessage struct {
	ChatID      string       `json:"chatId"`
	SenderID    string       `json:"senderId"`
	SenderName  string       `json:"senderName,omitempty"`
	Content     string       `json:"content"`
	MessageType string       `json:"messageType"`
	Attachments []attachment `json:"attachments"`
	ReplyTo     string       `json:"replyTo,omitempty"`
	TempID      string       `json:"tempId,omitempty"`
	CreatedAt   string       `json:"createdAt"`
}

type messageSent struct {
	TempID    string `json:"tempId"`
	MessageID string `json:"messageId"`
	EventID   string `json:"eventId"`
	ChatID    string `json:"chatId"`
	CreatedAt string `json:"createdAt"`
}

var clientMessageTypes = map[string]bool{"TEXT": true, "IMAGE": true, "FILE": true, "AUDIO": true, "VIDEO": true}

// validateMessage checks a message's content, type and attachments against
// section 3's limits. allowSystem admits SYSTEM (server API only).
func (srv *server) validateMessage(content *string, messageType string, rawAtt []json.RawMessage, allowSystem bool) ([]attachment, *eventError) {
	if content == nil {
		return nil, errInvalid("content is required")
	}
	if !utf8.ValidString(*content) {
		return nil, errInvalid("content must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(*content); n > srv.cfg.Limits.ContentChars {
		return nil, errTooLarge("content has %d characters; the limit is %d", n, srv.cfg.Limits.ContentChars)
	}
	if !clientMessageTypes[messageType] && !(allowSystem && messageType == "SYSTEM") {
		if messageType == "SYSTEM" {
			return nil, errInvalid("clients may not send SYSTEM messages")
		}
		return nil, errInvalid("messageType must be one of TEXT, IMAGE, FILE, AUDIO, VIDEO")
	}
	if len(rawAtt) > srv.cfg.Limits.Attachments {
		return nil, errTooLarge("%d attachments; the limit is %d", len(rawAtt), srv.cfg.Limits.Attachments)
	}
	atts := make([]attachment, 0, len(rawAtt))
	for i, raw := range rawAtt {
		if len(raw) > srv.cfg.Limits.AttachmentBytes {
			return nil, errTooLarge("attachment %d has %d bytes of JSON; the limit is %d", i, len(raw), srv.cfg.Limits.AttachmentBytes)
		}
		var a attachment
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &a) != nil {
			return nil, errInvalid("attachment %d must be an object {url, name?, mimeType?, size?}", i)
		}
		if a.URL == "" {
			return nil, errInvalid("attachment %d has no url", i)
		}
		if a.Size != nil && *a.Size < 0 {
			return nil, errInvalid("attachment %d has a negative size", i)
		}
		atts = append(atts, a)
	}
	if *content == "" && len(atts) == 0 {
		return nil, errInvalid("a message needs content or attachments")
	}
	return atts, nil
}

func handleSend(srv *server, r *request, arg []byte) *eventError {
	var p sendPayload
	if e := decode(r, arg, &p); e != nil {
		return e
	}
	if p.TempID != nil {
		if len(*p.TempID) > maxIDLen {
			return errInvalid("tempId is longer than %d characters", maxIDLen)
		}
		r.tempID = *p.TempID
	}
	if e := checkChat(r, p.ChatID); e != nil {
		return e
	}
	atts, e := srv.validateMessage(p.Content, p.MessageType, p.Attachments, false)
	if e != nil {
		return e
	}
	replyTo := ""
	if p.ReplyTo != nil {
		if !validID(*p.ReplyTo) {
			return errInvalid("replyTo must be a message id")
		}
		replyTo = *p.ReplyTo
	}
	if e := checkJoined(r); e != nil {
		return e
	}
	if srv.cfg.Engines.AppendLimited == nil {
		if e := srv.rateLimit(r, "message", srv.cfg.Limits.Messages); e != nil {
			return e
		}
	}
	id := r.c.sess.who.Load()
	msg := newMessage{
		ChatID: p.ChatID, SenderID: id.userID, SenderName: id.name, Content: *p.Content,
		MessageType: p.MessageType, Attachments: atts, ReplyTo: replyTo, TempID: r.tempID,
		CreatedAt: timestamp(srv.cfg.Now()),
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return srv.engineError(r, "append", err)
	}
	srv.fanout.begin(p.ChatID)
	res, e := srv.appendLimited(r, bus.Op{Kind: bus.OpSend, UserID: id.userID, Event: evNewMessage, Data: data}, "message", srv.cfg.Limits.Messages)
	srv.fanout.appended(p.ChatID, res.EventID, r.received) // res is zero when nothing was appended
	if e != nil {
		return e
	}
	sent := messageSent{TempID: r.tempID, MessageID: res.MessageID, EventID: res.EventID, ChatID: p.ChatID, CreatedAt: msg.CreatedAt}
	r.c.emitJSON(r.ns, evMessageSent, sent)
	r.ok(sent)
	return nil
}

// appendMessage stores and publishes a new message from the server API (no
// rate limit).
func (srv *server) appendMessage(msg newMessage, senderID string) (bus.Result, error) {
	data, err := json.Marshal(msg)
	if err != nil {
		return bus.Result{}, err
	}
	ctx, cancel := srv.engineCtx()
	defer cancel()
	return srv.cfg.Engines.Bus.Append(ctx, msg.ChatID, bus.Op{Kind: bus.OpSend, UserID: senderID, Event: evNewMessage, Data: data})
}

// edit_message, delete_message

type editPayload struct {
	ChatID    string  `json:"chatId"`
	MessageID string  `json:"messageId"`
	Content   *string `json:"content"`
}

type messageEdited struct {
	ChatID    string `json:"chatId"`
	MessageID string `json:"messageId"`
	Content   string `json:"content"`
	EditedAt  string `json:"editedAt"`
	EditorID  string `json:"editorId"`
}

type messageDeleted struct {
	ChatID    string `json:"chatId"`
	MessageID string `json:"messageId"`
	DeletedAt string `json:"deletedAt"`
	DeletedBy string `json:"deletedBy"`
}

type opResult struct {
	ChatID    string `json:"chatId"`
	MessageID string `json:"messageId"`
	EventID   string `json:"eventId,omitempty"`
	Changed   *bool  `json:"changed,omitempty"`
}

func handleEdit(srv *server, r *request, arg []byte) *eventError {
	var p editPayload
	validate := func() *eventError {
		if e := checkMessageID(p.MessageID); e != nil {
			return e
		}
		if p.Content == nil || *p.Content == "" {
			return errInvalid("content is required")
		}
		if n := utf8.RuneCountInString(*p.Content); n > srv.cfg.Limits.ContentChars {
			return errTooLarge("content has %d characters; the limit is %d", n, srv.cfg.Limits.ContentChars)
		}
		return nil
	}
	if e := srv.admitWrite(r, arg, &p, validate, srv.cfg.Engines.AppendLimited != nil, "message", srv.cfg.Limits.Messages); e != nil {
		return e
	}
	user := r.c.sess.userID()
	data, _ := json.Marshal(messageEdited{ChatID: p.ChatID, MessageID: p.MessageID, Content: *p.Content,
		EditedAt: timestamp(srv.cfg.Now()), EditorID: user})
	return srv.appendOp(r, bus.Op{Kind: bus.OpEdit, UserID: user, MessageID: p.MessageID, Event: evMessageEdited, Data: data}, "message", srv.cfg.Limits.Messages)
}

type messageRef struct {
	ChatID    string `json:"chatId"`
	MessageID string `json:"messageId"`
}

func handleDelete(srv *server, r *request, arg []byte) *eventError {
	var p messageRef
	validate := func() *eventError { return checkMessageID(p.MessageID) }
	if e := srv.admitWrite(r, arg, &p, validate, srv.cfg.Engines.AppendLimited != nil, "message", srv.cfg.Limits.Messages); e != nil {
		return e
	}
	user := r.c.sess.userID()
	data, _ := json.Marshal(messageDeleted{ChatID: p.ChatID, MessageID: p.MessageID,
		DeletedAt: timestamp(srv.cfg.Now()), DeletedBy: user})
	return srv.appendOp(r, bus.Op{Kind: bus.OpDelete, UserID: user, MessageID: p.MessageID, Event: evMessageDeleted, Data: data}, "message", srv.cfg.Limits.Messages)
}

// appendOp performs an edit, delete or reaction (see appendLimited) and
// acknowledges it.
func (srv *server) appendOp(r *request, op bus.Op, action string, limit int) *eventError {
	res, e := srv.appendLimited(r, op, action, limit)
	if e != nil {
		return e
	}
	changed := res.Changed
	out := opResult{ChatID: r.chatID, MessageID: op.MessageID, EventID: res.EventID}
	if op.Kind == bus.OpReactAdd || op.Kind == bus.OpReactRemove {
		out.Changed = &changed
	}
	r.ok(out)
	return nil
}

// appendLimited performs op on the request's chat with its rate limit
// (limit actions per window, counted under action): in the same engine
// call when the engines can (AppendLimited, one Redis round trip), or
// Bus.Append alone after admitWrite counted it.
func (srv *server) appendLimited(r *request, op bus.Op, action string, limit int) (bus.Result, *eventError) {
	limited := srv.cfg.Engines.AppendLimited
	if limited != nil && srv.engineDown.Load() {
		return bus.Result{}, srv.engineError(r, "append", errEngineDown) // as rateLimit does
	}
	ctx, cancel := srv.engineCtx()
	defer cancel()
	if limited == nil {
		res, err := srv.cfg.Engines.Bus.Append(ctx, r.chatID, op)
		if err != nil {
			return res, srv.engineError(r, "append", err)
		}
		return res, nil
	}
	res, allowed, retry, err := limited(ctx, r.chatID, op, action+":"+op.UserID,
		limits.Limit{Policy: limits.Window, N: limit, Window: srv.cfg.Limits.Window})
	if err != nil {
		return res, srv.engineError(r, "append", err)
	}
	if !allowed {
		return res, rateLimited(action, retry)
	}
	return res, nil
}

// typing_start, typing_stop

func handleTyping(srv *server, r *request, arg []byte) *eventError {
	var p chatPayload
	limited := srv.cfg.Engines.PublishLimited
	if e := srv.admitWrite(r, arg, &p, nil, limited != nil, "typing", srv.cfg.Limits.Typing); e != nil {
		return e
	}
	user := r.c.sess.userID()
	data, _ := json.Marshal(typingEvent{ChatID: p.ChatID, UserID: user, IsTyping: r.event == evTypingStart})
	if limited != nil && srv.engineDown.Load() {
		return srv.engineError(r, "publish", errEngineDown) // as rateLimit does
	}
	ctx, cancel := srv.engineCtx()
	defer cancel()
	if limited == nil {
		if err := srv.cfg.Engines.Bus.Publish(ctx, bus.Chat(p.ChatID), evUserTyping, data); err != nil {
			return srv.engineError(r, "publish", err)
		}
	} else {
		// The rate limit and the publish in one call (one Redis round trip).
		allowed, retry, err := limited(ctx, bus.Chat(p.ChatID), evUserTyping, data, "typing:"+user,
			limits.Limit{Policy: limits.Window, N: srv.cfg.Limits.Typing, Window: srv.cfg.Limits.Window})
		if err != nil {
			return srv.engineError(r, "publish", err)
		}
		if !allowed {
			return rateLimited("typing", retry)
		}
	}
	r.ok(chatPayload{ChatID: p.ChatID})
	return nil
}

// add_reaction, remove_reaction

type reactionPayload struct {
	ChatID    string `json:"chatId"`
	MessageID string `json:"messageId"`
	Emoji     string `json:"emoji"`
}

type reactionUpdated struct {
	ChatID    string `json:"chatId"`
	MessageID string `json:"messageId"`
	UserID    string `json:"userId"`
	Emoji     string `json:"emoji"`
	Action    string `json:"action"`
}

const maxEmojiBytes = 64

func handleReaction(srv *server, r *request, arg []byte) *eventError {
	var p reactionPayload
	validate := func() *eventError {
		if e := checkMessageID(p.MessageID); e != nil {
			return e
		}
		if p.Emoji == "" || len(p.Emoji) > maxEmojiBytes || !utf8.ValidString(p.Emoji) {
			return errInvalid("emoji must be a string of 1 to %d bytes", maxEmojiBytes)
		}
		return nil
	}
	if e := srv.admitWrite(r, arg, &p, validate, srv.cfg.Engines.AppendLimited != nil, "reaction", srv.cfg.Limits.Reactions); e != nil {
		return e
	}
	user := r.c.sess.userID()
	kind, action := bus.OpReactAdd, "added"
	if r.event == evRemoveReaction {
		kind, action = bus.OpReactRemove, "removed"
	}
	data, _ := json.Marshal(reactionUpdated{ChatID: p.ChatID, MessageID: p.MessageID, UserID: user, Emoji: p.Emoji, Action: action})
	return srv.appendOp(r, bus.Op{Kind: kind, UserID: user, MessageID: p.MessageID, Emoji: p.Emoji, Event: evReactionUpdated, Data: data}, "reaction", srv.cfg.Limits.Reactions)
}
