package node

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/anchat/realtime/registry"
)

// The node announces itself in the registry every announceInterval, live
// for announceTTL: the admin console's Cluster page shows figures at most
// about a second old, and a node that died drops out within a few seconds.
const (
	announceInterval = time.Second
	announceTTL      = 5 * time.Second
	// fanoutWindow is the span the console's p99 fan-out latency covers.
	fanoutWindow = 10 * time.Second
)

// fanoutHistogram is the fan-out latency histogram read by name from the
// node's own registry: the console shows "n/a" while no such metric exists.
const fanoutHistogram = "realtime_send_fanout_seconds"

// nodeInfo is what a node announces about itself (GET /api/nodes, GET
// /api/node).
type nodeInfo struct {
	ID                string   `json:"id"`
	APIURL            string   `json:"apiUrl"`
	Addr              string   `json:"addr"`      // the public WebSocket listener
	Namespace         string   `json:"namespace"` // the chat namespace
	Version           string   `json:"version"`
	StartedAt         string   `json:"startedAt"`
	UpdatedAt         string   `json:"updatedAt"`
	Connections       int      `json:"connections"`
	Users             int      `json:"users"`
	Chats             int      `json:"chats"`
	MessagesInPerSec  float64  `json:"messagesInPerSec"`
	MessagesOutPerSec float64  `json:"messagesOutPerSec"`
	FanoutP99Ms       *float64 `json:"fanoutP99Ms"` // null: no histogram, or nothing observed in the window
	Ready             bool     `json:"ready"`
	Draining          bool     `json:"draining"`
	Goroutines        int      `json:"goroutines"`
	// APIURLRefused is why this node would not send its API key to the
	// node's apiUrl (peers.go): set by GET /api/nodes, never announced.
	APIURLRefused string `json:"apiUrlRefused,omitempty"`
}

// announcer computes this node's nodeInfo and announces it. Only its loop
// writes the fields below info; info is read by the API handlers.
type announcer struct {
	srv     *server
	metrics metricsGatherer // holds the fan-out histogram
	started time.Time
	info    atomic.Pointer[nodeInfo]

	lastAt          time.Time
	lastIn, lastOut uint64
	fanout          []histSnapshot // oldest first, spanning about fanoutWindow
	url             string         // apiURL's
}

// histSnapshot is a histogram's cumulative counts at one moment.
type histSnapshot struct {
	at     time.Time
	bounds []float64 // finite upper bounds, increasing
	counts []uint64  // cumulative count per bound
	total  uint64    // every observation (the +Inf bucket)
}

func newAnnouncer(srv *server) *announcer {
	// A registry of the fan-out histogram alone: the p99 is read every
	// second, and gathering the node's whole registry (Go runtime, process,
	// the Redis metrics) for it would be wasted work.
	fanoutOnly := prometheus.NewRegistry()
	fanoutOnly.MustRegister(srv.metrics.sendFanout)
	a := &announcer{srv: srv, metrics: fanoutOnly, started: srv.cfg.Now()}
	a.info.Store(&nodeInfo{ID: srv.cfg.NodeID, Version: srv.cfg.Version, Namespace: srv.cfg.Namespace, StartedAt: timestamp(a.started)})
	return a
}

// loop announces until ctx ends, then removes the node from the registry.
func (a *announcer) loop(ctx context.Context) {
	t := time.NewTicker(announceInterval)
	defer t.Stop()
	a.announce()
	for {
		select {
		case <-ctx.Done():
			rctx, cancel := a.srv.engineCtx()
			_ = a.srv.cfg.Engines.Registry.Remove(rctx, a.srv.cfg.NodeID)
			cancel()
			return
		case <-t.C:
			a.announce()
		}
	}
}

func (a *announcer) announce() {
	info := a.measure()
	doc, err := json.Marshal(info)
	if err != nil {
		return
	}
	ctx, cancel := a.srv.engineCtx()
	defer cancel()
	if err := a.srv.cfg.Engines.Registry.Announce(ctx, info.ID, doc, announceTTL); err != nil {
		a.srv.hotLog.Warn().Err(err).Msg("node registry announce failed")
	}
}

// apiURL is srv.apiURL, worked out once (it may list the machine's
// interfaces): the listeners are bound before the announcer starts.
func (a *announcer) apiURL() string {
	if a.url == "" {
		a.url = a.srv.apiURL()
	}
	return a.url
}

// measure refreshes and returns the node's figures.
func (a *announcer) measure() *nodeInfo {
	srv := a.srv
	now := srv.cfg.Now()
	in, out := srv.stats.messagesIn.Load(), srv.stats.messagesOut.Load()
	chats, users := srv.hub.counts()
	info := &nodeInfo{
		ID: srv.cfg.NodeID, APIURL: a.apiURL(), Version: srv.cfg.Version, Namespace: srv.cfg.Namespace,
		StartedAt: timestamp(a.started), UpdatedAt: timestamp(now),
		Connections: srv.connCount(), Users: users, Chats: chats,
		Ready: srv.isReady(), Draining: srv.draining.Load(), Goroutines: srv.allGoroutines.count(),
	}
	if addr := srv.addr(); addr != nil {
		info.Addr = addr.String()
	}
	if !a.lastAt.IsZero() {
		if secs := now.Sub(a.lastAt).Seconds(); secs > 0 {
			info.MessagesInPerSec = round2(float64(in-a.lastIn) / secs)
			info.MessagesOutPerSec = round2(float64(out-a.lastOut) / secs)
		}
	}
	a.lastAt, a.lastIn, a.lastOut = now, in, out
	info.FanoutP99Ms = a.fanoutP99(now)
	a.info.Store(info)
	return info
}

