package presence_test

import (
	"testing"

	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/presence"
	"github.com/anchat/realtime/presence/presencetest"
)

func TestRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	presencetest.Run(t, func(t *testing.T) presence.Presence {
		return newRedis(t, c, presence.RedisConfig{Prefix: redistest.Prefix(t), NodeID: "node-1"})
	})
	t.Run("TwoNodesStats", func(t *testing.T) {
		ctx := ctxFor(t)
		prefix := redistest.Prefix(t)
		a := newRedis(t, c, presence.RedisConfig{Prefix: prefix, NodeID: "a"})
		b := newRedis(t, c, presence.RedisConfig{Prefix: prefix, NodeID: "b"})
		must.Get[bool](t)(a.Acquire(ctx, "alice", "a1", 2))
		must.Get[bool](t)(b.Acquire(ctx, "alice", "b1", 2))
		must.Get[bool](t)(b.Acquire(ctx, "bob", "b2", 2))
		if must.Get[bool](t)(a.Acquire(ctx, "alice", "a2", 2)) {
			t.Fatal("alice over the cap")
		}
		if err := a.SetChats(ctx, []string{"x", "y"}); err != nil {
			t.Fatal(err)
		}
		if err := b.SetChats(ctx, []string{"y", "z"}); err != nil {
			t.Fatal(err)
		}
		if st := must.Get[presence.Stats](t)(a.Stats(ctx)); st != (presence.Stats{Nodes: 2, Connections: 3, Users: 2, Chats: 3}) {
			t.Fatalf("Stats = %+v", st)
		}
		for _, p := range []*presence.Redis{a, b} {
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
