package bench

import (
	"strings"
	"testing"
)

func TestCompareMarkdownMedians(t *testing.T) {
	mk := func(p99 float64, ok bool) *Result {
		return &Result{Scenario: ScenarioFanout, OK: ok, Config: Config{RunID: "x"},
			Latency: LatencySummary{P99: p99}, Load: LoadResult{Expected: 1000, Seconds: 1, DeliveriesPerSec: 1000}}
	}
	a := []*Result{mk(3, true), mk(1, true), mk(2, true)}
	b := []*Result{mk(40, true), mk(10, false), mk(20, true)}
	b[1].Failures = []string{"LOST 5 of 1000"}
	md := CompareMarkdown("fanout", "ours", a, "peer", b)
	for _, want := range []string{"### fanout", "| latency p99 (ms) | 2.00 | 20.00 | 0.10 ✓ |", "| runs (median shown) | 3 of 3 runs passed | 2 of 3 runs passed | |", "peer (run x): LOST 5 of 1000", "| deliveries/s achieved | 1000 | 1000 | 1.00 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("missing %q in\n%s", want, md)
		}
	}
	if median([]float64{4, 1, 3, 2}) != 2.5 {
		t.Error("median of an even count")
	}
}
