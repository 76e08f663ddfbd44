package clustersuite

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/bus/bustest"
	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/lease/leasetest"
	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/limits/limitstest"
	"github.com/anchat/realtime/membership"
	"github.com/anchat/realtime/membership/membershiptest"
	"github.com/anchat/realtime/presence"
	"github.com/anchat/realtime/presence/presencetest"
)

// newBroker returns an unstarted broker on c, closed with t.
func newBroker(t testing.TB, c redis.UniversalClient, cfg bus.RedisConfig) *bus.Redis {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = redistest.Prefix(t)
	}
	b := must.Get[*bus.Redis](t)(bus.NewRedis(c, cfg))
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// TestContracts runs every engine's contract suite on one 3+3 cluster.
func TestContracts(t *testing.T) {
	cl := redistest.StartRealCluster(t, redistest.ClusterOptions{})
	c := cl.Client()
	t.Run("bus", func(t *testing.T) {
		bustest.Run(t, func(t *testing.T, historySize int) bus.Broker {
			return newBroker(t, c, bus.RedisConfig{HistorySize: historySize})
		})
	})
	t.Run("presence", func(t *testing.T) {
		presencetest.Run(t, func(t *testing.T) presence.Presence {
			return must.Get[*presence.Redis](t)(presence.NewRedis(c, presence.RedisConfig{Prefix: redistest.Prefix(t), NodeID: "node-1"}))
		})
	})
	t.Run("membership", func(t *testing.T) {
		membershiptest.Run(t, func(t *testing.T) membership.Store {
			return must.Get[*membership.Redis](t)(membership.NewRedis(c, membership.RedisConfig{Prefix: redistest.Prefix(t)}))
		})
	})
	t.Run("limits", func(t *testing.T) {
		limitstest.Run(t, func(t *testing.T, now limits.Clock) limits.Limiter {
			return must.Get[*limits.Redis](t)(limits.NewRedis(c, limits.RedisConfig{Prefix: redistest.Prefix(t), Now: now}))
		}, limitstest.Options{GCRAServerClock: true})
	})
	t.Run("lease", func(t *testing.T) {
		leasetest.Run(t, func(t *testing.T, _ func() time.Time) lease.Lease {
			return must.Get[*lease.Redis](t)(lease.NewRedis(c, lease.RedisConfig{Prefix: redistest.Prefix(t)}))
		}, leasetest.Options{ServerClock: true})
	})
	t.Run("ShardedSubscriptionsOnlyWhereMembers", func(t *testing.T) {
		testShardNumSub(t, cl)
	})
}

// testShardNumSub: two nodes, each subscribed to its own chats; on the
// master owning each chat's channel PUBSUB SHARDNUMSUB counts exactly the
// nodes subscribed to it, and an event reaches only them.
func testShardNumSub(t *testing.T, cl *redistest.Cluster) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	prefix := redistest.Prefix(t)
	a := newBroker(t, cl.Client(), bus.RedisConfig{Prefix: prefix})
	b := newBroker(t, cl.Client(), bus.RedisConfig{Prefix: prefix})
	var ra, rb bustest.Recorder
	if err := a.Start(ra.Handle); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(rb.Handle); err != nil {
		t.Fatal(err)
	}
	// Chats on every master: a has the even ones, b the odd ones, both "both".
	masters := map[string]bool{}
	var chats []string
	for i := 0; len(masters) < 3 || len(chats) < 6; i++ {
		id := fmt.Sprintf("%s-%d", bustest.ChatID(t), i)
		m := must.Get[*redistest.Server](t)(cl.MasterOf(ctx, a.ChannelName(bus.Chat(id))))
		masters[m.Addr()] = true
		chats = append(chats, id)
		if i > 100 {
			t.Fatal("chats do not spread over the masters")
		}
	}
	for i, id := range chats {
		sub := a
		if i%2 == 1 {
			sub = b
		}
		if err := sub.Subscribe(ctx, bus.Chat(id)); err != nil {
			t.Fatal(err)
		}
	}
	both := chats[0]
	if err := b.Subscribe(ctx, bus.Chat(both)); err != nil {
		t.Fatal(err)
	}
	numsub := func(id string) int64 {
		t.Helper()
		name := a.ChannelName(bus.Chat(id))
		m := must.Get[*redistest.Server](t)(cl.MasterOf(ctx, name))
		v := must.Get[map[string]int64](t)(m.Client().PubSubShardNumSub(ctx, name).Result())
		return v[name]
	}
	for i, id := range chats {
		want := int64(1)
		if id == both {
			want = 2
		}
		if got := numsub(id); got != want {
			t.Errorf("chat %d: SHARDNUMSUB on its master = %d, want %d", i, got, want)
		}
	}
	unknown := bustest.ChatID(t) + "-none"
	if got := numsub(unknown); got != 0 {
		t.Errorf("chat without members: SHARDNUMSUB = %d", got)
	}
	// Every chat's event reaches exactly its subscribers.
	for _, id := range chats {
		if _, err := a.Append(ctx, id, bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range chats {
		ch := bus.Chat(id)
		if i%2 == 0 {
			ra.WaitOn(t, ch, 1)
		}
		if i%2 == 1 || id == both {
			rb.WaitOn(t, ch, 1)
		}
	}
	ra.Sync(t, a, bus.Chat(chats[2]))
	rb.Sync(t, b, bus.Chat(chats[1]))
	for i, id := range chats {
		ch := bus.Chat(id)
		if i%2 == 1 && len(ra.On(ch)) != 0 {
			t.Errorf("node a got chat %d's event without subscribing", i)
		}
		if i%2 == 0 && id != both && len(rb.On(ch)) != 0 {
			t.Errorf("node b got chat %d's event without subscribing", i)
		}
	}
	// Unsubscribing drops the shard subscription.
	if err := b.Unsubscribe(ctx, bus.Chat(both)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for numsub(both) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after unsubscribe: SHARDNUMSUB = %d, want 1", numsub(both))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
