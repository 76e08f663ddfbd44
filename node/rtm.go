package node

import (
	"context"
	"encoding/json"

	"github.com/anchat/realtime/bus"
)

// RTM is what the node needs from the RTM bridge (package rtm): the server
// API's profile routes, the figures for /api/stats, /metrics and the stats
// line, and the filter applied to profile-channel deliveries. Nil disables
// the RTM routes (they answer 503 RTM_DISABLED).
type RTM interface {
	// PutProfile stores or replaces a profile's upstream session (kept in the
	// engine so any future leader finds it).
	PutProfile(ctx context.Context, profileID string, session json.RawMessage) error
	// DeleteProfile forgets the profile; the leader drops its connection.
	DeleteProfile(ctx context.Context, profileID string) error
	// Stats reports the bridge's figures as seen from this node.
	Stats(ctx context.Context) (RTMStats, error)
	// Accept filters and unwraps one profile-channel delivery: it drops
	// events of an older leader term and returns the client event and its
	// payload.
	Accept(d bus.Delivery) (event string, data json.RawMessage, ok bool)
}

// RTMStats are the bridge figures.
type RTMStats struct {
	Leader         string         `json:"leader"`     // node id holding the lease, "" if none
	Term           int64          `json:"term"`       // fencing number of the current term
	IsLeader       bool           `json:"isLeader"`   // this node leads
	Profiles       map[string]int `json:"profiles"`   // count by state: connected, reconnecting, session_expired
	Reconnects     uint64         `json:"reconnects"` // upstream reconnects (this node, as leader)
	EventsIn       uint64         `json:"eventsIn"`   // upstream events received (this node, as leader)
	EventsOut      uint64         `json:"eventsOut"`  // events published to users (this node, as leader)
	DuplicatesDrop uint64         `json:"duplicatesDropped"`
	StaleTermsDrop uint64         `json:"staleTermsDropped"` // deliveries dropped here for an older term
}
