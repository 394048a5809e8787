package yield

import (
	"testing"
	"time"
)

func TestYielder(t *testing.T) {
	var y Yielder
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true},                 // the first turn yields
		{time.Microsecond, false}, // the next turn at once: no hand-off
		{Interval - 1, false},     // still inside the interval
		{Interval, true},          // the interval has passed
		{Interval + 1, false},     // counted from the last yield
		{3 * Interval, true},      // after a long busy stretch
	}
	for i, s := range steps {
		if got := y.Due(t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d (+%v): Due = %v, want %v", i, s.at, got, s.want)
		}
	}
	if Interval >= 10*time.Millisecond {
		t.Fatalf("Interval %v: must stay under sysmon's 10 ms (forcePreemptNS)", Interval)
	}
}
