package main

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/anchat/realtime/node"
	"github.com/anchat/realtime/rtm"
)

// rtmAdapter makes an rtm.Bridge a node.RTM: only Statuses converts (the
// bridge's states are typed); Stats and Profiles share their types
// (package rtm/rtmstatus). The embedded bridge keeps providing Accept,
// PutProfile, DeleteProfile, Stats, Profiles and Collectors (the node
// registers the latter on its /metrics registry).
type rtmAdapter struct{ *rtm.Bridge }

var _ node.RTM = rtmAdapter{}

// Statuses converts the bridge's states.
func (a rtmAdapter) Statuses(ctx context.Context, profileIDs []string) (map[string]string, error) {
	st, err := a.Bridge.Statuses(ctx, profileIDs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(st))
	for id, s := range st {
		out[id] = string(s)
	}
	return out, nil
}

// newRTMBridge builds the RTM bridge on the node's engines: its sessions,
// states and seen event ids live in Redis (shared by every node, so a new
// leader finds them) on the Redis engines, in memory otherwise.
func newRTMBridge(o *serveOptions, eng *engines, log zerolog.Logger) (*rtm.Bridge, error) {
	var store rtm.Store = rtm.NewMemoryStore(nil)
	if eng.redis != nil {
		rs, err := rtm.NewRedisStore(eng.redis, rtm.RedisStoreConfig{Prefix: o.RedisPrefix})
		if err != nil {
			return nil, err
		}
		store = rs
	}
	return rtm.New(rtm.Config{
		NodeID:   o.NodeID,
		URL:      o.RTMURL,
		Lease:    eng.Lease,
		LeaseTTL: o.RTMLeaseTTL,
		Bus:      eng.Bus,
		Store:    store,
		Logger:   log, // rtm.New adds component=rtm
	})
}
