package node

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the node's Prometheus figures, on a registry of its own so
// several nodes can live in one process (tests).
type metrics struct {
	reg             *prometheus.Registry
	connections     prometheus.Gauge // upgraded WebSocket connections
	connected       prometheus.Gauge // authenticated connections
	disconnects     *prometheus.CounterVec
	refused         *prometheus.CounterVec
	handshakeCounts handshakeMetrics // upgrade failures, shed handshakes, pending handshakes
	eventsIn        *prometheus.CounterVec
	eventsOut       *prometheus.CounterVec
	eventErrors     *prometheus.CounterVec
	busIn           *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
	slowConsumers   prometheus.Counter
}

func newMetrics(srv *server) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "realtime_connections",
			Help: "Open WebSocket connections on this node."}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "realtime_authenticated_connections",
			Help: "Connections with an authenticated user on this node."}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "realtime_disconnects_total",
			Help: "Closed connections by reason."}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "realtime_connections_refused_total",
			Help: "Refused connections and CONNECTs by code."}, []string{"code"}),
		eventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "realtime_events_in_total",
			Help: "Client events received, by event."}, []string{"event"}),
		eventsOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "realtime_events_out_total",
			Help: "Events queued to clients, by event (one per recipient connection)."}, []string{"event"}),
		eventErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "realtime_event_errors_total",
			Help: "Client events refused, by event and error code."}, []string{"event", "code"}),
		busIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "realtime_bus_deliveries_total",
			Help: "Events received from the bus, by event."}, []string{"event"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "realtime_rate_limited_total",
			Help: "Rate-limit rejections by action."}, []string{"action"}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{Name: "realtime_slow_consumer_disconnects_total",
			Help: "Connections closed because their outbound queue filled."}),
	}
	reg.MustRegister(m.connections, m.connected, m.disconnects, m.refused, m.eventsIn,
		m.eventsOut, m.eventErrors, m.busIn, m.rateLimited, m.slowConsumers,
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
	return m
}
