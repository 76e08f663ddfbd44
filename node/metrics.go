package node

import (
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the node's Prometheus figures, on a registry of its own so
// several nodes can live in one process (tests).
//
// Every label value comes from a fixed set (boundedCounters, labelSet):
// a client chooses event names, and a label it chooses would let it create
// series (and memory that is never freed) at will.
type metrics struct {
	reg             *prometheus.Registry
	connections     prometheus.Gauge // upgraded WebSocket connections
	connected       prometheus.Gauge // authenticated connections
	disconnects     *boundedCounters // by reason (the reason* constants)
	refused         *boundedCounters // refused upgrades and CONNECTs, by code (section 1 codes)
	handshakeCounts handshakeMetrics // upgrade failures, shed handshakes, pending handshakes
	eventsIn        *boundedCounters // by client event; others are "unknown"
	eventsOut       *boundedCounters // by server event; others are "other"
	eventErrors     *prometheus.CounterVec
	busIn           *boundedCounters // by server event; others are "other"
	rateLimited     *boundedCounters // by client event, or "connect"
	slowConsumers   prometheus.Counter
	accepted        prometheus.Counter   // accepted TCP connections, before any handshake
	peersRefused    prometheus.Counter   // console calls not made: the peer's apiUrl refused
	handlerSeconds  *boundedHistograms   // handler time by client event
	sendFanout      prometheus.Histogram // send_message receipt to local frames queued (fanout.go)
}

// latencyBuckets are the buckets of the node's latency histograms, in
// seconds: 100 µs (a handler that touches no engine) to 2.5 s (past the
// 2 s engine timeout).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// labelSet is the fixed set of values a label may take; any other value is
// reported as other.
type labelSet struct {
	values []string
	known  map[string]string // each value to itself
	other  string
}

func newLabelSet(other string, values ...string) labelSet {
	s := labelSet{values: append(values, other), known: make(map[string]string, len(values)+1), other: other}
	for _, v := range s.values {
		s.known[v] = v
	}
	return s
}

// bound returns v when it is in the set, else the set's other value.
func (s labelSet) bound(v string) string {
	if _, ok := s.known[v]; ok {
		return v
	}
	return s.other
}

// boundBytes is bound for a name still in the read buffer: it returns the
// set's own string, so nothing is allocated.
func (s labelSet) boundBytes(b []byte) string {
	if v, ok := s.known[string(b)]; ok {
		return v
	}
	return s.other
}

// bounded is a one-label metric family whose series are created up front,
// one per value of a labelSet: a scrape shows every series from the start,
// and recording is a map lookup without the family's label hashing.
type bounded[M any] struct {
	set    labelSet
	byName map[string]M
}

// newBounded creates the series of every value of set with the family's
// WithLabelValues.
func newBounded[M any](set labelSet, withLabelValues func(...string) M) bounded[M] {
	b := bounded[M]{set: set, byName: make(map[string]M, len(set.values))}
	for _, v := range set.values {
		b.byName[v] = withLabelValues(v)
	}
	return b
}

// of returns the series of value, or of the set's other value when value is
// not in the set; it never creates a series.
func (b *bounded[M]) of(value string) M {
	if m, ok := b.byName[value]; ok {
		return m
	}
	return b.byName[b.set.other]
}

// boundedHistograms is boundedCounters for histograms.
type boundedHistograms struct{ bounded[prometheus.Observer] }

func newBoundedHistograms(opts prometheus.HistogramOpts, label string, set labelSet) (*boundedHistograms, *prometheus.HistogramVec) {
	vec := prometheus.NewHistogramVec(opts, []string{label})
	return &boundedHistograms{newBounded(set, vec.WithLabelValues)}, vec
}

// observe records d under value, or under the set's other value.
func (b *boundedHistograms) observe(value string, d time.Duration) {
	b.of(value).Observe(d.Seconds())
}

// Label sets. Server events include the RTM bridge's (package rtm) and the
// internal user-channel kick; server API user events are "other".
var (
	clientEventLabels = newLabelSet("unknown", evJoinChat, evLeaveChat, evSendMessage, evEditMessage,
		evDeleteMessage, evTypingStart, evTypingStop, evAddReaction, evRemoveReaction, evBinary)
	// handledEventLabels are the events with a handler (binary packets are
	// refused before dispatch); unknown names are "unknown".
	handledEventLabels = newLabelSet("unknown", evJoinChat, evLeaveChat, evSendMessage, evEditMessage,
		evDeleteMessage, evTypingStart, evTypingStop, evAddReaction, evRemoveReaction)
	serverEventLabels = newLabelSet("other", evNewMessage, evMessageSent, evMessageEdited, evMessageDeleted,
		evUserTyping, evReactionUpdated, evChatJoined, evChatLeft, evError, evKick, evAdminDisconnect,
		"rtm_status", "message_toast", "message_read", "dialog_limit_changed")
	rateLimitLabels = newLabelSet("other", "connect", evJoinChat, evLeaveChat, evSendMessage, evEditMessage,
		evDeleteMessage, evTypingStart, evTypingStop, evAddReaction, evRemoveReaction)
	codeLabels = newLabelSet("other", codeAuthRequired, codeAuthInvalid, codeAuthExpired, codeConnectionLimit,
		codeNodeFull, codeRateLimited, codeUnavailable, codeDraining, codeInvalidPayload, codeTooLarge,
		codeNotMember, codeNotJoined, codeForbidden, codeNotFound, codeInternal)
	reasonLabels = newLabelSet("other", reasonClientClose, reasonClientGone, reasonReadError, reasonWriteError,
		reasonProtocol, reasonFrameTooLarge, reasonPingTimeout, reasonSlowConsumer, reasonAuthExpired,
		reasonConnectTimeout, reasonUnavailable, reasonDraining, reasonNamespace, reasonShutdown, reasonRefusedConnects,
		reasonNamespaceConnects, reasonAdmin)
)

// countEventError counts a refused client event; both labels are bounded
// (at most 11 events × 16 codes).
func (m *metrics) countEventError(event, code string) {
	m.eventErrors.WithLabelValues(clientEventLabels.bound(event), codeLabels.bound(code)).Inc()
}

// boundedCounters is a counter family of bounded series, one per value of a
// labelSet.
type boundedCounters struct{ bounded[prometheus.Counter] }

func newBoundedCounters(opts prometheus.CounterOpts, label string, set labelSet) (*boundedCounters, *prometheus.CounterVec) {
	vec := prometheus.NewCounterVec(opts, []string{label})
	return &boundedCounters{newBounded(set, vec.WithLabelValues)}, vec
}

// WithLabelValues returns the counter of value, or of the set's other value
// when value is not in the set. It mirrors CounterVec's method, so call sites
// read the same, but takes exactly one value and never creates a series.
func (b *boundedCounters) WithLabelValues(value string) prometheus.Counter { return b.of(value) }

func newMetrics(srv *server) *metrics {
	reg := prometheus.NewRegistry()
	disconnects, disconnectsVec := newBoundedCounters(prometheus.CounterOpts{Name: "realtime_disconnects_total",
		Help: "Closed connections by reason."}, "reason", reasonLabels)
	refused, refusedVec := newBoundedCounters(prometheus.CounterOpts{Name: "realtime_connections_refused_total",
		Help: "Refused connections and CONNECTs by code."}, "code", codeLabels)
	eventsIn, eventsInVec := newBoundedCounters(prometheus.CounterOpts{Name: "realtime_events_in_total",
		Help: "Client events received, by event (unknown names count as \"unknown\")."}, "event", clientEventLabels)
	eventsOut, eventsOutVec := newBoundedCounters(prometheus.CounterOpts{Name: "realtime_events_out_total",
		Help: "Events queued to clients, by event (one per recipient connection; server API events count as \"other\")."}, "event", serverEventLabels)
	busIn, busInVec := newBoundedCounters(prometheus.CounterOpts{Name: "realtime_bus_deliveries_total",
		Help: "Events received from the bus, by event (server API events count as \"other\")."}, "event", serverEventLabels)
	rateLimited, rateLimitedVec := newBoundedCounters(prometheus.CounterOpts{Name: "realtime_rate_limited_total",
		Help: "Rate-limit rejections by action (the client event, or connect)."}, "action", rateLimitLabels)
	handlerSeconds, handlerSecondsVec := newBoundedHistograms(prometheus.HistogramOpts{Name: "realtime_handler_seconds",
		Help:    "Time to handle a client event, from dispatch to its ack or error queued, by event (unknown names count as \"unknown\").",
		Buckets: latencyBuckets}, "event", handledEventLabels)
	m := &metrics{
		reg: reg,
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "realtime_connections",
			Help: "Open WebSocket connections on this node."}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "realtime_authenticated_connections",
			Help: "Connections with an authenticated user on this node."}),
		disconnects: disconnects,
		refused:     refused,
		eventsIn:    eventsIn,
		eventsOut:   eventsOut,
		eventErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "realtime_event_errors_total",
			Help: "Client events refused, by event and error code."}, []string{"event", "code"}),
		busIn:       busIn,
		rateLimited: rateLimited,
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{Name: "realtime_slow_consumer_disconnects_total",
			Help: "Connections closed because their outbound queue filled."}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "realtime_connections_accepted_total",
			Help: "TCP connections accepted on the public listener, before their WebSocket upgrade."}),
		peersRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "realtime_peer_api_refused_total",
			Help: "Cross-node console calls not made because the peer's announced apiUrl is refused (--peer-api-hosts, form, redirect)."}),
		handlerSeconds: handlerSeconds,
		sendFanout: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "realtime_send_fanout_seconds",
			Help:    "On the node that received a send_message: from its dispatch to the new_message frames queued to this node's recipients.",
			Buckets: latencyBuckets}),
	}
	// Every (event, code) series from the start (12 × 16), so a rate over
	// a refusal that has not happened yet is 0, not absent.
	for _, event := range clientEventLabels.values {
		for _, code := range codeLabels.values {
			m.eventErrors.WithLabelValues(event, code)
		}
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "realtime_build_info",
		Help: "Always 1; the labels name the build (version, Go version)."}, []string{"version", "go"})
	buildInfo.WithLabelValues(srv.cfg.Version, runtime.Version()).Set(1)
	reg.MustRegister(m.connections, m.connected, disconnectsVec, refusedVec, eventsInVec,
		eventsOutVec, m.eventErrors, busInVec, rateLimitedVec, m.slowConsumers,
		m.accepted, m.peersRefused, handlerSecondsVec, m.sendFanout, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "realtime_local_chats", Help: "Chats with members connected to this node."},
			func() float64 { c, _ := srv.hub.counts(); return float64(c) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "realtime_local_users", Help: "Users connected to this node."},
			func() float64 { _, u := srv.hub.counts(); return float64(u) }),
		// An atomic the hot path adds to, read at scrape time: a Gauge's
		// float CAS loop on every frame contends across writers.
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "realtime_outbound_queue_bytes", Help: "Bytes queued to clients and not yet written."},
			func() float64 { return float64(srv.queuedBytes.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "realtime_goroutines", Help: "Goroutines in this process."},
			func() float64 { return float64(runtime.NumGoroutine()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "realtime_ready", Help: "1 when the node accepts connections and its engine is reachable."},
			func() float64 {
				if srv.isReady() {
					return 1
				}
				return 0
			}),
	)
	m.handshakeCounts = newHandshakeMetrics(reg, func() int { return srv.handshakes.pending() })
	// The RTM bridge brings its own figures (leader, term, profiles by
	// state, reconnects, events, duplicates).
	if c, ok := srv.cfg.RTM.(interface{ Collectors() []prometheus.Collector }); ok {
		reg.MustRegister(c.Collectors()...)
	}
	// The engines' own figures (the Redis command metrics).
	reg.MustRegister(srv.cfg.Collectors...)
	return m
}
