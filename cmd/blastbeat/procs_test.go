package main

import "testing"

func TestProcsFor(t *testing.T) {
	for _, tc := range []struct{ cpus, workers, want int }{
		{1, 1, 3},    // one loop and the bridge, one idle P
		{2, 1, 3},    // this CI machine
		{16, 15, 17}, // the CPUs and one
		{4, 1, 4},    // fewer loops than CPUs: Go's default stands
		{2, 8, 10},   // workers = 8 on 2 CPUs
	} {
		if got := procsFor(tc.cpus, tc.workers); got != tc.want {
			t.Errorf("procsFor(%d, %d) = %d, want %d", tc.cpus, tc.workers, got, tc.want)
		}
	}
}
