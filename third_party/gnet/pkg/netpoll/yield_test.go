// Copyright (c) 2026 The BlastBeat Authors. Licensed under the Apache
// License, Version 2.0, as the rest of gnet.

package netpoll

import (
	"testing"
	"time"
)

func TestBlastBeatYield(t *testing.T) {
	var y Yield
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true},                  // the first turn yields
		{time.Microsecond, false},  // the next turn at once: no hand-off
		{YieldInterval - 1, false}, // still inside the interval
		{YieldInterval, true},      // the interval has passed
		{YieldInterval + 1, false}, // counted from the last yield
		{3 * YieldInterval, true},  // after a long blocked wait: at once
	}
	for i, s := range steps {
		if got := y.Due(t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d (+%v): Due = %v, want %v", i, s.at, got, s.want)
		}
	}
	if YieldInterval >= 10*time.Millisecond {
		t.Fatalf("YieldInterval %v: must stay under sysmon's 10 ms (forcePreemptNS)", YieldInterval)
	}
}
