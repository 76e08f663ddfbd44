package rtm

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"
)

// Interface guard.
var _ Store = (*MemoryStore)(nil)

// MemoryStore is the single-node [Store]: everything lives in process
// memory; seen keys expire by the injected clock.
type MemoryStore struct {
	now func() time.Time

	mu        sync.Mutex // guards the following fields
	version   int64
	sessions  map[string]Session
	states    map[string]State
	figures   map[string]Figures
	seen      map[string]time.Time // key -> expiry
	lastSweep time.Time
	watchers  map[chan struct{}]struct{}
}

// NewMemoryStore returns an empty store reading time from now (nil: time.Now).
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{
		now:      now,
		sessions: make(map[string]Session),
		states:   make(map[string]State),
		figures:  make(map[string]Figures),
		seen:     make(map[string]time.Time),
		watchers: make(map[chan struct{}]struct{}),
	}
}

// signal pokes every watcher. s.mu must be held.
func (s *MemoryStore) signal() {
	for c := range s.watchers {
		poke(c)
	}
}

// PutSession implements [Store].
func (s *MemoryStore) PutSession(_ context.Context, profileID string, session json.RawMessage) error {
	if err := checkProfileID(profileID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version++
	s.sessions[profileID] = Session{Version: s.version, Data: append(json.RawMessage(nil), session...)}
	s.signal()
	return nil
}

// DeleteSession implements [Store].
func (s *MemoryStore) DeleteSession(_ context.Context, profileID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version++
	delete(s.sessions, profileID)
	s.deleteState(profileID)
	s.signal()
	return nil
}

// Sessions implements [Store].
func (s *MemoryStore) Sessions(context.Context) (map[string]Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.sessions), nil
}

// SessionsVersion implements [Store].
func (s *MemoryStore) SessionsVersion(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, nil
}

// SetState implements [Store].
func (s *MemoryStore) SetState(_ context.Context, profileID string, state State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states[profileID] = state
	return nil
}

// DeleteState implements [Store].
func (s *MemoryStore) DeleteState(_ context.Context, profileID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteState(profileID)
	return nil
}

// deleteState forgets the profile's state and figures (a deleted session
// takes them along). s.mu must be held.
func (s *MemoryStore) deleteState(profileID string) {
	delete(s.states, profileID)
	delete(s.figures, profileID)
}

// SetFigures implements [Store].
func (s *MemoryStore) SetFigures(_ context.Context, figures map[string]Figures) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.Copy(s.figures, figures)
	return nil
}

// Figures implements [Store].
func (s *MemoryStore) Figures(context.Context) (map[string]Figures, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.figures), nil
}

// States implements [Store].
func (s *MemoryStore) States(context.Context) (map[string]State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.states), nil
}

// StatesOf implements [Store].
func (s *MemoryStore) StatesOf(_ context.Context, profileIDs []string) (map[string]State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return pick(s.states, profileIDs), nil
}

// StateCounts implements [Store], counting the states in memory.
func (s *MemoryStore) StateCounts(context.Context) (map[State]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return countStates(s.states), nil
}

// StatesPage implements [Store], sorting the ids in memory.
func (s *MemoryStore) StatesPage(_ context.Context, after string, limit int) ([]StoredState, bool, error) {
	if limit <= 0 {
		return nil, false, fmt.Errorf("rtm: states page: limit %d must be positive", limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	page, more := pageOf(s.states, s.figures, after, limit)
	return page, more, nil
}

// RecountStates implements [Store]: nothing to rebuild, StateCounts counts.
func (s *MemoryStore) RecountStates(context.Context) error { return nil }

// countStates counts states by state.
func countStates(states map[string]State) map[State]int {
	counts := make(map[State]int)
	for _, st := range states {
		counts[st]++
	}
	return counts
}

// MarkSeen implements [Store].
func (s *MemoryStore) MarkSeen(_ context.Context, key string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.lastSweep) >= time.Minute {
		s.lastSweep = now
		maps.DeleteFunc(s.seen, func(_ string, exp time.Time) bool { return !now.Before(exp) })
	}
	if exp, ok := s.seen[key]; ok && now.Before(exp) {
		return false, nil
	}
	s.seen[key] = now.Add(ttl)
	return true, nil
}

// Signal implements [Store].
func (s *MemoryStore) Signal(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signal()
	return nil
}

// Watch implements [Store].
func (s *MemoryStore) Watch(ctx context.Context) <-chan struct{} {
	c := make(chan struct{}, 1)
	s.mu.Lock()
	s.watchers[c] = struct{}{}
	s.mu.Unlock()
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.watchers, c)
		close(c) // pokes happen under s.mu, so none can follow
	})
	return c
}
