package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/flaglist"
	"github.com/anchat/realtime/internal/redismetrics"
	"github.com/anchat/realtime/internal/redisscript"
	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/membership"
	"github.com/anchat/realtime/node"
	"github.com/anchat/realtime/presence"
	"github.com/anchat/realtime/registry"
)

// envRedisPassword is the password of the Sentinel-managed master or of the
// Redis Cluster nodes (a secret, so environment only). With --redis-url the
// password belongs in the URL.
const envRedisPassword = "REALTIME_REDIS_PASSWORD"

// engines are the cluster-wide engines of one node and how to release them.
// This command built them and is their only owner: close runs once, after
// the node and the RTM bridge stopped (node.Run never closes engines).
type engines struct {
	node.Engines
	Lease  lease.Lease           // the RTM bridge's leader lease (the node does not use it)
	kind   string                // "memory" or "redis"
	target string                // where Redis is, without credentials (for the log)
	redis  redis.UniversalClient // the Redis engines' client (nil on memory); closed by close
	close  func()
}

// buildEngines returns the memory engines, or the Redis ones when a Redis
// URL, Sentinel or Redis Cluster is configured, their commands measured by
// rm. close releases them after the node stopped.
func buildEngines(o *serveOptions, nodeID string, log zerolog.Logger, getenv getenvFunc, rm *redismetrics.Metrics) (*engines, error) {
	if o.RedisURL != "" || o.RedisSentinelMaster != "" || o.RedisClusterAddrs != "" {
		return redisEngines(o, nodeID, log, getenv, rm)
	}
	return memoryEngines(o), nil
}

// memoryEngines are the embedded single-node engines.
func memoryEngines(o *serveOptions) *engines {
	b := bus.NewMemory(bus.MemoryConfig{HistorySize: o.HistorySize, HistoryTTL: o.HistoryTTL})
	p := presence.NewMemory()
	return &engines{
		Engines: node.Engines{
			Bus:        b,
			Presence:   p,
			Membership: membership.NewMemory(),
			Limiter:    limits.NewMemory(nil),
		},
		Lease: lease.NewMemory(nil),
		kind:  "memory",
		close: func() {
			_ = b.Close()
			_ = p.Close()
		},
	}
}

// redisClient builds the go-redis client: from --redis-url, a cluster client
// for --redis-cluster-addrs, or a failover client for --redis-sentinel-master
// / --redis-sentinel-addrs.
func redisClient(o *serveOptions, getenv getenvFunc) (redis.UniversalClient, string, error) {
	var tlsConfig *tls.Config
	if o.RedisTLS {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12} // as go-redis's ParseURL does for rediss://
	}
	if o.RedisClusterAddrs != "" {
		addrs := flaglist.Split(o.RedisClusterAddrs)
		if len(addrs) == 0 {
			return nil, "", errors.New("--redis-cluster-addrs: no address")
		}
		password, _ := getenv(envRedisPassword)
		co := &redis.ClusterOptions{
			Addrs:     addrs,
			Password:  password,
			TLSConfig: tlsConfig,
			// The slot map is reloaded lazily at most this often (and at
			// once on MOVED): a sharded pub/sub connection that lost its
			// master finds the promoted replica within about a second.
			ClusterStateReloadInterval: time.Second,
			// No redirects: go-redis's cluster loop, besides following MOVED
			// and ASK, re-sends a command after a lost reply (EOF, timeout)
			// to the same or another node, which for an append that did run
			// stores the message twice. So a command that meets a moved slot
			// answers UNAVAILABLE once (go-redis then reloads the slot map),
			// and during a live slot migration (ASK) the chats in that slot
			// answer UNAVAILABLE until it completes.
			MaxRedirects: -1,
		}
		failFast(&co.DialTimeout, &co.ReadTimeout, &co.WriteTimeout, &co.PoolTimeout, &co.MaxRetries, &co.DialerRetries)
		return redis.NewClusterClient(co), "cluster " + o.RedisClusterAddrs, nil
	}
	if o.RedisURL != "" {
		opts, err := redis.ParseURL(o.RedisURL)
		if err != nil {
			return nil, "", fmt.Errorf("--redis-url: %v", err)
		}
		failFast(&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.MaxRetries, &opts.DialerRetries)
		return redis.NewClient(opts), opts.Addr, nil
	}
	addrs := flaglist.Split(o.RedisSentinelAddrs)
	if len(addrs) == 0 {
		return nil, "", errors.New("--redis-sentinel-addrs: no address")
	}
	password, _ := getenv(envRedisPassword)
	fo := &redis.FailoverOptions{
		MasterName:    o.RedisSentinelMaster,
		SentinelAddrs: addrs,
		Password:      password,
		TLSConfig:     tlsConfig,
	}
	failFast(&fo.DialTimeout, &fo.ReadTimeout, &fo.WriteTimeout, &fo.PoolTimeout, &fo.MaxRetries, &fo.DialerRetries)
	c := redis.NewFailoverClient(fo)
	return c, "sentinel " + o.RedisSentinelMaster + "@" + o.RedisSentinelAddrs, nil
}

