package server

import (
	"log/slog"
	"strings"
	"testing"
)

// TestReloadRemovedNodeNotReported: a node a reload takes out of every
// virtual host, with no session left, is no longer in the metrics (its
// node_up 0 stayed for good, and alerts fired for a node removed on
// purpose); one still listed is.
func TestReloadRemovedNodeNotReported(t *testing.T) {
	h := newHarness(t, testOptions())
	o := testOptions()
	o.VHosts[0].Nodes = []string{"n1"} // n2 removed
	if _, err := h.s.Reload(o); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range h.s.Metrics().Nodes {
		names = append(names, n.Name)
	}
	if len(names) != 1 || names[0] != "n1" {
		t.Fatalf("nodes reported after n2 was removed: %v, want [n1]", names)
	}
}

// TestReloadWhileStopping: a reload during the stop is refused (it could
// bind a listener that accepts while the server drains).
func TestReloadWhileStopping(t *testing.T) {
	h := newHarness(t, testOptions())
	h.s.draining.Store(true)
	if _, err := h.s.Reload(testOptions()); err == nil || !strings.Contains(err.Error(), "stopping") {
		t.Fatalf("Reload while stopping: %v, want a refusal", err)
	}
}

// TestLoopsSettledSkipsIdleLoops: a loop that never had a connection has
// nothing queued that its OnOpen could mistake: a reload does not wait
// for it (it waited loopsSettleWait, 5 s, and warned of a stuck loop, on
// any proxy with more loops than connections so far).
func TestLoopsSettledSkipsIdleLoops(t *testing.T) {
	var logs strings.Builder
	o := testOptions()
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	o.Workers = 2
	s, err := New(o) // no connection yet: no loop has a gnet loop
	if err != nil {
		t.Fatal(err)
	}
	s.loopsSettled()
	if strings.Contains(logs.String(), "did not run a task") {
		t.Fatalf("waited for a loop without connections: %s", logs.String())
	}
}
