package server

import (
	"testing"
	"time"
)

// TestStalled: a loop that has not swept for longer than the limit is
// stuck (Stalled, which stops the uWSGI Emperor's heartbeats); its next
// sweep clears it.
func TestStalled(t *testing.T) {
	h := newHarness(t, testOptions())
	now := time.Now()
	h.sweep(now)
	if h.s.Stalled(5 * time.Second) {
		t.Fatal("stalled right after a sweep")
	}
	h.s.tick(now.Add(6 * time.Second)) // the clock moves on; the loop does not sweep
	if !h.s.Stalled(5 * time.Second) {
		t.Fatal("a loop 6 s without a sweep is not stalled at a 5 s limit")
	}
	h.s.loops[0].sweep()
	if h.s.Stalled(5 * time.Second) {
		t.Fatal("still stalled after the loop swept")
	}
}
