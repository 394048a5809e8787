package main

import (
	"math"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{in: nil, want: 0},
		{in: []float64{3}, want: 3},
		{in: []float64{5, 1, 3}, want: 3},
		{in: []float64{4, 1, 3, 2}, want: 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf(
				"median(%v) = %v, want %v",
				tt.in, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	runs := []measurement{
		{Round: 1, Scenario: "get-c64", System: "blastbeat", Unit: "req/s", Value: 30000, P99Ms: 3},
		{Round: 1, Scenario: "get-c64", System: "nginx-proxy", Unit: "req/s", Value: 20000, P99Ms: 5},
		{Round: 2, Scenario: "get-c64", System: "blastbeat", Unit: "req/s", Value: 36000, P99Ms: 2},
		{Round: 2, Scenario: "get-c64", System: "nginx-proxy", Unit: "req/s", Value: 24000, P99Ms: 4},
		{Round: 3, Scenario: "get-c64", System: "blastbeat", Unit: "req/s", Error: "boom"},
		{Round: 3, Scenario: "get-c64", System: "nginx-proxy", Unit: "req/s", Value: 22000, P99Ms: 6},
		{Round: 1, Scenario: "ws-idle", System: "blastbeat", Unit: "B/conn", Value: 2048, Conns: 100},
		{Round: 1, Scenario: "ws-idle", System: "nginx-proxy", Unit: "B/conn", Value: 8192, Conns: 100},
		{Round: 1, Scenario: "ws-idle", System: "nginx-direct", Unit: "B/conn", NA: "no echo"},
		{Round: 1, Scenario: "get-c64", System: "nginx-direct", Unit: "req/s", Error: "crashed"},
	}
	ss := summarize(runs, []string{"get-c64", "ws-idle"}, []string{"blastbeat", "nginx-proxy", "nginx-direct"})
	bb := findSummary(ss, "get-c64", "blastbeat")
	if bb == nil || bb.OK != 2 || bb.Runs != 3 || bb.Value != 33000 || bb.P99Ms != 2.5 {
		t.Fatalf(
			"blastbeat get-c64: %+v",
			bb)
	}
	if math.Abs(bb.Ratio-33000.0/22000) > 1e-9 {
		t.Errorf(
			"ratio %v, want %v",
			bb.Ratio, 33000.0/22000)
	}
	if len(bb.Warnings) != 1 || !strings.Contains(bb.Warnings[0], "1 of 3 runs failed: boom") {
		t.Errorf(
			"warnings %q",
			bb.Warnings)
	}
	if ng := findSummary(ss, "get-c64", "nginx-proxy"); ng.Ratio != 1 || ng.Min != 20000 || ng.Max != 24000 {
		t.Errorf(
			"baseline: %+v",
			ng)
	}
	if d := findSummary(ss, "get-c64", "nginx-direct"); d.Error != "crashed" || d.Ratio != 0 {
		t.Errorf(
			"failed cell: %+v",
			d)
	}
	// Memory: lower is better, so the ratio is baseline / value.
	if idle := findSummary(ss, "ws-idle", "blastbeat"); idle.Ratio != 4 {
		t.Errorf(
			"ws-idle ratio %v, want 4",
			idle.Ratio)
	}
	if na := findSummary(ss, "ws-idle", "nginx-direct"); na.NA != "no echo" || na.OK != 0 {
		t.Errorf(
			"n/a cell: %+v",
			na)
	}
}

func TestSummarizeNoBaseline(t *testing.T) {
	runs := []measurement{{Round: 1, Scenario: "get-c1", System: "blastbeat", Unit: "req/s", Value: 9000}}
	ss := summarize(runs, []string{"get-c1"}, []string{"blastbeat"})
	if ss[0].Ratio != 0 || ss[0].Value != 9000 {
		t.Fatalf(
			"no baseline: %+v",
			ss[0])
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{got: thousands(1234567.4), want: "1,234,567"},
		{got: thousands(999), want: "999"},
		{got: thousands(-1000), want: "-1,000"},
		{got: formatValue(31204.6, "req/s"), want: "31,205 req/s"},
		{got: formatValue(3277, "B/conn"), want: "3.2 KiB/conn"},
		{got: formatBytes(512), want: "512 B"},
		{got: formatMs(0.412), want: "412 µs"},
		{got: formatMs(3.214), want: "3.21 ms"},
		{got: formatMs(0), want: "–"},
		{got: mdEscape("a|b\nc"), want: `a\|b c`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf(
				"got %q, want %q",
				tt.got, tt.want)
		}
	}
}

func TestMarkdownAndChart(t *testing.T) {
	r := &results{
		Config: runConfig{Rounds: 1, DurationS: 2, WarmupS: 1, WSConns: 1000, IdleConns: 10000, WSSIdle: 5000, IdleCap: 15000,
			Systems: []string{"blastbeat", "nginx-proxy"}, Scenarios: []string{"get-c64", "tls", "tls-new", "tls-ws-idle"}},
		Runs: []measurement{
			{Round: 1, Scenario: "get-c64", System: "blastbeat", Unit: "req/s", NA: "bin/blastbeat missing"},
			{Round: 1, Scenario: "get-c64", System: "nginx-proxy", Unit: "req/s", Value: 20000, P99Ms: 5},
			// As an older results.json holds them, from when tls was a
			// placeholder row.
			{Round: 1, Scenario: "tls", System: "blastbeat", Unit: "req/s", NA: "HTTPS not yet implemented"},
			{Round: 1, Scenario: "tls", System: "nginx-proxy", Unit: "req/s", NA: "HTTPS not yet implemented"},
			{Round: 1, Scenario: "tls-new", System: "blastbeat", Unit: "handshakes/s", Value: 5000, P99Ms: 30},
			{Round: 1, Scenario: "tls-new", System: "nginx-proxy", Unit: "handshakes/s", Value: 4000, P99Ms: 40},
			{Round: 1, Scenario: "tls-ws-idle", System: "blastbeat", Unit: "B/conn", Value: 4096, BackendBytesPerCon: 1024, Conns: 5000},
			{Round: 1, Scenario: "tls-ws-idle", System: "nginx-proxy", Unit: "B/conn", Value: 16384, BackendBytesPerCon: 2048, Conns: 5000},
		},
		Quick: true,
	}
	r.Summaries = summarize(r.Runs, r.Config.Scenarios, r.Config.Systems)
	md := r.markdown()
	for _, want := range []string{
		"Quick smoke run",
		"| GET / keep-alive, 64 conns | n/a [1] | 20,000 req/s<br>p99 5.00 ms<br>**×1.00** |",
		"1. blastbeat: bin/blastbeat missing",
		"| HTTPS GET / keep-alive, 64 conns | n/a [2] | n/a [3] |",
		"2. blastbeat: HTTPS not yet implemented",
		"| HTTPS GET /, full TLS handshake per request, 64 conns | 5,000 handshakes/s<br>p99 30.00 ms<br>**×1.25**",
		"| Idle wss:// WebSockets (5,000 asked): proxy RSS per conn | 4.0 KiB/conn<br>backend 1.0 KiB/conn<br>**×4.00** |",
		"| tls-ws-idle | blastbeat | 5,000 | 4.0 KiB | 1.0 KiB | – |",
		"| tls-new | blastbeat | blastbeat |",
		"Connections asked for: tls-ws-idle 5,000;",
		"- HTTPS rows: every system serves",
	} {
		if !strings.Contains(md, want) {
			t.Errorf(
				"RESULTS.md lacks %q:\n%s",
				want, md)
		}
	}
	series, groups := r.chart()
	if len(series) != 2 || len(groups) != 3 || groups[0].label != "get-c64" || groups[0].bars[0].ok || !groups[0].bars[1].ok {
		t.Fatalf(
			"chart data: %v %+v",
			series, groups)
	}
	if g := groups[2]; g.label != "tls-ws-idle" || g.bars[0].value != 4 {
		t.Errorf(
			"tls-ws-idle chart group: %+v",
			g)
	}
}

func TestMarkdownHTTP2(t *testing.T) {
	r := &results{
		Config: runConfig{Rounds: 1, DurationS: 2, WarmupS: 1,
			Systems: []string{"blastbeat", "nginx-proxy", "mongrel2"}, Scenarios: []string{"h2c", "h2-tls"}},
		Machine: machine{H2load: "1.52.0"},
		Runs: []measurement{
			{Round: 1, Scenario: "h2c", System: "blastbeat", Unit: "req/s", Value: 60000, P99Ms: 20, WallSec: 2, ProxyCPUus: 11, TLS: "h2c"},
			{Round: 1, Scenario: "h2c", System: "nginx-proxy", Unit: "req/s", Value: 20000, P99Ms: 120, WallSec: 2, ProxyCPUus: 30,
				Non2xx: 3, Warning: "3 non-2xx, 0 stream errors (errored 0, timeout 0; h2load: 40000 done, 39997 succeeded, 3 failed)"},
			{Round: 1, Scenario: "h2c", System: "mongrel2", Unit: "req/s", NA: "Mongrel2 has no HTTP/2"},
			{Round: 1, Scenario: "h2-tls", System: "blastbeat", Unit: "req/s", Value: 50000, P99Ms: 25, WallSec: 2, Error: "over 1% failed: 900 non-2xx"},
			{Round: 1, Scenario: "h2-tls", System: "nginx-proxy", Unit: "req/s", Value: 18000, P99Ms: 150, WallSec: 2},
			{Round: 1, Scenario: "h2-tls", System: "mongrel2", Unit: "req/s", NA: "Mongrel2 has no HTTP/2"},
		},
	}
	r.Summaries = summarize(r.Runs, r.Config.Scenarios, r.Config.Systems)
	md := r.markdown()
	for _, want := range []string{
		"· h2load 1.52.0 ·",
		"| HTTP/2 cleartext (h2c, prior knowledge) GET /, 100 conns × 10 streams | 60,000 req/s<br>p99 20.00 ms<br>**×3.00**",
		"⚠ [1] | n/a [2] |",
		"1. nginx-proxy: 3 non-2xx, 0 stream errors",
		"2. mongrel2: Mongrel2 has no HTTP/2",
		"| HTTP/2 over TLS (h2 by ALPN) GET /, 100 conns × 10 streams | error [3] | 18,000 req/s<br>p99 150 ms<br>**×1.00** | n/a [2] |",
		"| h2c | blastbeat | blastbeat | 0% | 11.0 |",
		"- HTTP/2 rows: `h2load -t 2 -c 100 -m 10 -D 2s --warm-up-time 1s`",
		"| 1 | h2-tls | blastbeat | **error** 50,000 req/s | 25.00 ms |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf(
				"RESULTS.md lacks %q:\n%s",
				want, md)
		}
	}
}

