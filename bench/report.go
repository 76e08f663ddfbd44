package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the result as indented JSON.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the human-readable summary.
func WriteTable(w io.Writer, r *Result) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	cfg := r.Config
	row := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, args...)...)
	}
	fmt.Fprintf(tw, "bench %s  targets %s  run %s  (%d worker%s, %s reader)\n", r.Scenario, strings.Join(cfg.Targets, ","),
		cfg.RunID, cfg.Procs, plural(cfg.Procs), cfg.IO)
	c := r.Connect
	fmt.Fprintln(tw, "connections")
	row("opened", "%d of %d in %.2fs (%.0f/s), %d held", c.OK, c.Attempted, c.Seconds, c.PerSecond, c.Held)
	row("connect latency", "p50 %s  p99 %s  max %s", fmtMs(c.Latency.P50), fmtMs(c.Latency.P99), fmtMs(c.Latency.Max))
	if c.Failed > 0 {
		row("failed", "%d (%s)", c.Failed, topErrors(c.Errors))
	}
	l := r.Load
	switch r.Scenario {
	case ScenarioFanout, ScenarioChat, ScenarioTyping, ScenarioRTM:
		fmt.Fprintln(tw, "load")
		row("sent", "%d in %.2fs: %.0f/s (asked %.0f/s), %d failed", l.Sent, l.Seconds, l.SendRate, l.TargetRate, l.SendFailed)
		row("deliveries", "%d of %d expected: %s/s", l.Received, l.Expected, si(l.DeliveriesPerSec))
		lost := fmt.Sprintf("%d (%.3f%%)", l.Lost, l.LostPercent)
		if l.Lost > 0 {
			lost += "  <<< LOSS"
		}
		row("lost", "%s", lost)
		row("duplicates", "%d   out of order %d   misrouted %d   malformed %d", l.Duplicates, l.OutOfOrder, l.Misrouted, l.Malformed+l.Invalid)
		row("drain", "%.3fs after the last send", l.DrainSeconds)
		lat := r.Latency
		fmt.Fprintln(tw, "latency (send to receive)")
		row("ms", "min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (%d samples)",
			fmtMs(lat.Min), fmtMs(lat.P50), fmtMs(lat.P90), fmtMs(lat.P99), fmtMs(lat.P999), fmtMs(lat.Max), lat.Count)
	}
	if rc := r.Reconnect; rc != nil {
		fmt.Fprintln(tw, "reconnect")
		back := "not all back"
		if rc.AllBackSeconds >= 0 {
			back = fmt.Sprintf("all back in %.2fs", rc.AllBackSeconds)
		}
		row("dropped", "%d, back %d: %s", rc.Dropped, rc.Back, back)
		row("time to back", "p50 %s  p99 %s  max %s", fmtMs(rc.Latency.P50), fmtMs(rc.Latency.P99), fmtMs(rc.Latency.Max))
	}
	if len(l.Errors) > 0 {
		row("errors", "%s", topErrors(l.Errors))
	}
	g := r.Generator
	fmt.Fprintln(tw, "cost")
	gen := fmt.Sprintf("%.2f CPU s", g.CPUSeconds)
	if g.CPUPerMessageNs > 0 {
		gen += fmt.Sprintf(", %.0f ns per received message", g.CPUPerMessageNs)
	}
	gen += fmt.Sprintf(", RSS %s (%s per connection)", bytesIEC(float64(g.RSSBytes)), bytesIEC(g.RSSPerConn))
	row("generator", "%s", gen)
	s := r.Servers
	if len(s.Each) > 0 {
		srv := fmt.Sprintf("%.2f CPU s (%.0f%% of a core)", s.CPUSeconds, s.CPUPercent)
		if s.CPUPerDeliveryUs > 0 {
			srv += fmt.Sprintf(", %.2f µs per delivery", s.CPUPerDeliveryUs)
		}
		srv += fmt.Sprintf(", %s per connection", bytesIEC(s.MemPerConnBytes))
		if s.GoroutinesPerConn >= 0 {
			srv += fmt.Sprintf(", %.2f goroutines per connection", s.GoroutinesPerConn)
		}
		row("servers", "%s", srv)
		for _, e := range s.Each {
			line := fmt.Sprintf("RSS %s → %s → %s, CPU %.2fs", bytesIEC(float64(e.RSSBase)), bytesIEC(float64(e.RSSHeld)), bytesIEC(float64(e.RSSEnd)), e.CPUSeconds)
			if e.GoroutinesHeld >= 0 {
				line += fmt.Sprintf(", goroutines %d → %d", e.GoroutinesBase, e.GoroutinesHeld)
			}
			if e.Err != "" {
				line += "  (" + e.Err + ")"
			}
			row("  "+e.Name, "%s", line)
		}
	}
	for _, x := range r.Warnings {
		fmt.Fprintf(tw, "warning: %s\n", x)
	}
	if r.OK {
		fmt.Fprintln(tw, "PASS")
	} else {
		for _, x := range r.Failures {
			fmt.Fprintf(tw, "FAIL: %s\n", x)
		}
	}
	tw.Flush()
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtMs(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

func bytesIEC(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}
