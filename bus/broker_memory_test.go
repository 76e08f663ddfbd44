package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/bus/bustest"
	"github.com/anchat/realtime/internal/testclock"
)

func TestMemoryContract(t *testing.T) {
	bustest.Run(t, func(t *testing.T, historySize int) bus.Broker {
		return bus.NewMemory(bus.MemoryConfig{HistorySize: historySize})
	})
}

func TestMemoryTTL(t *testing.T) {
	clock := testclock.New(time.UnixMilli(1_700_000_000_000))
	m := bus.NewMemory(bus.MemoryConfig{HistoryTTL: time.Hour, Now: clock.Now})
	defer m.Close()
	ctx := context.Background()
	send := func() bus.Result {
		t.Helper()
		res, err := m.Append(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "alice", Event: "new_message", Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	edit := func(id string) error {
		_, err := m.Append(ctx, "c", bus.Op{Kind: bus.OpEdit, UserID: "alice", MessageID: id, Event: "message_edited"})
		return err
	}
	old := send()
	if old.EventID != "1700000000000-0" {
		t.Fatalf("first id %s, want 1700000000000-0", old.EventID)
	}
	if second := send(); second.EventID != "1700000000000-1" {
		t.Fatalf("second id in the same ms %s, want 1700000000000-1", second.EventID)
	}
	clock.Advance(59 * time.Minute)
	recent := send()
	if err := edit(old.MessageID); err != nil {
		t.Fatalf("edit within TTL: %v", err)
	}
	clock.Advance(2 * time.Minute)
	if err := edit(old.MessageID); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("edit of a message older than TTL: %v, want ErrNotFound", err)
	}
	if err := edit(recent.MessageID); err != nil {
		t.Fatalf("edit of a recent message: %v", err)
	}
	// The chat's history lives on while it is active...
	if evs, rec, _ := m.Since(ctx, "c", old.EventID, 0); !rec || len(evs) != 4 {
		t.Fatalf("active chat: %d events, recovered %v; want 4, true", len(evs), rec)
	}
	// ...and goes when idle for the TTL.
	clock.Advance(time.Hour)
	if evs, rec, _ := m.Since(ctx, "c", old.EventID, 0); rec || len(evs) != 0 {
		t.Fatalf("expired chat: %d events, recovered %v; want none, false", len(evs), rec)
	}
	if err := edit(recent.MessageID); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("edit in an expired chat: %v, want ErrNotFound", err)
	}
	// Ids are time-based, so they keep increasing across the expiry.
	if res := send(); bus.CompareIDs(res.EventID, recent.EventID) <= 0 {
		t.Fatalf("id after expiry %s not after %s", res.EventID, recent.EventID)
	}
}

// TestMemoryHandlerOutsideLock checks the handler may call back into the broker.
func TestMemoryHandlerOutsideLock(t *testing.T) {
	m := bus.NewMemory(bus.MemoryConfig{})
	defer m.Close()
	ctx := context.Background()
	done := make(chan struct{})
	if err := m.Start(func(d bus.Delivery) {
		if _, _, err := m.Since(ctx, "c", "", 1); err != nil {
			t.Error(err)
		}
		close(done)
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.Subscribe(ctx, bus.Chat("c")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, "c", bus.Op{Kind: bus.OpSend, Event: "new_message"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler not called")
	}
}

func BenchmarkMemoryAppend(b *testing.B) {
	m := bus.NewMemory(bus.MemoryConfig{})
	defer m.Close()
	bustest.BenchmarkAppend(b, m)
}
