// Package registry is the cluster's list of live nodes and what each says
// about itself: every node announces a small JSON document (its id, where
// its server API answers, its version and current figures) with a TTL and
// renews it; a node that stops announcing drops out once the TTL passes.
// The admin console lists the nodes from it and reaches their server APIs.
//
// [Memory] serves the embedded single-node mode (and tests with several
// nodes in one process); [Redis] the cluster. Both pass the contract suite
// in this package's tests.
//
//	r := registry.NewMemory()
//	_ = r.Announce(ctx, "node-1", doc, 5*time.Second)
//	docs, _ := r.List(ctx, registry.MaxNodes)
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

var (
	// ErrUnavailable: the backing store cannot be reached.
	ErrUnavailable = errors.New("registry: unavailable")
	// ErrBadID: a node id is empty, longer than 128 bytes or has '{' or '}'.
	ErrBadID = errors.New("registry: bad node id")
)

// MaxNodes bounds what List returns.
const MaxNodes = 256

// MaxDocBytes bounds one announced document.
const MaxDocBytes = 16 << 10

// Registry is the list of live nodes.
type Registry interface {
	// Announce stores (or replaces) node id's document, live for ttl.
	Announce(ctx context.Context, id string, doc json.RawMessage, ttl time.Duration) error
	// Remove drops node id at once (a node stopping). Unknown ids are not an error.
	Remove(ctx context.Context, id string) error
	// List returns the documents of live nodes ordered by node id, at most
	// limit (1 to MaxNodes).
	List(ctx context.Context, limit int) ([]json.RawMessage, error)
}

func checkAnnounce(id string, doc json.RawMessage, ttl time.Duration) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "{}") {
		return ErrBadID
	}
	if len(doc) == 0 || len(doc) > MaxDocBytes || !json.Valid(doc) {
		return errors.New("registry: the document must be valid JSON of at most 16 KiB")
	}
	if ttl < time.Millisecond {
		return errors.New("registry: ttl must be at least 1ms")
	}
	return nil
}

func clampLimit(limit int) int { return min(max(limit, 1), MaxNodes) }

// Memory is the in-process [Registry].
type Memory struct {
	now   func() time.Time
	mu    sync.Mutex // guards nodes
	nodes map[string]memoryEntry
}

type memoryEntry struct {
	doc     json.RawMessage
	expires time.Time
}

// Interface guard.
var _ Registry = (*Memory)(nil)

// NewMemory returns an empty registry on the wall clock.
func NewMemory() *Memory { return &Memory{now: time.Now, nodes: make(map[string]memoryEntry)} }

// Announce implements [Registry].
func (m *Memory) Announce(_ context.Context, id string, doc json.RawMessage, ttl time.Duration) error {
	if err := checkAnnounce(id, doc, ttl); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes[id] = memoryEntry{doc: slices.Clone(doc), expires: m.now().Add(ttl)}
	return nil
}

// Remove implements [Registry].
func (m *Memory) Remove(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.nodes, id)
	return nil
}

// List implements [Registry].
func (m *Memory) List(_ context.Context, limit int) ([]json.RawMessage, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.nodes))
	for id, e := range m.nodes {
		if !now.Before(e.expires) {
			delete(m.nodes, id)
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]json.RawMessage, 0, min(len(ids), clampLimit(limit)))
	for _, id := range ids[:min(len(ids), clampLimit(limit))] {
		out = append(out, m.nodes[id].doc)
	}
	return out, nil
}
