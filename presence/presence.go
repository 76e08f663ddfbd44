// Package presence knows who is connected where: per-user connection entries
// taken atomically against the cluster-wide cap, online users, chats with local
// members, and node liveness. Each node writes and refreshes its own entries;
// entries of a node that stops refreshing (a crashed node) stop counting within
// the entry TTL (30 s by default).
//
// [Memory] is the single-node implementation; the Redis one shares its contract
// suite in presence/presencetest.
//
//	p := presence.NewMemory() // or presence.NewRedis(client, presence.RedisConfig{NodeID: id})
//	go presence.KeepAlive(ctx, p, 10*time.Second, logError)
//	ok, err := p.Acquire(ctx, "alice", "conn-1", 3)
//	defer p.Release(ctx, "alice", "conn-1")
package presence

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrUnavailable: the backing store cannot be reached (or did not answer
	// in time, in which case the call may or may not have taken effect; an
	// entry the node does not know it holds expires within the entry TTL).
	ErrUnavailable = errors.New("presence: unavailable")
	// ErrClosed: the Presence was closed.
	ErrClosed = errors.New("presence: closed")
)

// Stats are cluster-wide figures.
type Stats struct {
	Nodes       int // live nodes
	Connections int // connection entries counted against caps
	Users       int // distinct users with at least one connection
	Chats       int // distinct chats with at least one connected member somewhere
}

// Entry is one connection entry: the node holding it ("" on [Memory], whose
// node is the whole cluster) and the connection's id there.
type Entry struct {
	Node string
	Conn string
}

// MaxLocate bounds the entries [Presence.Locate] returns per user.
const MaxLocate = 100

// Presence tracks connections cluster-wide.
type Presence interface {
	// Acquire records connID for userID if the user holds fewer than max
	// connections cluster-wide, atomically. ok is false when the cap is reached
	// (always when max <= 0). Acquiring an entry already held succeeds without
	// taking another slot.
	Acquire(ctx context.Context, userID, connID string, max int) (ok bool, err error)
	// Release removes the entry at once, freeing the slot. Releasing an unknown
	// entry is not an error.
	Release(ctx context.Context, userID, connID string) error
	// SetChats replaces the set of chats this node has local members in (used
	// for the cluster-wide chat count). Call it when that set changes
	// (debounced); each call rewrites the whole set.
	SetChats(ctx context.Context, chatIDs []string) error
	// Refresh extends the liveness of this node's entries; the node calls it
	// periodically (more often than the entry TTL).
	Refresh(ctx context.Context) error
	// Stats returns cluster-wide figures.
	Stats(ctx context.Context) (Stats, error)
	// Locate returns the live connection entries of each of userIDs that
	// has one, at most MaxLocate per user (the admin console's user lookup
	// and online members). One round trip on Redis.
	Locate(ctx context.Context, userIDs []string) (map[string][]Entry, error)
	// Close removes this node's entries where possible and stops; later calls
	// return ErrClosed (Release returns nil). Idempotent.
	Close() error
}

// KeepAlive calls p.Refresh every interval until ctx is done, passing
// failures to onError (nil: ignored). It blocks: run it in a goroutine the
// caller owns and stops with ctx. The interval should be at most a third of
// the entry TTL, so one failed refresh does not expire the node's entries.
func KeepAlive(ctx context.Context, p Presence, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.Refresh(ctx); err != nil && onError != nil && ctx.Err() == nil {
				onError(err)
			}
		}
	}
}
