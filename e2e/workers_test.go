package e2e

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestWorkersFollowCPULimit checks the default number of event loops:
// one per CPU but one per bridge, counting the CPUs Go's GOMAXPROCS allows (a
// container's CPU limit sets it; here the environment variable does),
// not the host's cores; an explicit `workers` wins. It also checks the
// GOMAXPROCS the proxy runs with: the variable's when it is set, else one
// more than the goroutines that block in epoll_wait (one idle P beside
// the loops, gnet's main reactor where several loops share it, and the
// bridge; see cmd/blastbeat/procs.go), or the CPUs if more.
func TestWorkersFollowCPULimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		procs, extra    string
		want, procsWant int
	}{
		{"1", "", 1, 1},
		{"3", "", 2, 3},
		{"4", "zmq-bridges = 2", 2, 4}, // a CPU per bridge
		{"1", "workers = 3", 3, 1},
		{"", "workers = 40", 40, 43},                    // unset: GOMAXPROCS raised to 43 (if the CPUs are fewer)
		{"", "workers = 40\nreuse-port = true", 40, 42}, // no main reactor: 42
	} {
		if tc.procs == "" && runtime.NumCPU() > tc.procsWant {
			continue // more CPUs than that: Go's default stands, and is not known here
		}
		t.Run(strings.TrimSpace("GOMAXPROCS="+tc.procs+" "+tc.extra), func(t *testing.T) {
			p := startSupervised(t, supervised{
				extra:  tc.extra,
				vhosts: hCatchAll,
				setup:  func() ([]string, []*os.File) { return []string{"GOMAXPROCS=" + tc.procs}, nil },
			})
			waitLog(t, p.proxy, fmt.Sprintf("workers=%d procs=%d\n", tc.want, tc.procsWant))
		})
	}
}
