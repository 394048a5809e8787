package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/blastbeat/blastbeat/server"
)

type fixedSource server.Metrics

func (f fixedSource) Metrics() server.Metrics { return server.Metrics(f) }

// TestCollectSkipsRefusedLabels: a sample whose label Prometheus refuses
// (a node name that is not UTF-8; config refuses those) is left out, and
// the scrape goes on; before, Collect panicked in Gather's goroutine and
// the panic ended the process.
func TestCollectSkipsRefusedLabels(t *testing.T) {
	src := fixedSource{Nodes: []server.NodeMetrics{{Name: "caf\xe9", Up: true}, {Name: "ok", Up: true}}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(src))
	mfs, err := reg.Gather()
	if err != nil {
		t.Logf("Gather: %v", err)
	}
	up := 0
	for _, mf := range mfs {
		if mf.GetName() == "blastbeat_node_up" {
			up = len(mf.GetMetric())
		}
	}
	if up != 1 {
		t.Fatalf("blastbeat_node_up has %d samples, want 1 (the valid node)", up)
	}
}
