// Package rtmstatus holds the RTM bridge's figures as a node reports them
// (/api/stats, /metrics, the stats line): package rtm fills them, package
// node serves them. It is a leaf of its own so both share one definition
// while node keeps not depending on the bridge (it sees it through the
// node.RTM interface).
//
//	st, err := bridge.Stats(ctx) // rtmstatus.Stats
//	page, next, err := bridge.Profiles(ctx, "", 100) // []rtmstatus.Profile
package rtmstatus

// Stats are the bridge's figures as seen from one node.
type Stats struct {
	Leader         string         `json:"leader"`     // node id holding the lease, "" if none
	Term           int64          `json:"term"`       // fencing number of the current term
	IsLeader       bool           `json:"isLeader"`   // this node leads
	Profiles       map[string]int `json:"profiles"`   // count by state: connected, reconnecting, session_expired
	Reconnects     uint64         `json:"reconnects"` // upstream reconnects (this node, as leader)
	EventsIn       uint64         `json:"eventsIn"`   // upstream frames received (this node, as leader)
	EventsOut      uint64         `json:"eventsOut"`  // mapped events published to users (this node, as leader)
	DuplicatesDrop uint64         `json:"duplicatesDropped"`
	StaleTermsDrop uint64         `json:"staleTermsDropped"` // deliveries dropped here for an older term
}

// Profile is one profile as /api/stats lists it. Times are ISO 8601 UTC
// with milliseconds.
type Profile struct {
	ProfileID   string `json:"profileId"`
	State       string `json:"state"`
	Since       string `json:"since"`                 // when it entered the state
	LastEventAt string `json:"lastEventAt,omitempty"` // last upstream frame; empty before the first
	Reconnects  uint64 `json:"reconnects"`            // upstream reconnect attempts
}