// failFast bounds every Redis call so that, with Redis unreachable, an action
// answers UNAVAILABLE within about a second instead of waiting out go-redis's
// defaults (5 s dial timeout, several dial and command retries), and never
// retries a command. Values the URL set explicitly are kept.
func failFast(dial, read, write, pool *time.Duration, retries, dialRetries *int) {
	for _, d := range []*time.Duration{dial, read, write, pool} {
		if *d == 0 {
			*d = time.Second
		}
	}
	if *retries == 0 {
		// No command retries: a retried append whose first reply was lost
		// would store the message twice. The client retries on UNAVAILABLE.
		*retries = -1
	}
	if *dialRetries == 0 {
		*dialRetries = 1
	}
}

// redisEngines are the cluster engines, all on one client and one key
// prefix; rm times every command of that client.
func redisEngines(o *serveOptions, nodeID string, log zerolog.Logger, getenv getenvFunc, rm *redismetrics.Metrics) (*engines, error) {
	client, target, err := redisClient(o, getenv)
	if err != nil {
		return nil, err
	}
	client.AddHook(rm)
	fail := func(err error) (*engines, error) {
		_ = client.Close()
		return nil, fmt.Errorf("%v (check --redis-prefix)", err)
	}
	b, err := bus.NewRedis(client, bus.RedisConfig{
		Prefix:      o.RedisPrefix,
		HistorySize: o.HistorySize,
		HistoryTTL:  o.HistoryTTL,
		Partitions:  o.RedisPartitions,
		Logger:      log.With().Str("component", "bus").Logger(),
	})
	if err != nil {
		return fail(err)
	}
	p, err := presence.NewRedis(client, presence.RedisConfig{Prefix: o.RedisPrefix, NodeID: nodeID, StatsMaxAge: presence.DefaultStatsMaxAge})
	if err != nil {
		return fail(err)
	}
	m, err := membership.NewRedis(client, membership.RedisConfig{Prefix: o.RedisPrefix})
	if err != nil {
		return fail(err)
	}
	l, err := limits.NewRedis(client, limits.RedisConfig{Prefix: o.RedisPrefix})
	if err != nil {
		return fail(err)
	}
	ls, err := lease.NewRedis(client, lease.RedisConfig{Prefix: o.RedisPrefix})
	if err != nil {
		return fail(err)
	}
	reg, err := registry.NewRedis(client, o.RedisPrefix)
	if err != nil {
		return fail(err)
	}
	var appendLimited func(context.Context, string, bus.Op, string, limits.Limit) (bus.Result, bool, time.Duration, error)
	var publishLimited func(context.Context, bus.Channel, string, json.RawMessage, string, limits.Limit) (bool, time.Duration, error)
	if _, cluster := client.(*redis.ClusterClient); !cluster {
		// One script per chat write (send, edit, delete, reaction) and per
		// typing event: the rolling-window limit is checked and counted
		// inside the append (or publish) script, on the limiter's own key. Not on a Redis Cluster,
		// where the user's limit key and the chat's keys are in different
		// slots: there the limit is a script of its own, before the append
		// or publish (two round trips).
		appendLimited = func(ctx context.Context, chatID string, op bus.Op, key string, lim limits.Limit) (bus.Result, bool, time.Duration, error) {
			chk, err := l.Check(key, lim)
			if err != nil {
				return bus.Result{}, false, 0, err
			}
			res, retry, err := b.AppendLimited(ctx, chatID, op, chk)
			if errors.Is(err, bus.ErrLimited) {
				return bus.Result{}, false, retry, nil
			}
			return res, err == nil, 0, err
		}
		publishLimited = func(ctx context.Context, ch bus.Channel, event string, data json.RawMessage, key string, lim limits.Limit) (bool, time.Duration, error) {
			chk, err := l.Check(key, lim)
			if err != nil {
				return false, 0, err
			}
			retry, err := b.PublishLimited(ctx, ch, event, data, chk)
			if errors.Is(err, bus.ErrLimited) {
				return false, retry, nil
			}
			return err == nil, 0, err
		}
	}
	// Load every script now, so that no EVALSHA meets NOSCRIPT (a second
	// round trip and a compile) on a fresh Redis. Not fatal: Redis may be
	// down at start, and the scripts load themselves on first use anyway.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	if err := redisscript.LoadAll(ctx, client); err != nil {
		log.Warn().Err(err).Msg("could not preload the Redis scripts; they load on first use")
	}
	cancel()
	return &engines{
		Engines: node.Engines{
			Bus:            b,
			Presence:       p,
			Membership:     m,
			Limiter:        l,
			AppendLimited:  appendLimited,
			PublishLimited: publishLimited,
			Registry:       reg,
			Ping: func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				return client.Ping(ctx).Err()
			},
		},
		Lease:  ls,
		kind:   "redis",
		target: target,
		redis:  client,
		close: func() {
			_ = b.Close()
			_ = p.Close() // removes this node's presence entries
			_ = client.Close()
		},
	}, nil
}
