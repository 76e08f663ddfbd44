package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/bus/bustest"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/internal/testclock"
	"github.com/anchat/realtime/limits"
)

// limitedBroker starts a Redis and returns a client to it, the client's
// round-trip counter, a fresh key prefix and a broker under that prefix;
// all end with the test.
func limitedBroker(t *testing.T) (*redis.Client, *redistest.RoundTrips, string, *bus.Redis) {
	t.Helper()
	c := redistest.Client(t)
	rt := redistest.CountRoundTrips(c)
	prefix := redistest.Prefix(t)
	b, err := bus.NewRedis(c, bus.RedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return c, rt, prefix, b
}

// startedOn starts b with a recorder and subscribes it to ch.
func startedOn(t *testing.T, b *bus.Redis, ch bus.Channel) *bustest.Recorder {
	t.Helper()
	rec := &bustest.Recorder{}
	if err := b.Start(rec.Handle); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	return rec
}

// clockedLimiter is a Redis limiter under prefix on a hand-moved clock.
func clockedLimiter(t *testing.T, c *redis.Client, prefix string) (*limits.Redis, *testclock.Clock) {
	t.Helper()
	clk := testclock.New(time.Unix(1_900_000_000, 0))
	l, err := limits.NewRedis(c, limits.RedisConfig{Prefix: prefix, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l, clk
}

// TestRedisAppendLimited: the rate limit folded into the append script admits
// N sends in the window, in one round trip each, refuses the next without
// appending or publishing it, with the limiter's retry-after, and shares
// its budget with the limiter's own checks on the same key.
func TestRedisAppendLimited(t *testing.T) {
	c, rt, prefix, b := limitedBroker(t)
	rec := startedOn(t, b, bus.Chat("c"))
	ctx := context.Background()
	l, clk := clockedLimiter(t, c, prefix)
	lim := limits.PerMinute(3)
	send := func() (bus.Result, time.Duration, error) {
		t.Helper()
		chk, err := l.Check("message:alice", lim)
		if err != nil {
			t.Fatal(err)
		}
		return b.AppendLimited(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "alice", Event: "new_message", Data: json.RawMessage(`{"n":1}`)},
			chk)
	}
	// One event counted by the limiter itself, 10 s earlier.
	if res, err := l.Allow(ctx, "message:alice", lim); err != nil || !res.Allowed {
		t.Fatalf("Allow = %+v, %v", res, err)
	}
	clk.Advance(10 * time.Second)
	var ids []string
	for i := range 2 {
		before := rt.Count()
		res, _, err := send()
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if n := rt.Count() - before; n != 1 && i > 0 { // the first may load the script
			t.Errorf("send %d: %d round trips, want 1", i, n)
		}
		ids = append(ids, res.EventID)
	}
	_, retry, err := send()
	if !errors.Is(err, bus.ErrLimited) {
		t.Fatalf("fourth event in the window: %v, want ErrLimited", err)
	}
	if want := 50 * time.Second; retry != want {
		t.Errorf("retry after %v, want %v (the limiter's own event leaves the window then)", retry, want)
	}
	if res, err := l.Allow(ctx, "message:alice", lim); err != nil || res.Allowed {
		t.Fatalf("the limiter admits a fourth event: %+v, %v", res, err)
	}
	events, _, err := b.Since(ctx, "c", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].EventID != ids[0] || events[1].EventID != ids[1] {
		t.Fatalf("history %v, want exactly the two admitted sends %v", events, ids)
	}
	rec.WaitOn(t, bus.Chat("c"), 2)
	rec.Sync(t, b, bus.Chat("c"))
	if got := rec.On(bus.Chat("c")); len(got) != 2 {
		t.Errorf("%d deliveries, want the two admitted sends", len(got))
	}
	// The window slides: 50 s later one more fits.
	clk.Advance(50 * time.Second)
	if _, _, err := send(); err != nil {
		t.Fatalf("after the window slid: %v", err)
	}
}

// TestRedisPublishLimited: the rate limit folded into the typing publish
// admits N events in the window, one round trip each, refuses the next
// without publishing it, with the limiter's retry-after, and shares its
// budget with the limiter's own checks on the same key.
func TestRedisPublishLimited(t *testing.T) {
	c, hook, prefix, b := limitedBroker(t)
	ctx := context.Background()
	ch := bus.Chat("c")
	rec := startedOn(t, b, ch)
	l, clk := clockedLimiter(t, c, prefix)
	lim := limits.PerMinute(3)
	publish := func(n int) (time.Duration, error) {
		t.Helper()
		chk, err := l.Check("typing:alice", lim)
		if err != nil {
			t.Fatal(err)
		}
		return b.PublishLimited(ctx, ch, "user_typing", json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)), chk)
	}
	// One event counted by the limiter itself, 10 s earlier.
	if res, err := l.Allow(ctx, "typing:alice", lim); err != nil || !res.Allowed {
		t.Fatalf("Allow = %+v, %v", res, err)
	}
	clk.Advance(10 * time.Second)
	for i := range 2 {
		before := hook.Count()
		if _, err := publish(i); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if n := hook.Count() - before; n != 1 && i > 0 { // the first may load the script
			t.Errorf("publish %d: %d round trips, want 1", i, n)
		}
	}
	retry, err := publish(2)
	if !errors.Is(err, bus.ErrLimited) {
		t.Fatalf("fourth event in the window: %v, want ErrLimited", err)
	}
	if want := 50 * time.Second; retry != want {
		t.Errorf("retry after %v, want %v (the limiter's own event leaves the window then)", retry, want)
	}
	if res, err := l.Allow(ctx, "typing:alice", lim); err != nil || res.Allowed {
		t.Fatalf("the limiter admits a fourth event: %+v, %v", res, err)
	}
	rec.WaitOn(t, ch, 2)
	rec.Sync(t, b, ch)
	got := rec.On(ch)
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want the two admitted events", len(got))
	}
	for i, d := range got {
		if d.Event != "user_typing" || d.EventID != "" || string(d.Data) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Errorf("delivery %d = %+v, want the ephemeral user_typing {\"n\":%d}", i, d, i)
		}
	}
	// The window slides: 50 s later one more fits.
	clk.Advance(50 * time.Second)
	if _, err := publish(3); err != nil {
		t.Fatalf("after the window slid: %v", err)
	}
}

