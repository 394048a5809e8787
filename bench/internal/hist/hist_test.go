package hist

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestBucketRoundTrip(t *testing.T) {
	vals := []uint64{0, 1, 31, 32, 33, 63, 64, 65, 100, 1000, 12345, 1 << 20, 1<<40 + 12345, math.MaxUint64}
	for _, v := range vals {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf(
				"bucketOf(%d) = %d, out of range",
				v, i)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Fatalf(
				"value %d in bucket %d = [%d, %d]",
				v, i, lo, hi)
		}
		if v >= subCount && float64(hi-lo) > float64(lo)/subCount {
			t.Fatalf(
				"bucket %d = [%d, %d] wider than 1/%d of its low end",
				i, lo, hi, subCount)
		}
	}
}

func TestBucketsContiguous(t *testing.T) {
	_, prevHi := bucketRange(0)
	for i := 1; i < histBuckets; i++ {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf(
				"bucket %d = [%d, %d] does not follow %d",
				i, lo, hi, prevHi)
		}
		prevHi = hi
	}
	if prevHi != math.MaxUint64 {
		t.Fatalf(
			"last bucket ends at %d",
			prevHi)
	}
}

func TestQuantileExactSmall(t *testing.T) {
	var h Hist
	for v := uint64(1); v <= 10; v++ {
		h.Record(v)
	}
	if got := h.Quantile(0.5); got != 5 {
		t.Fatalf(
			"p50 of 1..10 = %d, want 5",
			got)
	}
	if got := h.Quantile(1); got != 10 {
		t.Fatalf(
			"p100 of 1..10 = %d, want 10",
			got)
	}
	if h.Count() != 10 || h.Max() != 10 {
		t.Fatalf(
			"count=%d max=%d",
			h.Count(), h.Max())
	}
}

func TestQuantileAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Hist
	vals := make([]uint64, 100000)
	for i := range vals {
		// Log-normal-ish latencies between ~10 µs and ~100 ms, in ns.
		vals[i] = uint64(math.Exp(r.NormFloat64()*1.5 + 12))
		h.Record(vals[i])
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := float64(vals[int(math.Ceil(q*float64(len(vals))))-1])
		got := float64(h.Quantile(q))
		if math.Abs(got-exact)/exact > 1.0/subCount {
			t.Errorf(
				"q%.3f: got %.0f, exact %.0f",
				q, got, exact)
		}
	}
}

func TestQuantileEmptyAndMerge(t *testing.T) {
	var a, b Hist
	if a.Quantile(0.99) != 0 {
		t.Fatal("empty histogram has a quantile")
	}
	a.Record(100)
	b.Record(5000)
	b.Record(5000)
	a.Merge(&b)
	if a.Count() != 3 || a.Max() != 5000 {
		t.Fatalf(
			"merged count=%d max=%d",
			a.Count(), a.Max())
	}
	if got := a.Quantile(0.5); got < 4900 || got > 5000 {
		t.Fatalf(
			"merged p50 = %d, want ≈5000",
			got)
	}
}
