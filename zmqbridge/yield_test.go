package zmqbridge

import (
	"testing"
	"time"
)

func TestYielder(t *testing.T) {
	var y yielder
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true},                  // the first turn yields
		{time.Microsecond, false},  // the next turn at once: no hand-off
		{yieldInterval - 1, false}, // still inside the interval
		{yieldInterval, true},      // the interval has passed
		{yieldInterval + 1, false}, // counted from the last yield
		{3 * yieldInterval, true},  // after a long busy stretch
	}
	for i, s := range steps {
		if got := y.due(t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d (+%v): due = %v, want %v", i, s.at, got, s.want)
		}
	}
	if yieldInterval >= 10*time.Millisecond {
		t.Fatalf("yieldInterval %v: must stay under sysmon's 10 ms (forcePreemptNS)", yieldInterval)
	}
}
