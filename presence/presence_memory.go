package presence

import (
	"context"
	"slices"
	"sync"
)

// Interface guard.
var _ Presence = (*Memory)(nil)

// Memory is the single-node [Presence]: the connection IDs of each user.
// Nothing expires (the node is the cluster); Refresh does nothing. A user
// holds a handful of connections (the cap), so a slice beats a set in memory
// per connection, which matters at tens of thousands of them.
type Memory struct {
	mu     sync.Mutex // guards the following fields
	users  map[string][]string
	conns  int
	chats  int
	closed bool
}

// NewMemory returns an empty presence.
func NewMemory() *Memory {
	return &Memory{users: make(map[string][]string)}
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
	conns := m.users[userID]
	if slices.Contains(conns, connID) {
		return true, nil
	}
	if len(conns) >= max {
		return false, nil
	}
	m.users[userID] = append(conns, connID)
	m.conns++
	return true, nil
}

// Release implements [Presence].
func (m *Memory) Release(_ context.Context, userID, connID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	conns := m.users[userID]
	i := slices.Index(conns, connID)
	if i < 0 {
		return nil
	}
	conns = slices.Delete(conns, i, i+1)
	m.conns--
	if len(conns) == 0 {
		delete(m.users, userID)
	} else {
		m.users[userID] = conns
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

// Locate implements [Presence]; every entry's Node is "".
func (m *Memory) Locate(_ context.Context, userIDs []string) (map[string][]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make(map[string][]Entry)
	for _, u := range userIDs {
		conns := m.users[u]
		for _, c := range conns[:min(len(conns), MaxLocate)] {
			out[u] = append(out[u], Entry{Conn: c})
		}
	}
	return out, nil
}

// Close implements [Presence].
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.users = make(map[string][]string)
	m.conns, m.chats = 0, 0
	return nil
}
