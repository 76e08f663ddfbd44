package presence

import (
	"context"
	"sync"
)

// Interface guard.
var _ Presence = (*Memory)(nil)

// Memory is the single-node [Presence]: a set of connection IDs per user.
// Nothing expires (the node is the cluster); Refresh does nothing.
type Memory struct {
	mu     sync.Mutex // guards the following fields
	users  map[string]map[string]struct{}
	conns  int
	chats  int
	closed bool
}

// NewMemory returns an empty presence.
func NewMemory() *Memory {
	return &Memory{users: make(map[string]map[string]struct{})}
}

// Acquire implements [Presence].
func (m *Memory) Acquire(_ context.Context, userID, connID string, max int) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, ErrClosed
	}
	if max <= 0 {
		return false, nil
	}
	set := m.users[userID]
	if _, ok := set[connID]; ok {
		return true, nil
	}
	if len(set) >= max {
		return false, nil
	}
	if set == nil {
		set = make(map[string]struct{})
		m.users[userID] = set
	}
	set[connID] = struct{}{}
	m.conns++
	return true, nil
}

// Release implements [Presence].
func (m *Memory) Release(_ context.Context, userID, connID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	set := m.users[userID]
	if _, ok := set[connID]; !ok {
		return nil
	}
	delete(set, connID)
	m.conns--
	if len(set) == 0 {
		delete(m.users, userID)
	}
	return nil
}

// SetChats implements [Presence].
func (m *Memory) SetChats(_ context.Context, chatIDs []string) error {
	distinct := make(map[string]struct{}, len(chatIDs))
	for _, c := range chatIDs {
		distinct[c] = struct{}{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.chats = len(distinct)
	return nil
}

// Refresh implements [Presence]; there is nothing to refresh.
func (m *Memory) Refresh(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Stats implements [Presence]; Nodes is 1.
func (m *Memory) Stats(context.Context) (Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Stats{}, ErrClosed
	}
	return Stats{Nodes: 1, Connections: m.conns, Users: len(m.users), Chats: m.chats}, nil
}

// Close implements [Presence].
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.users = make(map[string]map[string]struct{})
	m.conns, m.chats = 0, 0
	return nil
}
