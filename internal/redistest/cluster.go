package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/redisslot"
)

// Cluster is a real Redis Cluster of redis-server processes owned by a test:
// masters with replicas, created with `redis-cli --cluster create`, torn
// down by PID with the test.
type Cluster struct {
	Nodes []*Server
	tb    testing.TB
}

// ClusterOptions shape a [Cluster].
type ClusterOptions struct {
	Masters  int // default 3
	Replicas int // per master; default 1 (set -1 for none)
	// NodeTimeout is cluster-node-timeout: how long a master may be
	// unreachable before its replica is promoted. Default 1s.
	NodeTimeout time.Duration
}

// StartRealCluster starts Masters*(1+Replicas) cluster-enabled servers on
// free ports, joins them with redis-cli (which spreads the slots evenly over
// the masters and gives each master its replicas), and waits until every
// node reports cluster_state:ok.
func StartRealCluster(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	if opts.Masters == 0 {
		opts.Masters = 3
	}
	switch {
	case opts.Replicas == 0:
		opts.Replicas = 1
	case opts.Replicas < 0:
		opts.Replicas = 0
	}
	if opts.NodeTimeout == 0 {
		opts.NodeTimeout = time.Second
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		tb.Fatalf("redistest: redis-cli not found in PATH (apt-get install redis-tools): %v", err)
	}
	c := &Cluster{tb: tb}
	n := opts.Masters * (1 + opts.Replicas)
	args := []string{"--cluster", "create"}
	for range n {
		s := Start(tb, Options{Args: []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			// The cluster bus port defaults to port+10000, which may be taken
			// (or past 65535): pick a free one too.
			"--cluster-port", strconv.Itoa(FreePort(tb)),
			// Replicas sync at once (the default waits 5 s for more replicas
			// to share the transfer): a replica that never synced does not
			// take over from a failed master.
			"--repl-diskless-sync-delay", "0",
			"--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
		}})
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.WaitOK(ctx); err != nil {
		tb.Fatalf("redistest: cluster not ready: %v\n%s", err, c.Describe())
	}
	if err := c.waitReplicas(ctx, opts.Masters*opts.Replicas); err != nil {
		tb.Fatalf("redistest: replicas not in sync: %v\n%s", err, c.Describe())
	}
	return c
}

// waitReplicas waits until n nodes are replicas with their master link up.
func (c *Cluster) waitReplicas(ctx context.Context, n int) error {
	for {
		up := 0
		for _, s := range c.Nodes {
			nc := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
			info, err := nc.Info(ctx, "replication").Result()
			_ = nc.Close()
			if err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") {
				up++
			}
		}
		if up >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%d of %d replicas in sync)", ctx.Err(), up, n)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Describe returns every running node's CLUSTER NODES and the tail of its
// log, for failure messages.
func (c *Cluster) Describe() string {
	var b strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range c.Nodes {
		if !s.Alive() {
			fmt.Fprintf(&b, "== %s: killed\n", s.Addr())
			continue
		}
		nc := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		nodes, err := nc.ClusterNodes(ctx).Result()
		_ = nc.Close()
		log := s.log()
		if i := len(log) - 1500; i > 0 {
			log = log[i:]
		}
		fmt.Fprintf(&b, "== %s: CLUSTER NODES (%v):\n%s-- log tail:\n%s\n", s.Addr(), err, nodes, log)
	}
	return b.String()
}

// Addrs lists every node's host:port.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Client returns a cluster client on every node, closed with the test. Its
// slot map is reloaded at least every second, as cmd/realtime's is.
func (c *Cluster) Client() *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                      c.Addrs(),
		ClusterStateReloadInterval: time.Second,
	})
	c.tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Alive reports whether s runs (was not killed).
func (s *Server) Alive() bool { return s.cmd != nil }

