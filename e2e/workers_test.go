package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestWorkersFollowCPULimit checks the default number of event loops:
// one per CPU but one, counting the CPUs Go's GOMAXPROCS allows (a
// container's CPU limit sets it; here the environment variable does),
// not the host's cores; an explicit `workers` wins.
func TestWorkersFollowCPULimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		procs, extra string
		want         int
	}{
		{"1", "", 1},
		{"3", "", 2},
		{"1", "workers = 3", 3},
	} {
		t.Run(strings.TrimSpace("GOMAXPROCS="+tc.procs+" "+tc.extra), func(t *testing.T) {
			p := startSupervised(t, supervised{
				extra:  tc.extra,
				vhosts: hCatchAll,
				setup:  func() ([]string, []*os.File) { return []string{"GOMAXPROCS=" + tc.procs}, nil },
			})
			waitLog(t, p.proxy, fmt.Sprintf("workers=%d", tc.want))
		})
	}
}
