package server

import (
	"testing"
	"time"
)

// TestStamp: the proxy's clock counts from New on the monotonic clock (a
// time carrying a monotonic reading, as time.Now's does, maps by its
// monotonic distance from New), so a wall clock step moves no deadline;
// a time without one (a test's time.Unix) maps by its wall distance.
func TestStamp(t *testing.T) {
	s := newHarness(t, testOptions()).s
	if got := s.stamp(s.epoch.Add(3*time.Second)) - s.epochNS; got != int64(3*time.Second) {
		t.Fatalf("stamp of New + 3 s: %v after New", time.Duration(got))
	}
	wall := time.Unix(0, s.epochNS).Add(time.Minute)
	if got := s.stamp(wall) - s.epochNS; got != int64(time.Minute) {
		t.Fatalf("stamp of a wall time a minute on: %v after New", time.Duration(got))
	}
	if s.stamp(time.Now()) < s.epochNS {
		t.Fatal("now stamped before New")
	}
}