// TestSummarizePairsRounds: the ratio is the median of each round's own
// ratio (runs of one round share its drift), with their spread; the CPU
// ratio the same way.
func TestSummarizePairsRounds(t *testing.T) {
	var runs []measurement
	for r, v := range [][2]float64{{10, 40}, {20, 10}, {30, 20}} {
		runs = append(runs,
			measurement{Round: r + 1, Scenario: "get-c64", System: "blastbeat", Unit: "req/s", Value: v[0], ProxyCPUus: 10},
			measurement{Round: r + 1, Scenario: "get-c64", System: "nginx-proxy", Unit: "req/s", Value: v[1], ProxyCPUus: 20})
	}
	ss := summarize(runs, []string{"get-c64"}, []string{"blastbeat", "nginx-proxy"})
	bb := findSummary(ss, "get-c64", "blastbeat")
	if bb.Ratio != 1.5 || bb.RatioMin != 0.25 || bb.RatioMax != 2 || bb.ProxyCPURatio != 0.5 {
		t.Fatalf("ratio %v (%v–%v), CPU ratio %v; want 1.5 (0.25–2), 0.5 (the ratio of the medians is 1)",
			bb.Ratio, bb.RatioMin, bb.RatioMax, bb.ProxyCPURatio)
	}
}

// TestSummarizeSteal: the most steal (the hypervisor's share) seen in a
// cell's runs is kept, so that the cell is flagged as disturbed (it was
// measured and never shown).
func TestSummarizeSteal(t *testing.T) {
	runs := []measurement{
		{Round: 1, Scenario: "h2c", System: "blastbeat", Unit: "req/s", Value: 27000, StealPct: 101},
		{Round: 2, Scenario: "h2c", System: "blastbeat", Unit: "req/s", Value: 73000, StealPct: 6},
	}
	ss := summarize(runs, []string{"h2c"}, []string{"blastbeat"})
	if s := findSummary(ss, "h2c", "blastbeat"); s.StealMaxPct != 101 {
		t.Fatalf("steal %v, want 101", s.StealMaxPct)
	}
}