// WaitOK waits until every running node reports cluster_state:ok and sees
// the same master for slot 0 and 16383 (so a failover has settled).
func (c *Cluster) WaitOK(ctx context.Context) error {
	for {
		err := c.checkOK(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) checkOK(ctx context.Context) error {
	var owners string
	for _, s := range c.Nodes {
		if !s.Alive() {
			continue
		}
		nc := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		info, err := nc.ClusterInfo(ctx).Result()
		var got string
		if err == nil {
			var shards []redis.ClusterSlot
			shards, err = nc.ClusterSlots(ctx).Result()
			got = fmt.Sprint(ownersOf(shards))
		}
		_ = nc.Close()
		switch {
		case err != nil:
			return fmt.Errorf("%s: %w", s.Addr(), err)
		case !strings.Contains(info, "cluster_state:ok"):
			return fmt.Errorf("%s: cluster_state not ok", s.Addr())
		case owners != "" && got != owners:
			return fmt.Errorf("%s: slot owners %s, another node sees %s", s.Addr(), got, owners)
		}
		owners = got
	}
	// Every slot's master must be a running node.
	for _, addr := range strings.Fields(strings.Trim(owners, "[]")) {
		if s := c.node(addr); s == nil || !s.Alive() {
			return fmt.Errorf("slots still owned by %s (down)", addr)
		}
	}
	return nil
}

func ownersOf(shards []redis.ClusterSlot) []string {
	var out []string
	for _, sl := range shards {
		if len(sl.Nodes) > 0 {
			out = append(out, strconv.Itoa(sl.Start)+"@"+sl.Nodes[0].Addr)
		}
	}
	for i := range out { // "start@addr" -> addr for the down check; sorted by start
		out[i] = out[i][strings.IndexByte(out[i], '@')+1:]
	}
	return out
}

func (c *Cluster) node(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// MasterOf returns the running node that masters key's slot.
func (c *Cluster) MasterOf(ctx context.Context, key string) (*Server, error) {
	return c.masterOfSlot(ctx, int(redisslot.Of(key)))
}

// masterOfSlot returns the running node that masters slot, as the first
// running node that knows one says.
func (c *Cluster) masterOfSlot(ctx context.Context, slot int) (*Server, error) {
	for _, s := range c.Nodes {
		if !s.Alive() {
			continue
		}
		nc := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		shards, err := nc.ClusterSlots(ctx).Result()
		_ = nc.Close()
		if err != nil {
			continue
		}
		for _, sl := range shards {
			if slot >= sl.Start && slot <= sl.End && len(sl.Nodes) > 0 {
				if m := c.node(sl.Nodes[0].Addr); m != nil {
					return m, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("redistest: no master found for slot %d", slot)
}

// MoveSlot migrates slot, keys included, from its master to the master to,
// as `redis-cli --cluster reshard` does for one slot: IMPORTING on the
// target, MIGRATING on the source, MIGRATE of its keys, then SETSLOT NODE on
// every master.
func (c *Cluster) MoveSlot(ctx context.Context, slot int, to *Server) error {
	from, _ := c.masterOfSlot(ctx, slot)
	if from == nil || from == to {
		return fmt.Errorf("redistest: move slot %d: source %v, target %s", slot, from, to.Addr())
	}
	src := redis.NewClient(&redis.Options{Addr: from.Addr(), MaxRetries: -1})
	defer src.Close()
	dst := redis.NewClient(&redis.Options{Addr: to.Addr(), MaxRetries: -1})
	defer dst.Close()
	srcID, err := src.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return err
	}
	dstID, err := dst.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return err
	}
	if err := dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err(); err != nil {
		return fmt.Errorf("importing: %w", err)
	}
	if err := src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err(); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	host, port, _ := strings.Cut(to.Addr(), ":")
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, 100).Result()
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	for _, s := range []*redis.Client{dst, src} {
		if err := s.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err(); err != nil {
			return fmt.Errorf("setslot node: %w", err)
		}
	}
	for _, s := range c.Nodes {
		if !s.Alive() || s == from || s == to {
			continue
		}
		nc := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		_ = nc.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err() // replicas refuse: fine
		_ = nc.Close()
	}
	return nil
}
