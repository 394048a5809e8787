// Package hist is the bench's latency histogram, shared by its load
// tools (bench/wsload, bench/tlsload).
package hist

import (
	"math/bits"
	"sync/atomic"
)

// Hist is an HDR-style log-bucketed histogram of non-negative integer
// values (nanoseconds here). Values below subCount are counted exactly;
// above, each power-of-two range is split into subCount equal buckets, so
// any recorded value is known to within 1/subCount (about 3 %) of itself.
// Record is safe for concurrent use (one atomic add); the readers are not
// meant to run concurrently with Record.
type Hist struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Uint64
}

const (
	subBits     = 5
	subCount    = 1 << subBits // buckets per power of two
	histBuckets = (64 - subBits + 1) * subCount
)

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits // ≥ 0
	mant := v >> uint(shift)             // in [subCount, 2·subCount)
	return (shift+1)*subCount + int(mant-subCount)
}

// bucketRange returns the smallest and largest value that fall in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	shift := uint(i/subCount - 1)
	mant := uint64(i%subCount + subCount)
	lo = mant << shift
	return lo, lo + (uint64(1) << shift) - 1
}

// Record adds one value.
func (h *Hist) Record(v uint64) {
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns the number of recorded values.
func (h *Hist) Count() uint64 { return h.total.Load() }

// Max returns the largest recorded value (exact).
func (h *Hist) Max() uint64 { return h.max.Load() }

// Quantile returns the value at quantile q in [0, 1]: the midpoint of the
// bucket holding the ⌈q·n⌉-th smallest value, capped at the exact maximum.
// It returns 0 for an empty histogram.
func (h *Hist) Quantile(q float64) uint64 {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.999999999)
	rank = max(rank, 1)
	rank = min(rank, n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := bucketRange(i)
			return min(lo+(hi-lo)/2, h.max.Load())
		}
	}
	return h.max.Load()
}

// Merge adds o's counts to h.
func (h *Hist) Merge(o *Hist) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(o.total.Load())
	for {
		m, om := h.max.Load(), o.max.Load()
		if om <= m || h.max.CompareAndSwap(m, om) {
			return
		}
	}
}