// TestRedisLimitedWritesNotOnCluster: a folded limit and the write it
// guards live in different slots on a Redis Cluster, so both calls refuse a
// cluster client (cmd/realtime wires them on one Redis only).
func TestRedisLimitedWritesNotOnCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	b, err := bus.NewRedis(c, bus.RedisConfig{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, lim := context.Background(), bus.WindowLimit{Key: "k", N: 1, Window: 1}
	if _, _, err := b.AppendLimited(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message"}, lim); err == nil {
		t.Error("AppendLimited on a cluster client: no error")
	}
	if _, err := b.PublishLimited(ctx, bus.Chat("c"), "user_typing", nil, lim); err == nil {
		t.Error("PublishLimited on a cluster client: no error")
	}
}

// TestRedisAppendLimitedReactions: the limit folds into every chat write,
// not only sends: a reaction within the budget is added in one round trip,
// and one over it changes nothing (no reaction, no event).
func TestRedisAppendLimitedReactions(t *testing.T) {
	c, hook, prefix, b := limitedBroker(t)
	ctx := context.Background()
	l, err := limits.NewRedis(c, limits.RedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := b.Append(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "alice", Event: "new_message"})
	if err != nil {
		t.Fatal(err)
	}
	lim := limits.PerMinute(1)
	do := func(op bus.Op) (bus.Result, error) {
		t.Helper()
		chk, err := l.Check("reaction:bob", lim)
		if err != nil {
			t.Fatal(err)
		}
		before := hook.Count()
		res, _, err := b.AppendLimited(ctx, "c", op, chk)
		if n := hook.Count() - before; n != 1 {
			t.Errorf("%d round trips, want 1", n)
		}
		return res, err
	}
	react := func(emoji string) bus.Op {
		return bus.Op{Kind: bus.OpReactAdd, UserID: "bob", MessageID: msg.MessageID, Emoji: emoji, Event: "reaction_updated", Data: json.RawMessage(`{}`)}
	}
	if res, err := do(react("👍")); err != nil || !res.Changed {
		t.Fatalf("first reaction: %+v, %v", res, err)
	}
	if _, err := do(react("🎉")); !errors.Is(err, bus.ErrLimited) {
		t.Fatalf("second reaction in a budget of 1: %v, want ErrLimited", err)
	}
	history, _, err := b.Since(ctx, "c", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 2 {
		t.Fatalf("%d events, want the message and the one admitted reaction", len(history))
	}
	// The refused one was not added: adding it without a limit changes the set.
	if res, err := b.Append(ctx, "c", react("🎉")); err != nil || !res.Changed {
		t.Fatalf("the refused reaction was stored after all: %+v, %v", res, err)
	}
}
