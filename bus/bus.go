// Package bus moves events between nodes: publish to a chat, user or RTM-profile
// channel, subscribe by interest, and keep a short per-chat history so that a
// reconnecting client (or a node that lost its pub/sub connection) recovers what
// it missed.
//
// Two implementations satisfy [Broker]: [Memory], the embedded single-node
// default, and the Redis one (a capped stream per chat, appended and published in
// one Lua script). Both pass the contract suite in bus/bustest.
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

// Delivery is one event received on a subscribed channel.
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

// Handler receives deliveries. It is called from the broker's own goroutine(s)
// and must not block for long: queue and return.
type Handler func(Delivery)

// OpKind is a history-changing chat operation.
type OpKind uint8

const (
	// OpSend appends a new message. MessageID is assigned by the broker and
	// returned in Result; Data must not contain eventId or messageId: the broker's
	// result carries them and deliveries splice eventId in. The node builds Data
	// knowing the message id only after the append, so for OpSend the broker
	// splices "messageId" in as well (see SpliceFields).
	OpSend OpKind = iota + 1
	// OpEdit requires MessageID to exist, not be deleted, and be authored by UserID.
	OpEdit
	// OpDelete has the same checks as OpEdit and marks the message deleted.
	OpDelete
	// OpReactAdd adds (UserID, Emoji) to the message's reactions; Result.Changed
	// is false, and nothing is appended or published, when it was already there.
	OpReactAdd
	// OpReactRemove removes it; Changed false when it was absent.
	OpReactRemove
)

// Op is one history-changing operation on a chat, performed atomically with
// its publication (one round trip on Redis).
type Op struct {
	Kind      OpKind
	UserID    string // the acting user (author for OpSend)
	MessageID string // target message (all but OpSend)
	Emoji     string // reactions only
	Event     string // server event name to publish, e.g. "new_message"
	Data      json.RawMessage
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
	// delivered. Subscribing twice is a no-op.
	Subscribe(ctx context.Context, ch Channel) error
	// Unsubscribe drops the interest; no-op when not subscribed.
	Unsubscribe(ctx context.Context, ch Channel) error
	// Publish sends an ephemeral event (nothing stored) to every node subscribed to ch.
	Publish(ctx context.Context, ch Channel, event string, data json.RawMessage) error
	// Append performs op on chatID's history and publishes the resulting event
	// to the chat channel, atomically.
	Append(ctx context.Context, chatID string, op Op) (Result, error)
	// Since returns up to limit events after afterEventID, oldest first.
	// recovered is false when afterEventID is older than the retained history
	// (events may be missing between it and the first returned) or unknown.
	Since(ctx context.Context, chatID, afterEventID string, limit int) (events []Event, recovered bool, err error)
	// Close stops deliveries and releases resources. Idempotent.
	Close() error
}
