package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestLogDropped: a source that counts its dropped log lines shows them
// as log_lines_dropped_total (before, only a log line said so: the very
// log that was dropping lines); one that does not leaves it out.
func TestLogDropped(t *testing.T) {
	value := func(src Source) (float64, bool) {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(NewCollector(src))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "blastbeat_log_lines_dropped_total" {
				return mf.GetMetric()[0].GetCounter().GetValue(), true
			}
		}
		return 0, false
	}
	if v, ok := value(logSource{dropped: 7}); !ok || v != 7 {
		t.Errorf("log_lines_dropped_total %v (present %v), want 7", v, ok)
	}
	if _, ok := value(fixedSource{}); ok {
		t.Errorf("log_lines_dropped_total from a source without a log")
	}
}

type logSource struct {
	fixedSource
	dropped uint64
}

func (l logSource) LogDropped() uint64 { return l.dropped }
