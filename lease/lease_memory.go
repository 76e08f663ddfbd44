package lease

import (
	"context"
	"sync"
	"time"
)

// Interface guard.
var _ Lease = (*Memory)(nil)

// Memory is the single-node [Lease]. It has the same semantics as the Redis
// one (exclusive holder, TTL, fencing numbers that only grow), measured with
// an injectable clock.
type Memory struct {
	now func() time.Time

	mu     sync.Mutex // guards the following fields
	held   map[string]memTerm
	fences map[string]int64 // last fencing number handed out per name
}

type memTerm struct {
	term    Term
	expires time.Time
}

// NewMemory returns a memory lease reading time from now (nil: time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, held: make(map[string]memTerm), fences: make(map[string]int64)}
}

// current returns name's unexpired term. m.mu must be held.
func (m *Memory) current(name string, now time.Time) (memTerm, bool) {
	t, ok := m.held[name]
	if ok && !now.Before(t.expires) {
		delete(m.held, name)
		return memTerm{}, false
	}
	return t, ok
}

// TryAcquire implements [Lease].
func (m *Memory) TryAcquire(_ context.Context, name, holder string, ttl time.Duration) (Term, bool, error) {
	if err := checkTTL(ttl); err != nil {
		return Term{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if cur, ok := m.current(name, now); ok {
		if cur.term.Holder != holder {
			return cur.term, false, nil
		}
		cur.expires = now.Add(ttl)
		m.held[name] = cur
		return cur.term, true, nil
	}
	m.fences[name]++
	t := Term{Holder: holder, Fencing: m.fences[name]}
	m.held[name] = memTerm{term: t, expires: now.Add(ttl)}
	return t, true, nil
}

// Renew implements [Lease].
func (m *Memory) Renew(_ context.Context, name string, term Term, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	cur, ok := m.current(name, now)
	if !ok || cur.term != term {
		return false, nil
	}
	cur.expires = now.Add(ttl)
	m.held[name] = cur
	return true, nil
}

// Release implements [Lease].
func (m *Memory) Release(_ context.Context, name string, term Term) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.current(name, m.now()); ok && cur.term == term {
		delete(m.held, name)
	}
	return nil
}

// Holder implements [Lease].
func (m *Memory) Holder(_ context.Context, name string) (Term, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.current(name, m.now())
	return cur.term, ok, nil
}
