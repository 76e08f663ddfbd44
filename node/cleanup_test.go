package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/leakcheck"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/membership"
	"github.com/anchat/realtime/presence"
)

// redisEngines are the Redis bus (with shards pub/sub connections) and
// presence on a redis-server of the test's own, with memory membership and
// limits; the client fails fast like cmd/realtime's. Everything is closed
// with the test, after the node (cleanups run last first).
func redisEngines(tb testing.TB, shards int) (Engines, *redistest.Server) {
	tb.Helper()
	srv := redistest.Start(tb, redistest.Options{})
	client := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		PoolTimeout: time.Second, MaxRetries: -1,
	})
	prefix := redistest.Prefix(tb)
	b, err := bus.NewRedis(client, bus.RedisConfig{Prefix: prefix, PubSubShards: shards})
	if err != nil {
		tb.Fatal(err)
	}
	p, err := presence.NewRedis(client, presence.RedisConfig{Prefix: prefix, NodeID: "test-node"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = b.Close()
		_ = p.Close()
		_ = client.Close()
	})
	return Engines{Bus: b, Presence: p, Membership: membership.NewMemory(), Limiter: limits.NewMemory(nil)}, srv
}

// TestKickDoesNotStallTheBusShard kicks a member, the last local one of its
// chat, again and again while other subscriptions come and go on the same
// (only) pub/sub shard. The kick is handled on the shard's reader; its
// unsubscribe used to wait there for the shard's subscribe lock, held by a
// Subscribe waiting for a confirmation only that reader could deliver: the
// Subscribe failed UNAVAILABLE after its timeout.
func TestKickDoesNotStallTheBusShard(t *testing.T) {
	leakcheck.Check(t)
	eng, _ := redisEngines(t, 1)
	n := startNode(t, func(c *Config) {
		c.Engines = eng
		c.Limits.Joins = 1 << 20
	})
	alice := connect(t, n.Addr().String(), token(t, "alice", time.Hour, nil))

	stop := make(chan struct{})
	var churnErr atomic.Value
	var churn sync.WaitGroup
	churn.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ch := bus.User(fmt.Sprintf("churn-%d", i))
			// Generous for a loaded machine; stalled, it would fail after this.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := eng.Bus.Subscribe(ctx, ch)
			if err == nil {
				err = eng.Bus.Unsubscribe(ctx, ch)
			}
			cancel()
			if err != nil {
				churnErr.Store(err)
				return
			}
		}
	})
	defer func() { close(stop); churn.Wait() }()

	kick, _ := json.Marshal(chatPayload{ChatID: "room"})
	for i := range 40 {
		alice.emit("join_chat", map[string]string{"chatId": "room"}, true)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := eng.Bus.Publish(ctx, bus.User("alice"), evKick, kick); err != nil {
			t.Fatal(err)
		}
		cancel()
		alice.waitEvent(evChatLeft, 10*time.Second)
		if err, _ := churnErr.Load().(error); err != nil {
			t.Fatalf("kick %d: a concurrent subscribe on the shard failed: %v", i, err)
		}
	}
}

// TestClosesWithRedisPausedKeepPingsFlowing pauses Redis (silently: no
// health check notices) and lets 40 connections time out. The heartbeat
// sweeper closes them; it used to release their presence entries inline,
// one engine timeout each, and meanwhile sent no ping to anyone. Now the
// closes are quick, the releases wait on the cleaner, and the connection
// that stays keeps receiving pings.
func TestClosesWithRedisPausedKeepPingsFlowing(t *testing.T) {
	leakcheck.Check(t)
	eng, redisSrv := redisEngines(t, 1)
	n := startNode(t, func(c *Config) {
		c.Engines = eng
		c.PingInterval = 100 * time.Millisecond
		// Long enough for the clients that answer on a loaded machine
		// (300 ms dropped one now and then); the silent ones still all
		// time out within about a second.
		c.PingTimeout = time.Second
		c.Limits.Connects = 1 << 20
		c.Limits.Joins = 1 << 20
	})
	t.Cleanup(redisSrv.Resume) // before the node stops and drains its cleanup
	addr := n.Addr().String()
	watcher := connect(t, addr, token(t, "watcher", time.Hour, nil))
	const closing = 40
	var closers []*testClient
	for i := range closing {
		c := connect(t, addr, token(t, fmt.Sprintf("closer-%d", i), time.Hour, nil))
		c.emit("join_chat", map[string]string{"chatId": fmt.Sprintf("chat-%d", i)}, true)
		closers = append(closers, c)
	}

	redisSrv.Pause()
	for _, c := range closers {
		c.noPong.Store(true)
	}
	pingsBefore := watcher.pings.Load()
	// Each inline release took up to 2 s: 40 closes kept the sweeper
	// (and every ping) away for over a minute.
	deadline := time.Now().Add(20 * time.Second)
	for n.srv.connCount() > 1 || watcher.pings.Load() < pingsBefore+10 {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %d connections left (want 1), the watcher got %d pings (want 10)",
				n.srv.connCount(), watcher.pings.Load()-pingsBefore)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n.srv.cleaner.pending() == 0 {
		t.Fatalf("no presence release pending with Redis paused")
	}
	select {
	case <-watcher.done:
		t.Fatalf("the watcher was disconnected: %v %v", watcher.closeCode, watcher.closeErr)
	default:
	}

	// Once Redis is back, the cleaner releases every closed connection's
	// entry: only the watcher's is left.
	redisSrv.Resume()
	deadline = time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := eng.Presence.Stats(ctx)
		cancel()
		if err == nil && st.Connections == 1 && n.srv.cleaner.pending() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis back for 20 s: presence %+v (%v), %d cleanup jobs pending; want 1 entry, none pending", st, err, n.srv.cleaner.pending())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
