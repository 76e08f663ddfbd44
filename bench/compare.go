package bench

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/anchat/realtime/internal/flaglist"
)

// compareMain is `bench compare`: it reads the --json results of repeated
// runs of one scenario against two systems and prints a markdown table of
// the medians side by side, with their ratio.
func compareMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	title := fs.String("title", "", "heading of the table (### level)")
	nameA := fs.String("name-a", "realtime", "name of system A")
	nameB := fs.String("name-b", "Socket.IO peer", "name of system B")
	filesA := fs.String("a", "", "comma-separated --json results of system A")
	filesB := fs.String("b", "", "comma-separated --json results of system B")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "Usage: bench compare --title T --name-a A --a a1.json,a2.json --name-b B --b b1.json,b2.json\n\nPrints a markdown table of the medians of each system's runs and their ratio (A ÷ B).")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return ExitOK
		}
		fmt.Fprintln(stderr, "bench compare:", err)
		return ExitUsage
	}
	a, err := loadResults(flaglist.Split(*filesA))
	if err != nil {
		fmt.Fprintln(stderr, "bench compare:", err)
		return ExitUsage
	}
	b, err := loadResults(flaglist.Split(*filesB))
	if err != nil {
		fmt.Fprintln(stderr, "bench compare:", err)
		return ExitUsage
	}
	if len(a) == 0 && len(b) == 0 {
		fmt.Fprintln(stderr, "bench compare: no results (--a, --b)")
		return ExitUsage
	}
	_, _ = io.WriteString(stdout, CompareMarkdown(*title, *nameA, a, *nameB, b))
	return ExitOK
}

func loadResults(paths []string) ([]*Result, error) {
	var out []*Result
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r Result
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, &r)
	}
	return out, nil
}

// metric is one row of a comparison.
type metric struct {
	name   string
	lower  bool // lower is better
	format string
	get    func(*Result) (float64, bool)
}

