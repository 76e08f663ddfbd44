// Package membership stores who belongs to which chat. The application backend
// manages it through the server API; the node checks it on join_chat.
// It is its own package because membership is neither transport (bus) nor
// connection state (presence).
//
// [Memory] is the single-node store; the Redis one (a set per chat) shares the
// contract suite in membership/membershiptest.
package membership

import (
	"context"
	"errors"
)

var (
	// ErrUnavailable: the backing store cannot be reached; nothing was done.
	ErrUnavailable = errors.New("membership: unavailable")
)

// Store holds chat membership.
type Store interface {
	// Add makes userID a member of chatID; true when it was not one already.
	Add(ctx context.Context, chatID, userID string) (added bool, err error)
	// Remove drops the membership; true when it existed.
	Remove(ctx context.Context, chatID, userID string) (removed bool, err error)
	// IsMember reports whether userID belongs to chatID.
	IsMember(ctx context.Context, chatID, userID string) (bool, error)
	// Members lists chatID's members in ascending order.
	Members(ctx context.Context, chatID string) ([]string, error)
}
