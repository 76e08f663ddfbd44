package rtm

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collectors returns the bridge's Prometheus collectors, to register on the
// node's registry:
//
//	realtime_rtm_leader                     1 while this node leads
//	realtime_rtm_term                       last fencing number seen in the lease
//	realtime_rtm_profiles{state}            profiles by state (reported by the leader only, so sums over nodes are right)
//	realtime_rtm_reconnects_total           upstream reconnect attempts
//	realtime_rtm_events_in_total            upstream frames received
//	realtime_rtm_events_out_total           mapped events published
//	realtime_rtm_duplicates_dropped_total   upstream events already published (cluster-wide dedupe)
//	realtime_rtm_stale_dropped_total        deliveries dropped here for an older term
//	realtime_rtm_events_ignored_total{reason}  unknown_type, malformed, own_message, error
//
// Collecting does no I/O.
func (b *Bridge) Collectors() []prometheus.Collector {
	return []prometheus.Collector{&collector{b: b}}
}

var (
	descLeader     = prometheus.NewDesc("realtime_rtm_leader", "1 while this node holds the RTM lease and runs the bridge.", nil, nil)
	descTerm       = prometheus.NewDesc("realtime_rtm_term", "Fencing number of the RTM lease term last seen by this node.", nil, nil)
	descProfiles   = prometheus.NewDesc("realtime_rtm_profiles", "RTM profiles by upstream state (reported by the leader only).", []string{"state"}, nil)
	descReconnects = prometheus.NewDesc("realtime_rtm_reconnects_total", "Upstream reconnect attempts made by this node as leader.", nil, nil)
	descIn         = prometheus.NewDesc("realtime_rtm_events_in_total", "Upstream frames received by this node as leader.", nil, nil)
	descOut        = prometheus.NewDesc("realtime_rtm_events_out_total", "Mapped RTM events published by this node as leader.", nil, nil)
	descDup        = prometheus.NewDesc("realtime_rtm_duplicates_dropped_total", "Upstream events dropped as already published (cluster-wide dedupe).", nil, nil)
	descStale      = prometheus.NewDesc("realtime_rtm_stale_dropped_total", "Profile-channel deliveries dropped on this node for an older leader term.", nil, nil)
	descIgnored    = prometheus.NewDesc("realtime_rtm_events_ignored_total", "Upstream frames not published, by reason.", []string{"reason"}, nil)
)

type collector struct{ b *Bridge }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLeader, descTerm, descProfiles, descReconnects, descIn, descOut, descDup, descStale, descIgnored} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	leader := 0.0
	if b.leading.Load() {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, leader)
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(b.known.Load()))
	counts := make(map[State]int, len(States))
	for _, st := range b.localStates() {
		counts[st]++
	}
	for _, st := range States {
		ch <- prometheus.MustNewConstMetric(descProfiles, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descReconnects, b.reconnects.Load())
	counter(descIn, b.eventsIn.Load())
	counter(descOut, b.eventsOut.Load())
	counter(descDup, b.duplicates.Load())
	counter(descStale, b.stale.Load())
	counter(descIgnored, b.unknown.Load(), "unknown_type")
	counter(descIgnored, b.malformed.Load(), "malformed")
	counter(descIgnored, b.own.Load(), "own_message")
	counter(descIgnored, b.failed.Load(), "error")
}
