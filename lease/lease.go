// Package lease provides a named, time-limited, exclusive lease with a fencing
// number per term: the RTM bridge's leader election. It is its own package
// because both the memory and Redis engines implement it and rtm consumes it.
//
// On Redis: SET NX with a TTL, renewed by a compare-and-extend script; each
// acquisition takes a new fencing number from INCR. The memory lease is held by
// its single node.
//
//	l := lease.NewMemory(nil) // or lease.NewRedis(client, lease.RedisConfig{})
//	term, ok, err := l.TryAcquire(ctx, "rtm", nodeID, 15*time.Second)
//	// while ok: Renew(ctx, "rtm", term, ttl) every ttl/3; stop leading when
//	// it returns false, or when ttl has passed since the last success.
//	defer l.Release(ctx, "rtm", term)
package lease

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrUnavailable: the backing store cannot be reached (or did not answer
	// in time; a timed-out call may still have taken effect).
	ErrUnavailable = errors.New("lease: unavailable")
	// ErrBadTTL: a ttl below one millisecond.
	ErrBadTTL = errors.New("lease: ttl must be at least 1ms")
)

// Term identifies one holder's tenure. Fencing numbers strictly increase
// across terms of the same lease name.
type Term struct {
	Holder  string
	Fencing int64
}

// Lease is the leader lease.
type Lease interface {
	// TryAcquire takes the lease for holder if it is free, with a new fencing
	// number. If holder already has it, its current term is returned and the
	// TTL is reset to ttl. ok is false when another holder has it; term is then
	// that holder's.
	TryAcquire(ctx context.Context, name, holder string, ttl time.Duration) (term Term, ok bool, err error)
	// Renew resets the TTL to ttl only if term still holds the lease (same
	// holder and fencing number); false when lost.
	Renew(ctx context.Context, name string, term Term, ttl time.Duration) (bool, error)
	// Release frees the lease only if term holds it; otherwise (a stale term)
	// it does nothing and returns nil.
	Release(ctx context.Context, name string, term Term) error
	// Holder reports the current term, ok false when free.
	Holder(ctx context.Context, name string) (term Term, ok bool, err error)
}

func checkTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return ErrBadTTL
	}
	return nil
}
