package node

import (
	"sync"
	"time"
)

// Live events are the admin console's tail of what the node refused or cut:
// refused upgrades and CONNECTs, rate-limit hits, slow-consumer drops and
// disconnects for a reason other than the client leaving. They are sampled
// (at most liveEventsPerSecond of each kind per second; the rest are only
// counted) and bounded (the newest liveEventsKept), so a flood costs a
// mutex and a counter, never memory or a log line.
const (
	liveEventsKept      = 256
	liveEventsPerSecond = 20
)

// Live event kinds.
const (
	liveRefused      = "refused"       // an upgrade or CONNECT refused (Code says why)
	liveRateLimited  = "rate_limited"  // a client event or connection attempt over its limit
	liveSlowConsumer = "slow_consumer" // a connection closed because its queue filled
	liveDisconnect   = "disconnect"    // a connection closed by the node (Code is the reason)
)

// liveEvent is one entry of GET /api/node/events.
type liveEvent struct {
	Seq    uint64 `json:"seq"`
	At     string `json:"at"`
	Kind   string `json:"kind"`
	Code   string `json:"code,omitempty"`
	User   string `json:"userId,omitempty"`
	Conn   string `json:"connId,omitempty"`
	Remote string `json:"remote,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// liveEvents is the sampled, bounded ring of recent live events.
type liveEvents struct {
	now func() time.Time

	mu         sync.Mutex // guards the following
	ring       [liveEventsKept]liveEvent
	seq        uint64            // seq of the newest event (0: none yet)
	second     int64             // the unix second the counts below are for
	inSecond   map[string]int    // events kept per kind in that second
	sampledOut map[string]uint64 // events of each kind not kept, ever
}

func newLiveEvents(now func() time.Time) *liveEvents {
	return &liveEvents{now: now, inSecond: make(map[string]int), sampledOut: make(map[string]uint64)}
}

// record keeps e (its Seq and At are set here) unless its kind already
// had liveEventsPerSecond this second.
func (l *liveEvents) record(e liveEvent) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := now.Unix(); s != l.second {
		l.second = s
		clear(l.inSecond)
	}
	if l.inSecond[e.Kind] >= liveEventsPerSecond {
		l.sampledOut[e.Kind]++
		return
	}
	l.inSecond[e.Kind]++
	l.seq++
	e.Seq, e.At = l.seq, timestamp(now)
	e.Detail = truncate(e.Detail, 200)
	l.ring[l.seq%liveEventsKept] = e
}

// since returns the kept events after seq after, oldest first, the newest
// seq, and the counts of events sampled out by kind.
func (l *liveEvents) since(after uint64) (events []liveEvent, newest uint64, sampledOut map[string]uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if after > l.seq { // the caller saw another process's events
		after = 0
	}
	first := after + 1
	if l.seq >= liveEventsKept && first <= l.seq-liveEventsKept {
		first = l.seq - liveEventsKept + 1
	}
	events = []liveEvent{}
	for s := first; s <= l.seq; s++ {
		events = append(events, l.ring[s%liveEventsKept])
	}
	sampledOut = make(map[string]uint64, len(l.sampledOut))
	for k, v := range l.sampledOut {
		sampledOut[k] = v
	}
	return events, l.seq, sampledOut
}
