package bench

import (
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
)

// WriteHTML writes a self-contained HTML report: the summary, and inline SVG
// charts of throughput, latency percentiles per second, connections and
// server CPU over time, and the latency distribution. No script, font or
// style is loaded from anywhere: it reads offline.
func WriteHTML(w io.Writer, r *Result) error {
	var table strings.Builder
	_ = WriteTable(&table, r)
	d := htmlData{R: r, Table: table.String()}
	for _, name := range slices.Sorted(maps.Keys(r.Flags)) {
		d.Flags = append(d.Flags, [2]string{"--" + name, r.Flags[name]})
	}
	t0 := func(p Point) float64 { return p.T }
	if len(r.Series) > 0 {
		d.Charts = append(d.Charts,
			// Sends and deliveries differ by the fan-out (one send, thousands
			// of deliveries): on one axis the sends would read as zero.
			chart("Messages sent per second", "/s", false, r.Series, t0,
				series{"sent", "#1f77b4", func(p Point) float64 { return p.SentPerSec }}),
			chart("Deliveries per second", "/s", false, r.Series, t0,
				series{"delivered", "#2ca02c", func(p Point) float64 { return p.RecvPerSec }}),
			chart("Latency per second (send to receive)", "ms", true, r.Series, t0,
				series{"p50", "#2ca02c", func(p Point) float64 { return p.P50 }},
				series{"p90", "#1f77b4", func(p Point) float64 { return p.P90 }},
				series{"p99", "#ff7f0e", func(p Point) float64 { return p.P99 }},
				series{"max", "#d62728", func(p Point) float64 { return p.Max }}),
			chart("Connections open", "", false, r.Series, t0,
				series{"open", "#9467bd", func(p Point) float64 { return float64(p.Open) }}),
			chart("CPU (% of one core)", "%", false, r.Series, t0,
				series{"servers", "#d62728", func(p Point) float64 { return p.ServerCPU }},
				series{"generator", "#7f7f7f", func(p Point) float64 { return p.GenCPU }}),
		)
	}
	if len(r.Quantiles) > 0 {
		pts := make([]Point, len(r.Quantiles))
		for i, q := range r.Quantiles {
			// x: "nines" (−log10(1−q)), capped for q = 1
			x := 4.5
			if q.Q < 1 {
				x = -math.Log10(1 - q.Q)
			}
			pts[i] = Point{T: x, Max: q.Ms}
		}
		c := chart("Latency distribution (x: percentile as nines: 1 = p90, 2 = p99, 3 = p99.9; last point = max)", "ms", true, pts,
			func(p Point) float64 { return p.T }, series{"latency", "#ff7f0e", func(p Point) float64 { return p.Max }})
		d.Charts = append(d.Charts, c)
	}
	return reportTemplate.Execute(w, d)
}

type htmlData struct {
	R      *Result
	Table  string
	Charts []template.HTML
	Flags  [][2]string // the flags set, sorted by name
}

type series struct {
	name  string
	color string
	y     func(Point) float64
}

// chart draws a line chart of the series over the points as inline SVG.
func chart(title, unit string, logY bool, pts []Point, x func(Point) float64, ss ...series) template.HTML {
	const W, H, L, R, T, B = 760.0, 240.0, 64.0, 110.0, 28.0, 30.0
	minX, maxX := math.Inf(1), math.Inf(-1)
	minY, maxY := math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		minX, maxX = math.Min(minX, x(p)), math.Max(maxX, x(p))
		for _, s := range ss {
			v := s.y(p)
			if logY && v <= 0 {
				continue
			}
			minY, maxY = math.Min(minY, v), math.Max(maxY, v)
		}
	}
	if math.IsInf(minY, 0) {
		minY, maxY = 0, 1
	}
	if !logY {
		minY = math.Min(minY, 0)
	}
	if maxX == minX {
		maxX = minX + 1
	}
	ty := func(v float64) float64 { return v }
	if logY {
		minY = math.Pow(10, math.Floor(math.Log10(math.Max(minY, 1e-3))))
		maxY = math.Pow(10, math.Ceil(math.Log10(math.Max(maxY, minY*10))))
		ty = func(v float64) float64 { return math.Log10(math.Max(v, minY)) }
	} else if maxY <= minY {
		maxY = minY + 1
	}
	y0, y1 := ty(minY), ty(maxY)
	px := func(v float64) float64 { return L + (v-minX)/(maxX-minX)*(W-L-R) }
	py := func(v float64) float64 { return H - B - (ty(v)-y0)/(y1-y0)*(H-T-B) }
	var b strings.Builder
	fmt.Fprintf(&b, `<figure><figcaption>%s</figcaption><svg viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" xmlns="http://www.w3.org/2000/svg">`,
		template.HTMLEscapeString(title), W, H, W, H)
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="#fafafa" stroke="#ccc"/>`, L, T, W-L-R, H-T-B)
	// y grid
	var ticks []float64
	if logY {
		for v := minY; v <= maxY*1.0001; v *= 10 {
			ticks = append(ticks, v)
		}
	} else {
		step := niceStep((maxY - minY) / 4)
		for v := math.Ceil(minY/step) * step; v <= maxY+step/1e6; v += step {
			ticks = append(ticks, v)
		}
	}
	for _, v := range ticks {
		y := py(v)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#e3e3e3"/><text x="%.1f" y="%.1f" font-size="11" text-anchor="end">%s%s</text>`,
			L, W-R, y, y, L-4, y+4, template.HTMLEscapeString(shortNum(v)), template.HTMLEscapeString(unitSuffix(unit)))
	}
	// x ticks
	xstep := niceStep((maxX - minX) / 8)
	for v := math.Ceil(minX/xstep) * xstep; v <= maxX+xstep/1e6; v += xstep {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%s</text>`, px(v), H-B+16, template.HTMLEscapeString(shortNum(v)))
	}
	for i, s := range ss {
		var path strings.Builder
		pen := false
		for _, p := range pts {
			v := s.y(p)
			if logY && v <= 0 {
				pen = false
				continue
			}
			cmd := "L"
			if !pen {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, px(x(p)), py(v))
			pen = true
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.8"/>`, strings.TrimSpace(path.String()), s.color)
		if len(pts) < 30 {
			for _, p := range pts {
				if v := s.y(p); !logY || v > 0 {
					fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`, px(x(p)), py(v), s.color)
				}
			}
		}
		ly := T + 14 + float64(i)*16
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/><text x="%.0f" y="%.1f" font-size="12">%s</text>`,
			W-R+8, W-R+26, ly-4, ly-4, s.color, W-R+30, ly, template.HTMLEscapeString(s.name))
	}
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String())
}

