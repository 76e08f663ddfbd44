package presence_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/presence"
	"github.com/anchat/realtime/presence/presencetest"
)

// startCluster runs a one-node Redis Cluster owning every slot. Slot rules
// (CROSSSLOT, keys of one script in one slot) hold as on a real cluster.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found: %v", err)
	}
	port := redistest.FreePort(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	node := redis.NewClient(&redis.Options{Addr: addr})
	defer node.Close()
	if err := redistest.WaitReady(ctx, node); err != nil {
		t.Fatal(err)
	}
	if err := node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	for {
		info, err := node.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster not ok: %v %q", err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisCluster(t *testing.T) {
	c := startCluster(t)
	presencetest.Run(t, func(t *testing.T) presence.Presence {
		return newRedis(t, c, presence.RedisConfig{Prefix: redistest.Prefix(t), NodeID: "node-1"})
	})
	t.Run("TwoNodesStats", func(t *testing.T) {
		ctx := ctxFor(t)
		prefix := redistest.Prefix(t)
		a := newRedis(t, c, presence.RedisConfig{Prefix: prefix, NodeID: "a"})
		b := newRedis(t, c, presence.RedisConfig{Prefix: prefix, NodeID: "b"})
		must[bool](t)(a.Acquire(ctx, "alice", "a1", 2))
		must[bool](t)(b.Acquire(ctx, "alice", "b1", 2))
		must[bool](t)(b.Acquire(ctx, "bob", "b2", 2))
		if must[bool](t)(a.Acquire(ctx, "alice", "a2", 2)) {
			t.Fatal("alice over the cap")
		}
		if err := a.SetChats(ctx, []string{"x", "y"}); err != nil {
			t.Fatal(err)
		}
		if err := b.SetChats(ctx, []string{"y", "z"}); err != nil {
			t.Fatal(err)
		}
		if st := must[presence.Stats](t)(a.Stats(ctx)); st != (presence.Stats{Nodes: 2, Connections: 3, Users: 2, Chats: 3}) {
			t.Fatalf("Stats = %+v", st)
		}
		for _, p := range []*presence.Redis{a, b} {
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
