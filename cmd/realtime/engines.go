package main

import (
	"errors"
	"io"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/membership"
	"github.com/anchat/realtime/node"
	"github.com/anchat/realtime/presence"
)

// errRedisNotYet: the Redis engines are not wired into this build yet.
var errRedisNotYet = errors.New("the Redis engines are not yet supported by this build (run without --redis-url / --redis-sentinel-* for the embedded memory engines)")

// buildEngines returns the memory engines, or the Redis ones when a Redis
// URL or Sentinel is configured, and a function that closes them after the
// node has stopped.
func buildEngines(o *serveOptions, nodeID string) (node.Engines, func(), error) {
	if o.RedisURL != "" || o.RedisSentinelMaster != "" {
		// TODO(redis): wire bus.NewRedis, presence.NewRedis, membership.NewRedis,
		// limits.NewRedis and lease.NewRedis on one go-redis client (URL or
		// Sentinel failover client, key prefix o.RedisPrefix), with Engines.Ping
		// a PING on that client for /readyz.
		return node.Engines{}, nil, errRedisNotYet
	}
	return memoryEngines(o, nodeID)
}

// memoryEngines are the embedded single-node engines.
func memoryEngines(o *serveOptions, nodeID string) (node.Engines, func(), error) {
	b := bus.NewMemory(bus.MemoryConfig{HistorySize: o.HistorySize, HistoryTTL: o.HistoryTTL})
	p := presence.NewMemory()
	e := node.Engines{
		Bus:        b,
		Presence:   p,
		Membership: membership.NewMemory(),
		Limiter:    limits.NewMemory(nil),
		Lease:      lease.NewMemory(nil),
	}
	closeAll := func() {
		for _, c := range []io.Closer{b, p} {
			_ = c.Close()
		}
	}
	return e, closeAll, nil
}
