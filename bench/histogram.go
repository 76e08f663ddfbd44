package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in nanoseconds in log-linear buckets: exact
// below 256 ns, then 128 buckets per power of two, so a reported percentile
// is within 0.8 % of the true value (the layout of HdrHistogram with two
// significant digits). Values from 0 to about 18 minutes are kept; larger
// ones land in the last bucket (Max stays exact). The zero value is ready;
// it is not safe for concurrent use.
type Histogram struct {
	counts []uint64 // by bucket, allocated on first Record
	n      uint64
	sum    float64 // ns, for the mean
	min    int64
	max    int64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
	histMaxExp  = 40               // 2^40 ns ≈ 18 min
	histBuckets = (histMaxExp-histSubBits)*histSub + histSub
)

// bucketOf maps a value to its bucket.
func bucketOf(v uint64) int {
	shift := bits.Len64(v) - (histSubBits + 1)
	if shift <= 0 {
		return int(v)
	}
	idx := (shift+1)*histSub + int(v>>uint(shift)) - histSub
	if idx >= histBuckets {
		return histBuckets - 1
	}
	return idx
}

// bucketHigh is the largest value that maps to bucket idx.
func bucketHigh(idx int) int64 {
	if idx < 2*histSub {
		return int64(idx)
	}
	shift := idx/histSub - 1
	m := int64(idx%histSub + histSub)
	return (m+1)<<uint(shift) - 1
}

// Record adds one value in nanoseconds; negative values (clock steps) count
// as 0.
func (h *Histogram) Record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	h.counts[bucketOf(uint64(ns))]++
	if h.n == 0 || ns < h.min {
		h.min = ns
	}
	if ns > h.max {
		h.max = ns
	}
	h.n++
	h.sum += float64(ns)
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest value recorded (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min is the smallest value recorded (exact).
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean is the average of the values recorded.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value at or below which a fraction q (0..1) of the
// values lie: the highest value of the bucket holding the ceil(q·n)-th
// smallest value, clamped to [Min, Max]. 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank >= h.n {
		return time.Duration(h.max)
	}
	var seen uint64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		seen += c
		if seen >= rank {
			v := bucketHigh(i)
			v = min(max(v, h.min), h.max)
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h, keeping its buckets.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.n, h.sum, h.min, h.max = 0, 0, 0, 0
}

// histJSON is the sparse wire form of a Histogram (worker to coordinator).
type histJSON struct {
	N       uint64     `json:"n"`
	Sum     float64    `json:"sum"`
	Min     int64      `json:"min"`
	Max     int64      `json:"max"`
	Buckets [][2]int64 `json:"b,omitempty"` // [bucket, count] for non-empty buckets
}

func (h *Histogram) toJSON() *histJSON {
	j := &histJSON{N: h.n, Sum: h.sum, Min: h.min, Max: h.max}
	for i, c := range h.counts {
		if c != 0 {
			j.Buckets = append(j.Buckets, [2]int64{int64(i), int64(c)})
		}
	}
	return j
}

func (j *histJSON) histogram() *Histogram {
	h := &Histogram{}
	if j == nil || j.N == 0 {
		return h
	}
	h.counts = make([]uint64, histBuckets)
	for _, b := range j.Buckets {
		if b[0] >= 0 && b[0] < histBuckets && b[1] > 0 {
			h.counts[b[0]] += uint64(b[1])
		}
	}
	h.n, h.sum, h.min, h.max = j.N, j.Sum, j.Min, j.Max
	return h
}

// seqSet remembers which sequence numbers of one sender a receiver has seen:
// a bitmap that grows with the highest number, so each message is counted
// once, and the highest number seen, so a late arrival counts as out of
// order.
type seqSet struct {
	bits []uint64
	high int64 // highest seq seen; -1 before the first
}

// maxSeq bounds the numbers accepted (a malformed marker must not make the
// bitmap huge): 2^26 messages per sender and receiver.
const maxSeq = 1 << 26

// add records q. dup is true when q was seen before; ooo when q is new but
// lower than a number already seen (delivered out of order); ok is false when
// q is out of range.
func (s *seqSet) add(q int64) (dup, ooo, ok bool) {
	if q < 0 || q >= maxSeq {
		return false, false, false
	}
	if s.bits == nil {
		s.high = -1
	}
	w := int(q >> 6)
	if w >= len(s.bits) {
		n := max(w+1, 2*len(s.bits), 2)
		nb := make([]uint64, n)
		copy(nb, s.bits)
		s.bits = nb
	}
	m := uint64(1) << uint(q&63)
	if s.bits[w]&m != 0 {
		return true, false, true
	}
	s.bits[w] |= m
	if q < s.high {
		return false, true, true
	}
	s.high = q
	return false, false, true
}

// count is the number of distinct numbers seen.
func (s *seqSet) count() int {
	n := 0
	for _, w := range s.bits {
		n += bits.OnesCount64(w)
	}
	return n
}
