package server

import (
	"math"
	"testing"
	"time"
)

// TestHistogramSumDoesNotWrap: request_duration_seconds' sum keeps
// growing past 2^63 nanoseconds (292 years of summed durations, which
// 50,000 long polls open at once run up in two days). Before, it was an
// int64 of nanoseconds: it wrapped negative, and Prometheus read a
// counter reset.
func TestHistogramSumDoesNotWrap(t *testing.T) {
	var h hist
	d := time.Duration(math.MaxInt64 / 2)
	h.observe(d)
	h.observe(d)
	h.observe(d)
	var out Histogram
	h.addTo(&out)
	want := 3 * d.Seconds()
	if out.SumSeconds < want*0.999 || out.SumSeconds > want*1.001 {
		t.Fatalf("sum %g s, want %g s", out.SumSeconds, want)
	}
	if out.Counts[len(LatencyBuckets)] != 3 {
		t.Fatalf("counts %v, want 3 past every bound", out.Counts)
	}
}