// fanoutP99 returns the p99 of the fan-out histogram over about the last
// fanoutWindow, in milliseconds; nil when the histogram is absent or saw
// nothing in the window.
func (a *announcer) fanoutP99(now time.Time) *float64 {
	snap, ok := gatherHistogram(a.metrics, fanoutHistogram)
	if !ok {
		return nil
	}
	snap.at = now
	a.fanout = append(a.fanout, snap)
	for len(a.fanout) > 1 && now.Sub(a.fanout[1].at) >= fanoutWindow {
		a.fanout = a.fanout[1:]
	}
	q, ok := quantile(0.99, a.fanout[0], snap)
	if !ok {
		return nil
	}
	ms := round2(q * 1000)
	return &ms
}

// metricsGatherer is what gatherHistogram reads (a prometheus.Registry).
type metricsGatherer interface {
	Gather() ([]*dto.MetricFamily, error)
}

// gatherHistogram sums the classic buckets of every series of histogram
// name.
func gatherHistogram(g metricsGatherer, name string) (histSnapshot, bool) {
	fams, _ := g.Gather() // partial results are still worth reading
	for _, f := range fams {
		if f.GetName() != name || f.GetType() != dto.MetricType_HISTOGRAM {
			continue
		}
		var s histSnapshot
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			s.total += h.GetSampleCount()
			for i, b := range h.GetBucket() {
				if math.IsInf(b.GetUpperBound(), 1) {
					continue
				}
				if i >= len(s.bounds) {
					s.bounds = append(s.bounds, b.GetUpperBound())
					s.counts = append(s.counts, 0)
				}
				s.counts[i] += b.GetCumulativeCount()
			}
		}
		return s, true
	}
	return histSnapshot{}, false
}

// quantile estimates the q quantile of the observations made between from
// and to as PromQL's histogram_quantile does: linear within the bucket that
// holds it, the highest finite bound when it falls past them. ok is false
// when nothing was observed in between.
func quantile(q float64, from, to histSnapshot) (float64, bool) {
	sameBuckets := len(from.counts) == len(to.counts)
	total := to.total
	if sameBuckets {
		total -= from.total
	}
	if total == 0 || len(to.bounds) == 0 {
		return 0, false
	}
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for i, bound := range to.bounds {
		c := to.counts[i]
		if sameBuckets {
			c -= from.counts[i]
		}
		if float64(c) >= rank {
			if c == below {
				return bound, true
			}
			return lower + (bound-lower)*(rank-float64(below))/float64(c-below), true
		}
		lower, below = bound, c
	}
	return to.bounds[len(to.bounds)-1], true
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// apiURL is where the other nodes reach this node's server API.
func (srv *server) apiURL() string {
	if srv.cfg.APIURL != "" {
		return srv.cfg.APIURL
	}
	addr := srv.apiAddr()
	if addr == nil {
		return ""
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = firstNonLoopbackIP()
	}
	return "http://" + net.JoinHostPort(host, port)
}

// firstNonLoopbackIP is this machine's first non-loopback unicast address
// (IPv4 preferred), or 127.0.0.1.
func firstNonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "127.0.0.1"
	}
	var v6 string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		if ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
		if v6 == "" {
			v6 = ipn.IP.String()
		}
	}
	if v6 != "" {
		return v6
	}
	return "127.0.0.1"
}

// nodeInfos lists the live nodes' documents from the registry, this node's
// own figures fresh from its announcer.
func (srv *server) nodeInfos(ctx context.Context) ([]nodeInfo, error) {
	docs, err := srv.cfg.Engines.Registry.List(ctx, registry.MaxNodes)
	if err != nil {
		return nil, err
	}
	out := make([]nodeInfo, 0, len(docs)+1)
	self := false
	for _, d := range docs {
		var n nodeInfo
		if len(d) > registry.MaxDocBytes || json.Unmarshal(d, &n) != nil || !validNodeID(n.ID) {
			continue
		}
		if n.ID == srv.cfg.NodeID {
			n, self = *srv.announcer.info.Load(), true
		}
		out = append(out, n)
	}
	if !self { // not announced yet, or the registry lost it
		out = append(out, *srv.announcer.info.Load())
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	}
	return out, nil
}

// validNodeID reports whether id could be a node's (what the registry
// accepts, printable): documents written to the registry by other means
// may claim anything.
func validNodeID(id string) bool {
	return id != "" && len(id) <= 128 && !strings.ContainsAny(id, "{}") &&
		!strings.ContainsFunc(id, func(r rune) bool { return r < ' ' || r == 0x7f || r == utf8.RuneError })
}
