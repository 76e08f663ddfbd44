package bench

import (
	"math"
	"time"
)

// Result is what a run measured. It is what --json prints and what the
// table and the HTML report show.
type Result struct {
	Scenario string    `json:"scenario"`
	Config   Config    `json:"config"`
	Started  time.Time `json:"started"`
	Elapsed  float64   `json:"elapsedSeconds"`
	// OK is false when the run failed: messages lost or duplicated,
	// connections refused or dropped, reconnects not back in time.
	OK       bool     `json:"ok"`
	Failures []string `json:"failures,omitempty"`
	Warnings []string `json:"warnings,omitempty"`

	Connect   ConnectResult    `json:"connect"`
	Load      LoadResult       `json:"load"`
	Latency   LatencySummary   `json:"latency"`
	Reconnect *ReconnectResult `json:"reconnect,omitempty"`
	Generator GeneratorResult  `json:"generator"`
	Servers   ServersResult    `json:"servers"`
	Series    []Point          `json:"series"`
	LoadStart float64          `json:"loadStart"` // seconds from the start of the run to the start of the load (Point.T)
	Quantiles []QuantilePoint  `json:"quantiles"`

	// Command is the bench command line as run and Flags the flags set on
	// it (secrets hidden); empty when Run was called directly.
	Command string            `json:"command,omitempty"`
	Flags   map[string]string `json:"flags,omitempty"`
	// Machine is where the generator ran.
	Machine Machine `json:"machine"`
}

// Machine describes the host the generator ran on.
type Machine struct {
	CPU        string `json:"cpu"`        // model name from /proc/cpuinfo ("" if unknown)
	Cores      int    `json:"cores"`      // logical CPUs
	GOMAXPROCS int    `json:"gomaxprocs"` // of the coordinator
	Go         string `json:"go"`         // Go version the generator was built with
	OS         string `json:"os"`         // GOOS/GOARCH and kernel release
}

// ConnectResult covers opening the connections before the load.
type ConnectResult struct {
	Attempted int64            `json:"attempted"`
	OK        int64            `json:"ok"`
	Failed    int64            `json:"failed"`
	Held      int64            `json:"held"` // ready when the load started
	Seconds   float64          `json:"seconds"`
	PerSecond float64          `json:"perSecond"`
	Errors    map[string]int64 `json:"errors,omitempty"`
	Latency   LatencySummary   `json:"latency"` // dial to joined
}

// LoadResult covers the sends and what arrived.
type LoadResult struct {
	Seconds          float64          `json:"seconds"` // first to last send
	Sent             int64            `json:"sent"`
	SendFailed       int64            `json:"sendFailed"`
	TargetRate       float64          `json:"targetRate"` // sends/s asked for
	SendRate         float64          `json:"sendRate"`   // sends/s achieved
	Expected         int64            `json:"expected"`   // deliveries owed to the connections joined at the start
	Received         int64            `json:"received"`   // distinct deliveries
	Lost             int64            `json:"lost"`
	LostPercent      float64          `json:"lostPercent"`
	Duplicates       int64            `json:"duplicates"`
	OutOfOrder       int64            `json:"outOfOrder"`
	Misrouted        int64            `json:"misrouted"`
	Malformed        int64            `json:"malformed"`
	Invalid          int64            `json:"invalid"`
	DeliveriesPerSec float64          `json:"deliveriesPerSec"` // received ÷ (last delivery − first send)
	DrainSeconds     float64          `json:"drainSeconds"`     // last delivery − last send
	Disconnects      int64            `json:"disconnects"`
	Errors           map[string]int64 `json:"errors,omitempty"`
}

// LatencySummary is a latency distribution in milliseconds.
type LatencySummary struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func summarize(h *Histogram) LatencySummary {
	return LatencySummary{Count: h.Count(), Min: ms(h.Min()), Mean: ms(h.Mean()),
		P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max())}
}

// ReconnectResult covers the reconnect scenario.
type ReconnectResult struct {
	Dropped        int64          `json:"dropped"`
	Back           int64          `json:"back"`
	AllBackSeconds float64        `json:"allBackSeconds"` // -1 when not all came back
	Latency        LatencySummary `json:"latency"`        // drop to joined again, per connection
}

// GeneratorResult is the load generator's own cost.
type GeneratorResult struct {
	Procs           int     `json:"procs"`
	IO              string  `json:"io"`
	CPUSeconds      float64 `json:"cpuSeconds"`      // during the load and drain
	CPUPerMessageNs float64 `json:"cpuPerMessageNs"` // CPUSeconds ÷ received
	RSSBytes        int64   `json:"rssBytes"`        // all worker processes, at the end
	RSSPerConn      float64 `json:"rssPerConn"`
}

// ServerResult is one server's figures; -1 marks what it does not offer.
type ServerResult struct {
	Name           string  `json:"name"`
	RSSBase        int64   `json:"rssBase"` // before connecting
	RSSHeld        int64   `json:"rssHeld"` // connections held, before the load
	RSSEnd         int64   `json:"rssEnd"`
	CPUSeconds     float64 `json:"cpuSeconds"` // during the load and drain (idle: the hold)
	GoroutinesBase int64   `json:"goroutinesBase"`
	GoroutinesHeld int64   `json:"goroutinesHeld"`
	Connections    int64   `json:"connections"`       // the server's own count, held
	Version        string  `json:"version,omitempty"` // from its /metrics: realtime_build_info, nodejs_version_info or go_info
	Err            string  `json:"err,omitempty"`
}

// ServersResult sums the servers.
type ServersResult struct {
	Each              []ServerResult `json:"each,omitempty"`
	MemPerConnBytes   float64        `json:"memPerConnBytes"`   // Σ(held−base RSS) ÷ connections held
	GoroutinesPerConn float64        `json:"goroutinesPerConn"` // -1 when unknown
	CPUSeconds        float64        `json:"cpuSeconds"`
	CPUPercent        float64        `json:"cpuPercent"`       // of one core, during the load (idle: the hold)
	CPUPerDeliveryUs  float64        `json:"cpuPerDeliveryUs"` // CPUSeconds ÷ received
}

// Point is one second of the run.
type Point struct {
	T          float64 `json:"t"` // seconds since the start of the run (the load starts at Result.LoadStart)
	Open       int64   `json:"open"`
	SentPerSec float64 `json:"sentPerSec"`
	RecvPerSec float64 `json:"recvPerSec"`
	Count      uint64  `json:"count"` // latency samples in the second
	P50        float64 `json:"p50"`
	P90        float64 `json:"p90"`
	P99        float64 `json:"p99"`
	Max        float64 `json:"max"`
	ServerRSS  int64   `json:"serverRSS"`
	ServerCPU  float64 `json:"serverCPU"` // percent of one core
	GenCPU     float64 `json:"genCPU"`    // percent of one core
}

// QuantilePoint is one point of the latency distribution.
type QuantilePoint struct {
	Q  float64 `json:"q"`
	Ms float64 `json:"ms"`
}

var spectrum = []float64{0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1}

func quantiles(h *Histogram) []QuantilePoint {
	if h.Count() == 0 {
		return nil
	}
	out := make([]QuantilePoint, 0, len(spectrum))
	for _, q := range spectrum {
		v := h.Quantile(q)
		if q == 0 {
			v = h.Min()
		}
		out = append(out, QuantilePoint{Q: q, Ms: ms(v)})
	}
	return out
}
