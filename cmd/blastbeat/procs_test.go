package main

import "testing"

func TestProcsFor(t *testing.T) {
	for _, tc := range []struct{ cpus, pollers, want int }{
		{1, 2, 3},    // one loop (accepting for itself) and the bridge, one idle P
		{2, 2, 3},    // this CI machine
		{16, 17, 18}, // 15 loops, the main reactor, the bridge: one idle P
		{4, 2, 4},    // fewer pollers than CPUs: Go's default stands
		{2, 10, 11},  // workers = 8 on 2 CPUs
	} {
		if got := procsFor(tc.cpus, tc.pollers); got != tc.want {
			t.Errorf("procsFor(%d, %d) = %d, want %d", tc.cpus, tc.pollers, got, tc.want)
		}
	}
}
