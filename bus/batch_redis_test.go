package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/bus/bustest"
	"github.com/anchat/realtime/internal/redistest"
)

// TestRedisBatchesConcurrentAppends: concurrent appends from one broker go
// to Redis as pipelines of several scripts (fewer round trips than calls),
// and each is still stored and delivered once, in the chat's order.
func TestRedisBatchesConcurrentAppends(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	hook := redistest.CountRoundTrips(c)
	// The linger makes the coalescing certain rather than load-dependent.
	b, err := bus.NewRedis(c, bus.RedisConfig{Prefix: redistest.Prefix(t), BatchLinger: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var rec bustest.Recorder
	if err := b.Start(rec.Handle); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	chats := []string{"a", "b"}
	for _, chat := range chats {
		if err := b.Subscribe(ctx, bus.Chat(chat)); err != nil {
			t.Fatal(err)
		}
	}
	// Load the script first, so that NOSCRIPT retries do not count.
	if _, err := b.Append(ctx, "warm", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message"}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	before := hook.Count()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := b.Append(ctx, chats[i%2], bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message",
				Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	trips := hook.Count() - before
	t.Logf("%d appends in %d round trips", n, trips)
	if trips >= n {
		t.Errorf("%d concurrent appends took %d round trips: not coalesced", n, trips)
	}
	for _, chat := range chats {
		history, _, err := b.Since(ctx, chat, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(history) != n/2 {
			t.Fatalf("chat %s: %d events stored, want %d", chat, len(history), n/2)
		}
		rec.WaitOn(t, bus.Chat(chat), n/2)
		rec.Sync(t, b, bus.Chat(chat))
		got := rec.On(bus.Chat(chat))
		if len(got) != n/2 {
			t.Fatalf("chat %s: %d deliveries, want %d", chat, len(got), n/2)
		}
		for i, d := range got {
			if d.EventID != history[i].EventID {
				t.Fatalf("chat %s: delivery %d is %s, history has %s: not in order", chat, i, d.EventID, history[i].EventID)
			}
		}
	}
}

// TestRedisBatchReloadsScripts: a batch that meets NOSCRIPT (Redis lost its
// scripts: a restart, a failover) sends them again with their source, once.
func TestRedisBatchReloadsScripts(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	b, err := bus.NewRedis(c, bus.RedisConfig{Prefix: redistest.Prefix(t), BatchLinger: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	for round := range 2 {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				if _, err := b.Append(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message"}); err != nil {
					t.Errorf("round %d append %d after SCRIPT FLUSH: %v", round, i, err)
				}
			})
		}
		wg.Wait()
	}
	history, _, err := b.Since(ctx, "c", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 10 {
		t.Fatalf("%d events stored, want 10 (each append exactly once)", len(history))
	}
}

// TestRedisBatchSkipsExpiredCalls: a call whose context ends while it waits
// in the queue answers with the context's error and is never sent, so
// nothing is appended behind the caller's back.
func TestRedisBatchSkipsExpiredCalls(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	b, err := bus.NewRedis(c, bus.RedisConfig{Prefix: redistest.Prefix(t), BatchLinger: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = b.Append(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message"})
	if !errors.Is(err, bus.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append past its deadline: %v, want ErrUnavailable and the deadline", err)
	}
	// The writer sends its batch when the linger ends; the expired call is
	// not in it. A later append shows the batch went out.
	if _, err := b.Append(context.Background(), "c", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(`{"later":1}`)}); err != nil {
		t.Fatal(err)
	}
	history, _, err := b.Since(context.Background(), "c", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 1 {
		t.Fatalf("history %v: want only the later append", history)
	}
}

func TestRedisBatchLingerMustNotBeNegative(t *testing.T) {
	if _, err := bus.NewRedis(redis.NewClient(&redis.Options{}), bus.RedisConfig{BatchLinger: -time.Millisecond}); err == nil {
		t.Fatal("negative BatchLinger accepted")
	}
}

// TestRedisNoBatch: with NoBatch every call is a round trip of its own.
func TestRedisNoBatch(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	hook := redistest.CountRoundTrips(c)
	b, err := bus.NewRedis(c, bus.RedisConfig{Prefix: redistest.Prefix(t), NoBatch: true, BatchLinger: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if _, err := b.Append(ctx, "warm", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message"}); err != nil {
		t.Fatal(err)
	}
	const n = 10
	before := hook.Count()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := b.Append(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if trips := hook.Count() - before; trips != n {
		t.Errorf("%d appends took %d round trips, want one each", n, trips)
	}
}
