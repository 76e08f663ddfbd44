package bench

import (
	"strings"
	"testing"
	"time"
)

func TestWriteHTMLSelfContained(t *testing.T) {
	var lat Histogram
	for i := 1; i <= 1000; i++ {
		lat.Record(int64(i) * int64(time.Microsecond))
	}
	r := &Result{Scenario: ScenarioFanout, Config: Config{RunID: "r1", Targets: []string{"127.0.0.1:1"}, IO: IOEpoll, Procs: 1},
		Started: time.Now(), OK: false, Failures: []string{"LOST 3 of 9 <script>"}, Latency: summarize(&lat), Quantiles: quantiles(&lat)}
	for i := range 12 {
		r.Series = append(r.Series, Point{T: float64(i), Open: 100, SentPerSec: 50, RecvPerSec: 5000, P50: 1, P90: 2, P99: 4, Max: 9, ServerCPU: 40, GenCPU: 10})
	}
	var b strings.Builder
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	if n := strings.Count(html, "<svg"); n != 6 {
		t.Fatalf("%d charts, want 6 (sent and delivered on charts of their own)", n)
	}
	for _, bad := range []string{"<script", "src=", "href=", "@import", "url("} {
		if strings.Contains(html, bad) {
			t.Fatalf("report holds %q: not self-contained or not escaped", bad)
		}
	}
	if !strings.Contains(html, "LOST 3 of 9 &lt;script&gt;") || !strings.Contains(html, "FAIL") {
		t.Fatal("failure not shown (escaped)")
	}
}
