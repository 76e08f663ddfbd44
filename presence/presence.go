// Package presence knows who is connected where: per-user connection entries
// taken atomically against the cluster-wide cap, online users, chats with local
// members, and node liveness. Each node writes and refreshes its own entries;
// entries of a node that stops refreshing (a crashed node) stop counting within
// the entry TTL (30 s by default).
//
// [Memory] is the single-node implementation; the Redis one shares its contract
// suite in presence/presencetest.
//
//	p := presence.NewMemory()
//	ok, err := p.Acquire(ctx, "alice", "conn-1", 3)
//	defer p.Release(ctx, "alice", "conn-1")
package presence

import (
	"context"
	"errors"
)

var (
	// ErrUnavailable: the backing store cannot be reached; nothing was done.
	ErrUnavailable = errors.New("presence: unavailable")
)

// Stats are cluster-wide figures.
type Stats struct {
	Nodes       int // live nodes
	Connections int // connection entries counted against caps
	Users       int // distinct users with at least one connection
	Chats       int // distinct chats with at least one connected member somewhere
}

// Presence tracks connections cluster-wide.
type Presence interface {
	// Acquire records connID for userID if the user holds fewer than max
	// connections cluster-wide, atomically. ok is false when the cap is reached.
	Acquire(ctx context.Context, userID, connID string, max int) (ok bool, err error)
	// Release removes the entry at once, freeing the slot. Releasing an unknown
	// entry is not an error.
	Release(ctx context.Context, userID, connID string) error
	// SetChats replaces the set of chats this node has local members in (used
	// for the cluster-wide chat count).
	SetChats(ctx context.Context, chatIDs []string) error
	// Refresh extends the liveness of this node's entries; the node calls it
	// periodically (more often than the entry TTL).
	Refresh(ctx context.Context) error
	// Stats returns cluster-wide figures.
	Stats(ctx context.Context) (Stats, error)
	// Close removes this node's entries where possible and stops. Idempotent.
	Close() error
}
