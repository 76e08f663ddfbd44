package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/nodetest"
	"github.com/anchat/realtime/internal/redistest"
)

// clusterArgs are a node's flags on cl.
func clusterArgs(cl *redistest.Cluster, prefix string, extra ...string) []string {
	return append([]string{"--redis-cluster-addrs", strings.Join(cl.Addrs(), ","), "--redis-prefix", prefix}, extra...)
}

// TestThreeNodesOnRedisCluster: the three-node scenario of
// TestThreeNodesEveryEvent (messages, edits, deletes, typing, reactions,
// the cluster-wide connection cap and rate budget, recovery on another node)
// with the engines on a Redis Cluster of three masters and three replicas.
func TestThreeNodesOnRedisCluster(t *testing.T) {
	nodetest.Require(t)
	cl := redistest.StartRealCluster(t, redistest.ClusterOptions{})
	runCluster3(t, clusterArgs(cl, redistest.Prefix(t), cluster3Flags...))
}

// TestRedisClusterFailoverMidTraffic: three nodes on a 3+3 Redis Cluster,
// members of chat "out" spread over them, a sender sending with acks every
// 20 ms (js/outage.mjs). The test SIGKILLs the master owning the chat's slot;
// its replica is promoted. No node exits, no client connection drops, every
// send is answered within 2 s (ok or UNAVAILABLE), every message acked ok
// reaches every member exactly once, in eventId order, and /readyz answers
// 200 on every node afterwards.
func TestRedisClusterFailoverMidTraffic(t *testing.T) {
	nodetest.Require(t)
	const after = 3 * time.Second
	cl := redistest.StartRealCluster(t, redistest.ClusterOptions{})
	prefix := redistest.Prefix(t)
	args := clusterArgs(cl, prefix, "--dev", "--limit-messages", "100000", "--limit-connects", "100000")
	// The chat's channel, as the nodes name it (NewRedis does no I/O).
	naming, err := bus.NewRedis(cl.Client(), bus.RedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	victim, err := cl.MasterOf(ctx, naming.ChannelName(bus.Chat("out")))
	if err != nil {
		t.Fatal(err)
	}

	var killedAt, okAt time.Time
	nodes, sum := runOutage(t, args, "during the failover", func([]*Node) {
		victim.Kill()
		killedAt = time.Now()
		if err := cl.WaitOK(ctx); err != nil {
			t.Fatalf("%v\n%s", err, cl.Describe())
		}
		okAt = time.Now()
		t.Logf("replica promoted, cluster ok %v after the SIGKILL", okAt.Sub(killedAt).Round(time.Millisecond))
		time.Sleep(after) // the sender goes on after the failover
	})
	for i, n := range nodes {
		if s := readyzStatus(n.AdminURL); s != http.StatusOK {
			t.Errorf("node %d: /readyz %d after the failover, want 200", i+1, s)
		}
		logs := n.Logs()
		t.Logf("node %d logged: %d pub/sub resubscriptions, %d sharded resubscriptions by probe, %d \"gap repaired\" (%s)",
			i+1, strings.Count(logs, `"pub/sub resubscribed after reconnect; repairing chat gaps from history"`),
			strings.Count(logs, `lost its subscriptions`), strings.Count(logs, `"gap repaired"`), repairedEvents(logs))
	}
	var slowest int64
	unavailable, afterKill := 0, 0
	var lastFailed int64
	for _, a := range sum.Acked {
		slowest = max(slowest, a.At-a.T)
		if a.T >= killedAt.UnixMilli() {
			afterKill++
		}
	}
	for _, f := range sum.Failed {
		slowest = max(slowest, f.At-f.T)
		if f.Code != "UNAVAILABLE" {
			t.Errorf("send %s: %s %s, want ok or UNAVAILABLE", f.TempID, f.Error, f.Res)
		}
		unavailable++
		lastFailed = max(lastFailed, f.T)
	}
	// The nodes reload the slot map at least every second.
	if lastFailed > okAt.Add(1500*time.Millisecond).UnixMilli() {
		t.Errorf("a send failed %d ms after the cluster was ok again, want none after 1.5 s", lastFailed-okAt.UnixMilli())
	}
	t.Logf("sends: %d acked (%d sent after the kill), %d UNAVAILABLE (the last %d ms after the kill), slowest answer %d ms",
		len(sum.Acked), afterKill, unavailable, lastFailed-killedAt.UnixMilli(), slowest)
	if slowest > 2000 {
		t.Errorf("slowest send answered after %d ms, want within 2 s", slowest)
	}
	if afterKill < 20 {
		t.Errorf("only %d sends acked after the kill: the sender did not go on", afterKill)
	}
	checkOutageDelivery(t, sum, killedAt.UnixMilli())
}
