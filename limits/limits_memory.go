package limits

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Interface guard.
var _ Limiter = (*Memory)(nil)

// sweepEvery is how many Allow calls pass between sweeps of idle keys.
const sweepEvery = 1024

// Memory is the single-node [Limiter]. Window keeps, per key, the times of the
// last N accepted events; GCRA keeps redis_rate's theoretical arrival time
// and reproduces its arithmetic exactly. Idle keys are dropped in periodic
// sweeps, so memory follows the number of active keys.
type Memory struct {
	now Clock

	mu      sync.Mutex // guards the following fields
	windows map[string]*windowState
	gcra    map[string]gcraState
	calls   int
}

type windowState struct {
	accepted []time.Time   // accepted within the last window, ascending
	window   time.Duration // of the last check, for sweeping
}

type gcraState struct {
	tat time.Time // theoretical arrival time of the next event
}

// NewMemory returns a memory limiter reading time from now (nil: time.Now).
func NewMemory(now Clock) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{
		now:     now,
		windows: make(map[string]*windowState),
		gcra:    make(map[string]gcraState),
	}
}

// Allow implements [Limiter].
func (m *Memory) Allow(_ context.Context, key string, l Limit) (Result, error) {
	if err := l.Validate(); err != nil {
		return Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.calls++; m.calls%sweepEvery == 0 {
		m.sweep(now)
	}
	if l.Policy == GCRA {
		return m.allowGCRA(key, l, now), nil
	}
	return m.allowWindow(key, l, now), nil
}

// allowWindow accepts if fewer than l.N accepted events lie in
// (now-l.Window, now]. m.mu must be held.
func (m *Memory) allowWindow(key string, l Limit, now time.Time) Result {
	st := m.windows[key]
	if st == nil {
		st = &windowState{}
		m.windows[key] = st
	}
	st.window = l.Window
	cut := now.Add(-l.Window)
	// Drop events at or before the cut: they have left the window.
	i := sort.Search(len(st.accepted), func(i int) bool { return st.accepted[i].After(cut) })
	st.accepted = st.accepted[:copy(st.accepted, st.accepted[i:])]
	if n := len(st.accepted); n >= l.N {
		// The event that must leave before one more fits.
		return Result{RetryAfter: st.accepted[n-l.N].Add(l.Window).Sub(now)}
	}
	// Insert in order (a clock step backwards must not break the ordering).
	j := sort.Search(len(st.accepted), func(i int) bool { return st.accepted[i].After(now) })
	st.accepted = append(st.accepted, time.Time{})
	copy(st.accepted[j+1:], st.accepted[j:])
	st.accepted[j] = now
	return Result{Allowed: true, Remaining: l.N - len(st.accepted)}
}

// allowGCRA follows go-redis/redis_rate's allowN script (lua.go) with burst =
// rate = N, period = Window and cost 1. m.mu must be held.
func (m *Memory) allowGCRA(key string, l Limit, now time.Time) Result {
	emission := l.EmissionInterval()
	burstOffset := emission * time.Duration(l.N)
	tat := m.gcra[key].tat
	if tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(emission)
	allowAt := newTAT.Add(-burstOffset)
	diff := now.Sub(allowAt)
	if diff < 0 {
		return Result{RetryAfter: -diff}
	}
	m.gcra[key] = gcraState{tat: newTAT}
	return Result{Allowed: true, Remaining: int(diff / emission)}
}

// sweep drops keys whose state no longer affects any answer. m.mu must be
// held.
func (m *Memory) sweep(now time.Time) {
	for k, st := range m.windows {
		if n := len(st.accepted); n == 0 || !st.accepted[n-1].After(now.Add(-st.window)) {
			delete(m.windows, k)
		}
	}
	for k, st := range m.gcra {
		if !st.tat.After(now) {
			delete(m.gcra, k)
		}
	}
}

// Keys reports how many keys hold state (for metrics and tests); idle keys
// are dropped every 1024 calls.
func (m *Memory) Keys() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.windows) + len(m.gcra)
}
