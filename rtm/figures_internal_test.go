package rtm

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/lease"
)

// figuresLog is a MemoryStore that also keeps the profile ids of each
// SetFigures call.
type figuresLog struct {
	*MemoryStore
	mu    sync.Mutex
	calls [][]string
}

func (s *figuresLog) SetFigures(ctx context.Context, figures map[string]Figures) error {
	s.mu.Lock()
	s.calls = append(s.calls, slices.Sorted(maps.Keys(figures)))
	s.mu.Unlock()
	return s.MemoryStore.SetFigures(ctx, figures)
}

func (s *figuresLog) take() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

// TestFlushFiguresWritesOnlyTheChanged: the leader's periodic flush records
// the figures of the profiles that changed since the last flush, not every
// profile's: an event on one profile among 10,000 must not rewrite the
// 10,000 (about 1 MB to Redis every ResyncInterval while events flow).
func TestFlushFiguresWritesOnlyTheChanged(t *testing.T) {
	store := &figuresLog{MemoryStore: NewMemoryStore(nil)}
	b, err := New(Config{NodeID: "n1", URL: "ws://127.0.0.1:1/ws", Lease: lease.NewMemory(nil),
		Bus: bus.NewMemory(bus.MemoryConfig{}), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10_000 {
		b.figures[fmt.Sprintf("other-%05d", i)] = Figures{Reconnects: 1}
	}
	ctx := t.Context()
	b.flushFigures(ctx)
	if calls := store.take(); len(calls) != 0 {
		t.Fatalf("nothing changed, yet %d SetFigures calls", len(calls))
	}
	b.noteEvent("p1")
	b.noteReconnect("p2")
	b.noteEvent("p1")
	b.flushFigures(ctx)
	if calls := store.take(); len(calls) != 1 || !slices.Equal(calls[0], []string{"p1", "p2"}) {
		t.Fatalf("SetFigures calls %d, first of %d profiles; want one call with p1 and p2", len(calls), len(first(calls)))
	}
	stored, _ := store.Figures(ctx)
	if f := stored["p2"]; len(stored) != 2 || f.Reconnects != 1 || stored["p1"].LastEventAt.IsZero() {
		t.Fatalf("stored figures %v", stored)
	}
	b.flushFigures(ctx)
	if calls := store.take(); len(calls) != 0 {
		t.Fatalf("flushed again without a change: %d calls", len(calls))
	}
}

func first(calls [][]string) []string {
	if len(calls) == 0 {
		return nil
	}
	return calls[0]
}
