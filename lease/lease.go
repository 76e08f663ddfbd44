// Package lease provides a named, time-limited, exclusive lease with a fencing
// number per term: the RTM bridge's leader election. It is its own package
// because both the memory and Redis engines implement it and rtm consumes it.
//
// On Redis: SET NX with a TTL, renewed by a compare-and-extend script; each
// acquisition takes a new fencing number from INCR. The memory lease is held by
// its single node.
package lease

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrUnavailable: the backing store cannot be reached.
	ErrUnavailable = errors.New("lease: unavailable")
)

// Term identifies one holder's tenure. Fencing numbers strictly increase
// across terms of the same lease name.
type Term struct {
	Holder  string
	Fencing int64
}

// Lease is the leader lease.
type Lease interface {
	// TryAcquire takes the lease for holder if it is free (or already held by
	// holder, in which case the current term is returned). ok false when
	// another holder has it.
	TryAcquire(ctx context.Context, name, holder string, ttl time.Duration) (term Term, ok bool, err error)
	// Renew extends the lease only if term still holds it; false when lost.
	Renew(ctx context.Context, name string, term Term, ttl time.Duration) (bool, error)
	// Release frees the lease only if term holds it.
	Release(ctx context.Context, name string, term Term) error
	// Holder reports the current term, ok false when free.
	Holder(ctx context.Context, name string) (term Term, ok bool, err error)
}
