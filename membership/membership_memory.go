package membership

import (
	"context"
	"sort"
	"sync"
)

// Interface guard.
var _ Store = (*Memory)(nil)

// Memory is the single-node [Store]: a map of sets guarded by a mutex.
type Memory struct {
	mu    sync.RWMutex // guards chats
	chats map[string]map[string]struct{}
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{chats: make(map[string]map[string]struct{})}
}

// Add implements [Store].
func (m *Memory) Add(_ context.Context, chatID, userID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.chats[chatID]
	if set == nil {
		set = make(map[string]struct{})
		m.chats[chatID] = set
	}
	if _, ok := set[userID]; ok {
		return false, nil
	}
	set[userID] = struct{}{}
	return true, nil
}

// Remove implements [Store].
func (m *Memory) Remove(_ context.Context, chatID, userID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.chats[chatID]
	if _, ok := set[userID]; !ok {
		return false, nil
	}
	delete(set, userID)
	if len(set) == 0 {
		delete(m.chats, chatID)
	}
	return true, nil
}

// IsMember implements [Store].
func (m *Memory) IsMember(_ context.Context, chatID, userID string) (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.chats[chatID][userID]
	return ok, nil
}

// Members implements [Store]. An unknown chat has no members: the result is an
// empty, non-nil slice.
func (m *Memory) Members(_ context.Context, chatID string) ([]string, error) {
	m.mu.RLock()
	set := m.chats[chatID]
	out := make([]string, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	m.mu.RUnlock()
	sort.Strings(out)
	return out, nil
}
