package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/bus/bustest"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/internal/syncbuf"
)

// newRedisBroker returns an unstarted broker on s with its own client and a
// prefix unique to the test, both released with t.
func newRedisBroker(t testing.TB, s *redistest.Server, cfg bus.RedisConfig) *bus.Redis {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	if cfg.Prefix == "" {
		cfg.Prefix = redistest.Prefix(t)
	}
	b, err := bus.NewRedis(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestRedisContract(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	bustest.Run(t, func(t *testing.T, historySize int) bus.Broker {
		return newRedisBroker(t, s, bus.RedisConfig{HistorySize: historySize})
	})
}

func TestNewRedisConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, cfg := range []bus.RedisConfig{
		{Prefix: "a{b"},
		{HistorySize: -1},
		{HistoryTTL: -time.Second},
		{PubSubShards: -1},
	} {
		if _, err := bus.NewRedis(c, cfg); err == nil {
			t.Errorf("NewRedis(%+v) accepted", cfg)
		}
	}
	if _, err := bus.NewRedis(nil, bus.RedisConfig{}); err == nil {
		t.Error("NewRedis(nil client) accepted")
	}
	if _, err := bus.NewRedis(c, bus.RedisConfig{}); err != nil {
		t.Errorf("zero config: %v", err)
	}
}

// TestRedisLayout checks the documented keys, hash tags and TTLs.
func TestRedisLayout(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	rdb := s.Client()
	b := newRedisBroker(t, s, bus.RedisConfig{Prefix: "lay", HistoryTTL: time.Hour})
	ctx := context.Background()
	res, err := b.Append(ctx, "c1", bus.Op{Kind: bus.OpSend, UserID: "alice", Event: "new_message", Data: json.RawMessage(`{"x":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "c1", bus.Op{Kind: bus.OpReactAdd, UserID: "bob", MessageID: res.MessageID, Emoji: "👍", Event: "reaction_updated"}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"lay:{chat:c1}:h", "lay:{chat:c1}:r:" + res.MessageID} {
		ttl, err := rdb.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("PTTL %s = %v, %v; want in (0, 1h]", key, ttl, err)
		}
	}
	// No key per message until it is deleted: the author is in the stream.
	meta := "lay:{chat:c1}:m:" + res.MessageID
	if n := rdb.Exists(ctx, meta).Val(); n != 0 {
		t.Errorf("%s exists before any delete", meta)
	}
	if m := rdb.SMembers(ctx, "lay:{chat:c1}:r:"+res.MessageID).Val(); len(m) != 1 || m[0] != "bob\n👍" {
		t.Errorf("reactions %q", m)
	}
	msgs := rdb.XRange(ctx, "lay:{chat:c1}:h", "-", "+").Val()
	if len(msgs) != 2 || msgs[0].ID != res.EventID || msgs[0].Values["e"] != "new_message" ||
		msgs[0].Values["d"] != `{"messageId":"`+res.EventID+`","x":1}` || msgs[0].Values["a"] != "alice" {
		t.Errorf("stream %+v", msgs)
	}
	if _, ok := msgs[1].Values["a"]; ok {
		t.Errorf("a reaction event carries an author field: %+v", msgs[1])
	}
	// A delete writes the deleted flag, expiring with the message.
	if _, err := b.Append(ctx, "c1", bus.Op{Kind: bus.OpDelete, UserID: "alice", MessageID: res.MessageID, Event: "message_deleted"}); err != nil {
		t.Fatal(err)
	}
	if x := rdb.HGet(ctx, meta, "x").Val(); x != "1" {
		t.Errorf("deleted flag %q, want 1", x)
	}
	if ttl := rdb.PTTL(ctx, meta).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("PTTL %s = %v, want in (0, 1h]", meta, ttl)
	}
}

// TestRedisMessagesStoredBefore: a message stored by an earlier version (its
// author in a hash per message, not in the stream entry) can still be edited
// by its author only, reacted to and deleted.
func TestRedisMessagesStoredBefore(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	rdb := s.Client()
	b := newRedisBroker(t, s, bus.RedisConfig{Prefix: "old", HistoryTTL: time.Hour})
	ctx := context.Background()
	id := fmt.Sprintf("%d-0", time.Now().UnixMilli()-1000)
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "old:{chat:c1}:h", ID: id, Values: []any{"e", "new_message", "d", `{"messageId":"` + id + `"}`}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, "old:{chat:c1}:m:"+id, "a", "alice").Err(); err != nil {
		t.Fatal(err)
	}
	rdb.PExpire(ctx, "old:{chat:c1}:m:"+id, time.Hour)
	if _, err := b.Append(ctx, "c1", bus.Op{Kind: bus.OpEdit, UserID: "bob", MessageID: id, Event: "message_edited"}); !errors.Is(err, bus.ErrForbidden) {
		t.Fatalf("edit by another user: %v, want ErrForbidden", err)
	}
	for _, op := range []bus.Op{
		{Kind: bus.OpEdit, UserID: "alice", MessageID: id, Event: "message_edited"},
		{Kind: bus.OpReactAdd, UserID: "bob", MessageID: id, Emoji: "x", Event: "reaction_updated"},
		{Kind: bus.OpDelete, UserID: "alice", MessageID: id, Event: "message_deleted"},
	} {
		if _, err := b.Append(ctx, "c1", op); err != nil {
			t.Fatalf("%+v: %v", op, err)
		}
	}
	if _, err := b.Append(ctx, "c1", bus.Op{Kind: bus.OpEdit, UserID: "alice", MessageID: id, Event: "message_edited"}); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("edit after delete: %v, want ErrNotFound", err)
	}
}

func TestRedisRoundTrips(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	rt := redistest.CountRoundTrips(c)
	b, err := bus.NewRedis(c, bus.RedisConfig{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	send := bus.Op{Kind: bus.OpSend, UserID: "alice", Event: "new_message", Data: json.RawMessage(`{}`)}
	first, err := b.Append(ctx, "c", send) // may load the script (EVALSHA, then EVAL)
	if err != nil {
		t.Fatal(err)
	}
	rt.Expect(t, []redistest.Call{
		{Name: "send", Do: func() error { _, err := b.Append(ctx, "c", send); return err }},
		{Name: "edit", Do: func() error {
			_, err := b.Append(ctx, "c", bus.Op{Kind: bus.OpEdit, UserID: "alice", MessageID: first.MessageID, Event: "message_edited"})
			return err
		}},
		{Name: "react", Do: func() error {
			_, err := b.Append(ctx, "c", bus.Op{Kind: bus.OpReactAdd, UserID: "bob", MessageID: first.MessageID, Emoji: "x", Event: "reaction_updated"})
			return err
		}},
		{Name: "forbidden", Do: func() error {
			_, err := b.Append(ctx, "c", bus.Op{Kind: bus.OpDelete, UserID: "bob", MessageID: first.MessageID, Event: "message_deleted"})
			if errors.Is(err, bus.ErrForbidden) {
				return nil
			}
			return err
		}},
		{Name: "publish", Do: func() error { return b.Publish(ctx, bus.User("u"), "e", json.RawMessage(`{}`)) }},
		{Name: "since", Do: func() error { _, _, err := b.Since(ctx, "c", first.EventID, 10); return err }},
		{Name: "since malformed", Do: func() error { _, _, err := b.Since(ctx, "c", "", 10); return err }},
	})
}

// checkDeliveries asserts got is exactly want, in order.
func checkDeliveries(t *testing.T, got []bus.Delivery, want []string) {
	t.Helper()
	if len(got) != len(want) {
		ids := make([]string, len(got))
		for i, d := range got {
			ids[i] = d.EventID
		}
		t.Fatalf("%d deliveries %v, want %d %v", len(got), ids, len(want), want)
	}
	for i := range want {
		if got[i].EventID != want[i] {
			t.Fatalf("delivery %d is %s, want %s", i, got[i].EventID, want[i])
		}
	}
}

// dialGate blocks new connections while closed, so a test decides when a
// client may reconnect.
type dialGate struct {
	mu   sync.Mutex
	open chan struct{}
}

func newDialGate() *dialGate {
	g := &dialGate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *dialGate) Close() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *dialGate) Open() {
	g.mu.Lock()
	close(g.open)
	g.mu.Unlock()
}

func (g *dialGate) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// TestRedisGapRepair restarts Redis (with AOF, so the streams survive) under a
// subscriber, and appends while the subscriber cannot reconnect: when it does,
// it must get every event exactly once, in order, the missed ones read back
// from the streams.
func TestRedisGapRepair(t *testing.T) {
	s := redistest.Start(t, redistest.Options{AOF: true})
	logs := &syncbuf.Buffer{}
	gate := newDialGate()
	subClient := redis.NewClient(&redis.Options{Addr: s.Addr(), Dialer: gate.Dial})
	defer subClient.Close()
	sub, err := bus.NewRedis(subClient, bus.RedisConfig{Prefix: "gap", Logger: zerolog.New(logs), PubSubShards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	pub := newRedisBroker(t, s, bus.RedisConfig{Prefix: "gap"})
	rec := &bustest.Recorder{}
	if err := sub.Start(rec.Handle); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	chats := []string{"a", "b", "c", "d"}
	for _, c := range chats {
		if err := sub.Subscribe(ctx, bus.Chat(c)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]string{}
	appendTo := func(chat string) {
		t.Helper()
		var (
			res bus.Result
			err error
		)
		for try := 0; try < 100; try++ { // the publisher's pool may hold dead connections
			res, err = pub.Append(ctx, chat, bus.Op{Kind: bus.OpSend, UserID: "alice", Event: "new_message", Data: json.RawMessage(`{}`)})
			if err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		want[chat] = append(want[chat], res.EventID)
	}
	for i := 0; i < 3; i++ {
		for _, c := range chats {
			appendTo(c)
		}
	}
	for _, c := range chats {
		rec.WaitOn(t, bus.Chat(c), 3)
	}

	gate.Close()
	s.Restart()
	const missed = 5
	for i := 0; i < missed; i++ {
		for _, c := range chats {
			appendTo(c)
		}
	}
	gate.Open()
	for _, c := range chats {
		rec.WaitOn(t, bus.Chat(c), len(want[c]))
	}
	// Live delivery goes on after the repair.
	for _, c := range chats {
		appendTo(c)
	}
	for _, c := range chats {
		rec.WaitOn(t, bus.Chat(c), len(want[c]))
		rec.Sync(t, sub, bus.Chat(c))
		checkDeliveries(t, rec.On(bus.Chat(c)), want[c])
	}
	repaired := strings.Count(logs.String(), `"events":5,"message":"gap repaired"`)
	if repaired != len(chats) {
		t.Errorf("%d chats repaired with %d events, want %d; logs:\n%s", repaired, missed, len(chats), logs.String())
	}
}

// TestRedisGapBeforeLiveEvent: an event that reached the stream but not this
// subscriber (its publish was lost) is repaired when the next one arrives.
func TestRedisGapBeforeLiveEvent(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	rdb := s.Client()
	b := newRedisBroker(t, s, bus.RedisConfig{Prefix: "lost"})
	rec := &bustest.Recorder{}
	if err := b.Start(rec.Handle); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ch := bus.Chat("c")
	if err := b.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	first, err := b.Append(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	rec.WaitOn(t, ch, 1)
	// Append to the stream without publishing, as a lost PUBLISH would leave it.
	lost, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "lost:{chat:c}:h", Values: []any{"e", "message_edited", "d", `{"lost":true}`}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	next, err := b.Append(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	rec.WaitOn(t, ch, 3)
	rec.Sync(t, b, ch)
	got := rec.On(ch)
	checkDeliveries(t, got, []string{first.EventID, lost, next.EventID})
	if got[1].Event != "message_edited" || string(got[1].Data) != `{"lost":true}` {
		t.Fatalf("repaired delivery %+v", got[1])
	}
}

// TestRedisInterest: only subscribed nodes receive a chat's traffic, and
// Unsubscribe really leaves the Redis channel.
func TestRedisInterest(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	rdb := s.Client()
	ctx := context.Background()
	a := newRedisBroker(t, s, bus.RedisConfig{Prefix: "int"})
	other := newRedisBroker(t, s, bus.RedisConfig{Prefix: "int"})
	recA, recOther := &bustest.Recorder{}, &bustest.Recorder{}
	if err := a.Start(recA.Handle); err != nil {
		t.Fatal(err)
	}
	if err := other.Start(recOther.Handle); err != nil {
		t.Fatal(err)
	}
	ch := bus.Chat("c")
	numsub := func() int64 {
		return rdb.PubSubNumSub(ctx, "int:{chat:c}").Val()["int:{chat:c}"]
	}
	if err := a.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if err := other.Subscribe(ctx, bus.Chat("elsewhere")); err != nil {
		t.Fatal(err)
	}
	if n := numsub(); n != 1 {
		t.Fatalf("NUMSUB after Subscribe = %d, want 1", n)
	}
	res, err := other.Append(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	checkDeliveries(t, recA.WaitOn(t, ch, 1), []string{res.EventID})
	recOther.Sync(t, other, bus.Chat("elsewhere"))
	if got := recOther.All(); len(got) != 1 {
		t.Fatalf("the node without interest got %+v", got)
	}
	if err := a.Unsubscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for numsub() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("NUMSUB after Unsubscribe = %d, want 0", numsub())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRedisDown: with Redis gone every operation fails fast with ErrUnavailable.
func TestRedisDown(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: 1, DialerRetries: 2})
	defer c.Close()
	b, err := bus.NewRedis(c, bus.RedisConfig{Prefix: redistest.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Start(func(bus.Delivery) {}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Subscribe(ctx, bus.Chat("up")); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"append", func() error {
			_, err := b.Append(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(`{}`)})
			return err
		}},
		{"edit", func() error {
			_, err := b.Append(ctx, "c", bus.Op{Kind: bus.OpEdit, UserID: "u", MessageID: "1-0", Event: "message_edited"})
			return err
		}},
		{"publish", func() error { return b.Publish(ctx, bus.User("u"), "e", json.RawMessage(`{}`)) }},
		{"since", func() error { _, _, err := b.Since(ctx, "c", "1-0", 10); return err }},
		{"subscribe", func() error { return b.Subscribe(ctx, bus.Chat("down")) }},
	} {
		start := time.Now()
		err := tc.do()
		if !errors.Is(err, bus.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", tc.name, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s took %v with Redis down", tc.name, d)
		}
	}
	// Unsubscribe drops the interest locally even with Redis down.
	if err := b.Unsubscribe(ctx, bus.Chat("up")); err != nil {
		t.Errorf("Unsubscribe with Redis down: %v", err)
	}
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with Redis down", d)
	}
}

// TestRedisMessageTTL: a message older than HistoryTTL can no longer be edited.
func TestRedisMessageTTL(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	b := newRedisBroker(t, s, bus.RedisConfig{HistoryTTL: 200 * time.Millisecond})
	ctx := context.Background()
	res, err := b.Append(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	edit := bus.Op{Kind: bus.OpEdit, UserID: "u", MessageID: res.MessageID, Event: "message_edited"}
	if _, err := b.Append(ctx, "c", edit); err != nil {
		t.Fatalf("edit within TTL: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := b.Append(ctx, "c", edit)
		if errors.Is(err, bus.ErrNotFound) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("edit after TTL: %v, want ErrNotFound", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisCloseStopsGoroutines: Close leaves no goroutine of the broker behind.
func TestRedisCloseStopsGoroutines(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	before := runtime.NumGoroutine()
	b, err := bus.NewRedis(c, bus.RedisConfig{Prefix: redistest.Prefix(t), PubSubShards: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(func(bus.Delivery) {}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if err := b.Subscribe(ctx, bus.Chat(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func BenchmarkRedisAppend(b *testing.B) {
	s := redistest.Start(b, redistest.Options{})
	bustest.BenchmarkAppend(b, newRedisBroker(b, s, bus.RedisConfig{}))
}

// TestRedisRejectionsAreNotUnavailable: a reply that rejects the call (here
// WRONGTYPE, inside the append script and outside it) is an error, but not
// ErrUnavailable, which tells clients to retry what would keep failing.
func TestRedisRejectionsAreNotUnavailable(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	prefix := redistest.Prefix(t)
	b := newRedisBroker(t, s, bus.RedisConfig{Prefix: prefix})
	if err := b.Start(func(bus.Delivery) {}); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c := s.Client()
	if err := c.Set(ctx, prefix+":{chat:c}:h", "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"append (script)", func() error {
			_, err := b.Append(ctx, "c", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(`{}`)})
			return err
		}},
		{"since", func() error { _, _, err := b.Since(ctx, "c", "1-0", 10); return err }},
		{"since (malformed id)", func() error { _, _, err := b.Since(ctx, "c", "", 10); return err }},
		{"subscribe", func() error { return b.Subscribe(ctx, bus.Chat("c")) }},
	} {
		err := tc.do()
		if err == nil || errors.Is(err, bus.ErrUnavailable) {
			t.Errorf("%s on a key of the wrong type: %v, want an error that is not ErrUnavailable", tc.name, err)
		}
	}
}