func scenarioMetrics(scenario string) []metric {
	always := func(f func(*Result) float64) func(*Result) (float64, bool) {
		return func(r *Result) (float64, bool) { return f(r), true }
	}
	servers := func(f func(*Result) float64) func(*Result) (float64, bool) {
		return func(r *Result) (float64, bool) { return f(r), len(r.Servers.Each) > 0 }
	}
	conn := []metric{
		{"connections held", false, "%.0f", always(func(r *Result) float64 { return float64(r.Connect.Held) })},
		{"connect rate (/s)", false, "%.0f", always(func(r *Result) float64 { return r.Connect.PerSecond })},
		{"connect p99 (ms)", true, "%.1f", always(func(r *Result) float64 { return r.Connect.Latency.P99 })},
	}
	switch scenario {
	case ScenarioIdle:
		return append(conn,
			metric{"server memory per connection (KiB)", true, "%.2f", servers(func(r *Result) float64 { return r.Servers.MemPerConnBytes / 1024 })},
			metric{"server goroutines per connection", true, "%.2f", func(r *Result) (float64, bool) {
				return max(r.Servers.GoroutinesPerConn, 0), r.Servers.GoroutinesPerConn > -0.5 // -1: unknown
			}},
			metric{"server CPU while idle (% of a core)", true, "%.1f", servers(func(r *Result) float64 { return r.Servers.CPUPercent })},
			metric{"server RSS held, total (MiB)", true, "%.1f", servers(func(r *Result) float64 {
				var s int64
				for _, e := range r.Servers.Each {
					s += e.RSSHeld
				}
				return float64(s) / (1 << 20)
			})},
			metric{"generator memory per connection (KiB)", true, "%.2f", always(func(r *Result) float64 { return r.Generator.RSSPerConn / 1024 })},
		)
	case ScenarioReconnect:
		return append(conn,
			metric{"dropped", false, "%.0f", func(r *Result) (float64, bool) { return float64(r.Reconnect.Dropped), r.Reconnect != nil }},
			metric{"all back (s)", true, "%.2f", func(r *Result) (float64, bool) {
				return r.Reconnect.AllBackSeconds, r.Reconnect != nil && r.Reconnect.AllBackSeconds >= 0
			}},
			metric{"time to back p99 (ms)", true, "%.0f", func(r *Result) (float64, bool) { return r.Reconnect.Latency.P99, r.Reconnect != nil }},
			metric{"reconnect errors", true, "%.0f", func(r *Result) (float64, bool) { return float64(reconnectFailures(r.Load.Errors)), true }},
		)
	}
	return []metric{
		{"deliveries/s offered", false, "%.0f", always(func(r *Result) float64 { return float64(r.Load.Expected) / math.Max(r.Load.Seconds, 1e-9) })},
		{"deliveries/s achieved", false, "%.0f", always(func(r *Result) float64 { return r.Load.DeliveriesPerSec })},
		{"lost (%)", true, "%.3f", always(func(r *Result) float64 { return r.Load.LostPercent })},
		{"latency p50 (ms)", true, "%.2f", always(func(r *Result) float64 { return r.Latency.P50 })},
		{"latency p90 (ms)", true, "%.2f", always(func(r *Result) float64 { return r.Latency.P90 })},
		{"latency p99 (ms)", true, "%.2f", always(func(r *Result) float64 { return r.Latency.P99 })},
		{"latency p99.9 (ms)", true, "%.2f", always(func(r *Result) float64 { return r.Latency.P999 })},
		{"latency max (ms)", true, "%.1f", always(func(r *Result) float64 { return r.Latency.Max })},
		{"drain after last send (s)", true, "%.2f", always(func(r *Result) float64 { return r.Load.DrainSeconds })},
		{"server CPU per delivery (µs)", true, "%.2f", servers(func(r *Result) float64 { return r.Servers.CPUPerDeliveryUs })},
		{"server CPU (% of a core)", true, "%.0f", servers(func(r *Result) float64 { return r.Servers.CPUPercent })},
		{"generator CPU per message (ns)", true, "%.0f", always(func(r *Result) float64 { return r.Generator.CPUPerMessageNs })},
	}
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// CompareMarkdown renders the medians of two systems' runs of one scenario
// side by side, with the ratio A ÷ B and which side is better per row.
func CompareMarkdown(title, nameA string, a []*Result, nameB string, b []*Result) string {
	var sb strings.Builder
	scenario := ""
	for _, r := range append(append([]*Result(nil), a...), b...) {
		scenario = r.Scenario
		break
	}
	if title != "" {
		fmt.Fprintf(&sb, "### %s\n\n", title)
	}
	passed := func(rs []*Result) string {
		n := 0
		for _, r := range rs {
			if r.OK {
				n++
			}
		}
		return fmt.Sprintf("%d of %d runs passed", n, len(rs))
	}
	fmt.Fprintf(&sb, "| | %s | %s | %s ÷ %s |\n|---|---:|---:|---:|\n", nameA, nameB, nameA, nameB)
	fmt.Fprintf(&sb, "| runs (median shown) | %s | %s | |\n", passed(a), passed(b))
	for _, m := range scenarioMetrics(scenario) {
		va, oka := collect(a, m)
		vb, okb := collect(b, m)
		cell := func(v float64, ok bool) string {
			if !ok {
				return "–"
			}
			return fmt.Sprintf(m.format, v)
		}
		ratio := ""
		if oka && okb && vb != 0 && !math.IsNaN(va) && !math.IsNaN(vb) {
			q := va / vb
			better := (m.lower && va < vb) || (!m.lower && va > vb)
			ratio = fmt.Sprintf("%.2f", q)
			if q >= 100 || q < 0.01 && q > 0 {
				ratio = fmt.Sprintf("%.3g", q)
			}
			if better && math.Abs(q-1) > 0.05 {
				ratio += " ✓"
			}
		} else if oka && okb && vb == 0 && va == 0 {
			ratio = "="
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n", m.name, cell(va, oka), cell(vb, okb), ratio)
	}
	var fails []string
	for name, rs := range map[string][]*Result{nameA: a, nameB: b} {
		for _, r := range rs {
			for _, f := range r.Failures {
				fails = append(fails, fmt.Sprintf("%s (run %s): %s", name, r.Config.RunID, f))
			}
		}
	}
	sort.Strings(fails)
	if len(fails) > 0 {
		sb.WriteString("\nFailures:\n")
		for _, f := range fails {
			fmt.Fprintf(&sb, "- %s\n", f)
		}
	}
	sb.WriteString("\n")
	return sb.String()
}

func collect(rs []*Result, m metric) (float64, bool) {
	var vs []float64
	for _, r := range rs {
		if v, ok := m.get(r); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0, false
	}
	return median(vs), true
}
