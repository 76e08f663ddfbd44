// Package bus moves events between nodes: publish to a chat, user or RTM-profile
// channel, subscribe by interest, and keep a short per-chat history so that a
// reconnecting client (or a node that lost its pub/sub connection) recovers what
// it missed.
//
// Two implementations satisfy [Broker]: [Memory], the embedded single-node
// default, and [Redis] (a capped stream per chat, appended and published in one
// Lua script). Both pass the contract suite in bus/bustest.
//
// Event ids are Redis stream ids, "<unix-ms>-<seq>", strictly increasing per
// chat; order them with [CompareIDs], never as strings. For OpSend the message
// id is the eventId of its new_message event. History-backed payloads carry
// neither eventId (the node adds it with [AppendSpliced] when it encodes a
// client frame) nor, as the node builds them, messageId (the broker adds it).
//
// Usage sketch:
//
//	b := bus.NewMemory(bus.MemoryConfig{})
//	b.Start(func(d bus.Delivery) { /* fan out to local connections */ })
//	_ = b.Subscribe(ctx, bus.Chat("c1"))
//	res, err := b.Append(ctx, "c1", bus.Op{Kind: bus.OpSend, UserID: "alice", Event: "new_message", Data: payload})
package bus

import (
	"context"
	"encoding/json"
	"errors"
)

// Errors returned by brokers. Wrapped errors are matched with errors.Is.
var (
	// ErrNotFound: the message is unknown, deleted, or older than the retained history.
	ErrNotFound = errors.New("bus: message not found")
	// ErrForbidden: the user is not the message's author.
	ErrForbidden = errors.New("bus: not the author")
	// ErrUnavailable: the backing store cannot be reached; nothing was done.
	ErrUnavailable = errors.New("bus: unavailable")
	// ErrClosed: the broker was closed.
	ErrClosed = errors.New("bus: closed")
)

// Kind says what a channel addresses.
type Kind uint8

const (
	KindChat    Kind = iota + 1 // a chat's events (history-backed or ephemeral like typing)
	KindUser                    // every connection of one user
	KindProfile                 // every user operating one RTM profile
)

// Channel names one pub/sub channel.
type Channel struct {
	Kind Kind
	ID   string
}

// Chat, User and Profile build channels.
func Chat(id string) Channel    { return Channel{Kind: KindChat, ID: id} }
func User(id string) Channel    { return Channel{Kind: KindUser, ID: id} }
func Profile(id string) Channel { return Channel{Kind: KindProfile, ID: id} }

// Delivery is one event received on a subscribed channel. Its Data may be
// shared with the broker's history: read it, do not modify it.
//
// For history-backed chat events EventID is the event's position in the chat's
// history and Data does not contain it: the receiver splices it in when it
// encodes the client frame. Ephemeral events (typing, user events, RTM) have an
// empty EventID. A broker delivers history-backed events of one chat at most
// once and in EventID order per node, including those it repairs after a
// pub/sub reconnect.
type Delivery struct {
	Channel Channel
	EventID string
	Event   string          // server event name, e.g. "new_message", "user_typing"
	Data    json.RawMessage // the event payload (a JSON object)
}

// Handler receives deliveries. It is called from the broker's own goroutine(s),
// possibly concurrently for different channels but in order for one chat, and
// must not block for long: queue and return. It must not call Close, nor
// Subscribe or Unsubscribe: on Redis a Subscribe on the same pub/sub
// connection waits for a confirmation that only the handler's goroutine can
// deliver, so both would stall until the Subscribe's context ends.
type Handler func(Delivery)

// OpKind is a history-changing chat operation.
type OpKind uint8

const (
	// OpSend appends a new message. MessageID is assigned by the broker (it is
	// the new event's id) and returned in Result; Data must be a JSON object (nil
	// means {}) without eventId or messageId: the broker stores and delivers it
	// with "messageId":"<id>" spliced in as its first field (see SpliceFields),
	// and the node splices eventId in when it encodes.
	OpSend OpKind = iota + 1
	// OpEdit requires MessageID to exist, not be deleted, and be authored by
	// UserID. A message whose new_message event was trimmed out of history, or
	// sent longer than the history TTL ago, does not exist (ErrNotFound).
	OpEdit
	// OpDelete has the same checks as OpEdit and marks the message deleted.
	OpDelete
	// OpReactAdd adds (UserID, Emoji) to the message's reactions; Result.Changed
	// is false, and nothing is appended or published, when it was already there.
	// Any user may react; the message must exist and not be deleted.
	OpReactAdd
	// OpReactRemove removes it; Changed false when it was absent.
	OpReactRemove
)

// Op is one history-changing operation on a chat, performed atomically with
// its publication (one round trip on Redis).
type Op struct {
	Kind      OpKind
	UserID    string          // the acting user (author for OpSend)
	MessageID string          // target message (all but OpSend)
	Emoji     string          // reactions only
	Event     string          // server event name to publish, e.g. "new_message"; no newlines
	Data      json.RawMessage // retained by the broker: do not modify after Append
}

// Result of an Append.
type Result struct {
	EventID   string // history position of the published event ("" when !Changed)
	MessageID string // the message's id (assigned for OpSend)
	Changed   bool   // false only for idempotent reactions that changed nothing
}

// Event is one retained history entry.
type Event struct {
	EventID string
	Event   string
	Data    json.RawMessage // as delivered: without eventId spliced in
}

// Broker is the cluster's event bus and per-chat history.
type Broker interface {
	// Start begins delivering events of subscribed channels to h. Call once,
	// before Subscribe.
	Start(h Handler) error
	// Subscribe registers this node's interest in ch. It returns once the
	// subscription is confirmed, so an event appended after it returns is
	// delivered (events appended before it are for Since). Subscribing twice is
	// a no-op. The wait is bounded by ctx.
	Subscribe(ctx context.Context, ch Channel) error
	// Unsubscribe drops the interest; no-op when not subscribed. Deliveries
	// already in flight may still arrive.
	Unsubscribe(ctx context.Context, ch Channel) error
	// Publish sends an ephemeral event (nothing stored) to every node subscribed to ch.
	Publish(ctx context.Context, ch Channel, event string, data json.RawMessage) error
	// Append performs op on chatID's history and publishes the resulting event
	// to the chat channel, atomically. Errors: ErrNotFound, ErrForbidden,
	// ErrUnavailable (Redis unreachable; after a timeout the op may in rare
	// cases have been performed), ErrClosed.
	Append(ctx context.Context, chatID string, op Op) (Result, error)
	// Since returns up to limit events after afterEventID, oldest first
	// (limit <= 0: all retained). recovered is true iff afterEventID is
	// well-formed and not older than the oldest retained event, so nothing
	// between it and the events returned is missing. Otherwise recovered is
	// false: for an id older than the history the oldest retained events are
	// returned; for a malformed id (including "") the newest limit events; for
	// an empty or expired history, none.
	Since(ctx context.Context, chatID, afterEventID string, limit int) (events []Event, recovered bool, err error)
	// Close stops deliveries and releases resources. Idempotent.
	Close() error
}
