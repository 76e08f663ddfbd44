// Package redisscript registers the engines' Lua scripts so that a node can
// load every one of them into Redis when it starts.
//
// go-redis runs a script with EVALSHA and, when Redis answers NOSCRIPT, sends
// the whole script again with EVAL. Redis caches a script only once it has
// seen it, so on a fresh Redis (and after a restart, a SCRIPT FLUSH or a
// failover to a replica that never ran it) the first call of every script
// fails and costs a second round trip and a compile, several times over when
// calls race. Those are the failed EVALSHA calls of INFO commandstats.
// [LoadAll] at start-up (SCRIPT LOAD; on a Redis Cluster client, on every
// node, replicas included) removes them.
package redisscript

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

var (
	mu      sync.Mutex // guards scripts
	scripts []*redis.Script
)

// New returns redis.NewScript(src) and registers it for [LoadAll].
func New(src string) *redis.Script {
	s := redis.NewScript(src)
	mu.Lock()
	scripts = append(scripts, s)
	mu.Unlock()
	return s
}

// FromFS is New of the script file name in fsys (a package's embedded lua
// directory). It panics if the file cannot be read: the files are embedded,
// so that is a build mistake found by any test of the package.
func FromFS(fsys fs.FS, name string) *redis.Script {
	src, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic(fmt.Sprintf("redisscript: %v", err))
	}
	return New(string(src))
}

// LoadAll loads every registered script into c's Redis (every node of a
// cluster). Scripts still work without it: this only spares the NOSCRIPT
// round trips.
func LoadAll(ctx context.Context, c redis.Scripter) error {
	mu.Lock()
	all := append([]*redis.Script(nil), scripts...)
	mu.Unlock()
	if cc, ok := c.(*redis.ClusterClient); ok {
		return loadCluster(ctx, cc, all)
	}
	return load(ctx, c, all)
}

func load(ctx context.Context, c redis.Scripter, all []*redis.Script) error {
	for _, s := range all {
		if err := s.Load(ctx, c).Err(); err != nil {
			return fmt.Errorf("redisscript: load %s: %w", s.Hash(), err)
		}
	}
	return nil
}

// loadCluster loads on every node CLUSTER NODES lists, replicas included: a
// cluster client's own SCRIPT LOAD reaches only the masters unless it routes
// reads to replicas (and CLUSTER SLOTS omits replicas whose replication
// offset has not been gossiped yet), and a promoted replica would then meet
// NOSCRIPT.
func loadCluster(ctx context.Context, cc *redis.ClusterClient, all []*redis.Script) error {
	nodes, err := cc.ClusterNodes(ctx).Result()
	if err != nil {
		return fmt.Errorf("redisscript: cluster nodes: %w", err)
	}
	opt := cc.Options()
	for _, line := range strings.Split(nodes, "\n") {
		// <id> <ip:port@cport[,hostname]> <flags> ...
		f := strings.Fields(line)
		if len(f) < 3 || strings.Contains(f[2], "fail") || strings.Contains(f[2], "noaddr") || strings.Contains(f[2], "handshake") {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		nc := redis.NewClient(&redis.Options{
			Addr: addr, Username: opt.Username, Password: opt.Password, TLSConfig: opt.TLSConfig,
			Dialer: opt.Dialer, DialTimeout: opt.DialTimeout, ReadTimeout: opt.ReadTimeout,
			WriteTimeout: opt.WriteTimeout, MaxRetries: -1, PoolSize: 1,
		})
		err := load(ctx, nc, all)
		_ = nc.Close()
		if err != nil {
			return fmt.Errorf("%w (node %s)", err, addr)
		}
	}
	return nil
}
