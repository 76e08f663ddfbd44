package bench

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestHistogramQuantilesKnownInputs(t *testing.T) {
	var h Histogram
	for v := 1; v <= 1000; v++ { // 1..1000 ms, uniform
		h.Record(int64(time.Duration(v) * time.Millisecond))
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.999, 999 * time.Millisecond}, {1, time.Second}} {
		got := h.Quantile(tt.q)
		if rel := math.Abs(float64(got-tt.want)) / float64(tt.want); rel > 0.008 {
			t.Errorf("q%.3f = %v, want %v within 0.8%%", tt.q, got, tt.want)
		}
	}
	if h.Count() != 1000 || h.Min() != time.Millisecond || h.Max() != time.Second {
		t.Fatalf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
	if m := h.Mean(); m != 500500*time.Microsecond {
		t.Fatalf("mean %v", m)
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	var h Histogram
	for _, v := range []int64{3, 1, 2, 200, 255} {
		h.Record(v)
	}
	if h.Quantile(0.2) != 1 || h.Quantile(0.4) != 2 || h.Quantile(0.6) != 3 || h.Quantile(0.8) != 200 || h.Quantile(1) != 255 {
		t.Fatalf("quantiles of small values are not exact: %v %v %v %v", h.Quantile(0.2), h.Quantile(0.4), h.Quantile(0.6), h.Quantile(0.8))
	}
	var neg Histogram
	neg.Record(-5)
	if neg.Max() != 0 || neg.Count() != 1 {
		t.Fatal("a negative value must count as 0")
	}
}

func TestHistogramBucketsCoverValues(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<41; v = v*9/8 + 1 {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d)=%d below the previous %d", v, b, prev)
		}
		prev = b
		if v < 1<<histMaxExp && (int64(v) > bucketHigh(b) || (b > 0 && int64(v) <= bucketHigh(b-1))) {
			t.Fatalf("value %d not inside bucket %d (high %d, previous high %d)", v, b, bucketHigh(b), bucketHigh(b-1))
		}
		if hi := bucketHigh(b); v >= 256 && v < 1<<histMaxExp && float64(hi-int64(v))/float64(v) > 0.008 {
			t.Fatalf("bucket %d of %d is wider than 0.8%%", b, v)
		}
	}
}

func TestHistogramMergeAndWire(t *testing.T) {
	var a, b, all Histogram
	for v := int64(1); v <= 10000; v++ {
		all.Record(v * 1000)
		if v%2 == 0 {
			a.Record(v * 1000)
		} else {
			b.Record(v * 1000)
		}
	}
	raw, err := json.Marshal(a.toJSON())
	if err != nil {
		t.Fatal(err)
	}
	var j histJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	merged := j.histogram()
	merged.Merge(&b)
	for _, q := range []float64{0, 0.5, 0.99, 0.999, 1} {
		if merged.Quantile(q) != all.Quantile(q) {
			t.Fatalf("q%v: merged %v, direct %v", q, merged.Quantile(q), all.Quantile(q))
		}
	}
	if merged.Count() != all.Count() || merged.Min() != all.Min() || merged.Max() != all.Max() || merged.Mean() != all.Mean() {
		t.Fatal("merged summary differs")
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || (&histJSON{}).histogram().Count() != 0 {
		t.Fatal("empty histogram")
	}
}

// Each message is counted once; duplicates and late arrivals are counted.
func TestSeqSetCountsKnownSequence(t *testing.T) {
	var s seqSet
	var dups, ooo, bad int
	for _, q := range []int64{0, 1, 2, 2, 1, 5, 3, 4, 700, 64, 64, -1, maxSeq} {
		dup, late, ok := s.add(q)
		switch {
		case !ok:
			bad++
		case dup:
			dups++
		case late:
			ooo++
		}
	}
	// new: 0 1 2 5 3 4 700 64; dups: 2 1 64; late: 3 4 64; invalid: -1 maxSeq
	if got := s.count(); got != 8 {
		t.Errorf("distinct %d, want 8", got)
	}
	if dups != 3 || ooo != 3 || bad != 2 {
		t.Errorf("dups %d ooo %d bad %d, want 3 3 2", dups, ooo, bad)
	}
}
