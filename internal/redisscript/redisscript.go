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
//
// [Owner] names the package that registered a script, from its SHA-1 or its
// source: the Redis command metrics label EVALSHA and EVAL calls with it.
package redisscript

import (
	"context"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

var (
	mu      sync.RWMutex // guards the following
	scripts []*redis.Script
	owners  = map[string]string{} // SHA-1 and source of every script → the registering package
)

// New returns redis.NewScript(src) and registers it for [LoadAll] and
// [Owner], under the package of its caller.
func New(src string) *redis.Script { return register(src, callerPackage()) }

// NewOwned is New under an owner of the caller's choosing, for a package
// whose scripts do different kinds of work ("bus.publish").
func NewOwned(owner, src string) *redis.Script { return register(src, owner) }

func register(src, owner string) *redis.Script {
	s := redis.NewScript(src)
	mu.Lock()
	scripts = append(scripts, s)
	owners[s.Hash()] = owner
	owners[src] = owner
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
	return register(string(src), callerPackage())
}

// Owner is the last element of the import path of the package that
// registered the script whose SHA-1 (EVALSHA) or source (EVAL) is key,
// e.g. "bus" or "presence"; "" for a script not registered here. It does
// not allocate.
func Owner(key string) string {
	mu.RLock()
	defer mu.RUnlock()
	return owners[key]
}

// Owners lists the owner of every registered script, in registration order.
func Owners() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, len(scripts))
	for i, s := range scripts {
		out[i] = owners[s.Hash()]
	}
	return out
}

// callerPackage is the package name of the caller of New or FromFS ("bus" for
// github.com/anchat/realtime/bus).
func callerPackage() string {
	pc, _, _, ok := runtime.Caller(2)
	if !ok {
		return ""
	}
	name := runtime.FuncForPC(pc).Name() // github.com/anchat/realtime/bus.init or ...bus.(*T).f
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	pkg, _, _ := strings.Cut(name, ".")
	return pkg
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