func unitSuffix(u string) string {
	if u == "/s" || u == "" {
		return ""
	}
	return " " + u
}

// niceStep rounds a step to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / p; {
	case f <= 1:
		return p
	case f <= 2:
		return 2 * p
	case f <= 5:
		return 5 * p
	}
	return 10 * p
}

func shortNum(v float64) string {
	if v == 0 {
		v = 0 // no "-0"
	}
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return fmt.Sprintf("%gM", math.Round(v/1e4)/100)
	case a >= 1e3:
		return fmt.Sprintf("%gk", math.Round(v/10)/100)
	case a >= 1 || a == 0:
		return fmt.Sprintf("%g", math.Round(v*100)/100)
	}
	return fmt.Sprintf("%.3g", v)
}

var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>bench {{.R.Scenario}} {{.R.Config.RunID}}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:900px}
h1{font-size:20px;margin:0 0 4px} .ok{color:#2a7d2a;font-weight:bold} .fail{color:#c62828;font-weight:bold}
pre{background:#f4f4f4;padding:12px;font-size:12.5px;width:max-content;min-width:calc(100% - 24px);white-space:pre}
code{font-size:12.5px;white-space:pre-wrap;word-break:break-all} .meta td,.meta th{text-align:left} figure{margin:18px 0} figcaption{font-weight:600;margin-bottom:4px}
table{border-collapse:collapse} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f0f0f0}
</style></head><body>
<h1>bench {{.R.Scenario}} — {{if .R.OK}}<span class="ok">PASS</span>{{else}}<span class="fail">FAIL</span>{{end}}</h1>
<p>Run {{.R.Config.RunID}}, started {{.R.Started.Format "2006-01-02 15:04:05 MST"}}, {{printf "%.1f" .R.Elapsed}} s; targets {{range $i, $t := .R.Config.Targets}}{{if $i}}, {{end}}{{$t}}{{end}}.</p>
<table class="meta">
{{if .R.Command}}<tr><th>command</th><td><code>{{.R.Command}}</code></td></tr>{{end}}
{{if .Flags}}<tr><th>flags set</th><td>{{range $i, $f := .Flags}}{{if $i}}, {{end}}<code>{{index $f 0}}={{index $f 1}}</code>{{end}}</td></tr>{{end}}
<tr><th>machine</th><td>{{with .R.Machine}}{{if .CPU}}{{.CPU}}, {{end}}{{.Cores}} logical CPUs (GOMAXPROCS {{.GOMAXPROCS}}), {{.OS}}; generator built with {{.Go}}{{end}}</td></tr>
{{range .R.Servers.Each}}<tr><th>server {{.Name}}</th><td>{{if .Version}}{{.Version}}{{else}}version unknown (its /metrics names none{{if not .Name}}; give --metrics-urls{{end}}){{end}}</td></tr>{{else}}<tr><th>servers</th><td>versions unknown: give --metrics-urls (and --server-pids)</td></tr>{{end}}
</table>
{{range .R.Failures}}<p class="fail">{{.}}</p>{{end}}
<pre>{{.Table}}</pre>
{{if .R.Latency.Count}}<table><tr><th>count</th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>mean</th></tr>
<tr><td>{{.R.Latency.Count}}</td><td>{{.R.Latency.Min}}</td><td>{{.R.Latency.P50}}</td><td>{{.R.Latency.P90}}</td><td>{{.R.Latency.P99}}</td><td>{{.R.Latency.P999}}</td><td>{{.R.Latency.Max}}</td><td>{{.R.Latency.Mean}}</td></tr></table>
<p>Latencies in milliseconds, from a timestamp taken just before each send to the read that brought the message.</p>{{end}}
<p>Charts over time: x is seconds since the run started; the load started at {{printf "%.1f" .R.LoadStart}} s (before it: connecting).</p>
{{range .Charts}}{{.}}{{end}}
</body></html>
`))
