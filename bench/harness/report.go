package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// baseline is the system every ratio is taken against.
const baseline = "nginx-proxy"

// results is everything one harness run produced; results.json is it.
type results struct {
	Started      time.Time     `json:"started"`
	Finished     time.Time     `json:"finished"`
	Quick        bool          `json:"quick"`
	StoppedEarly string        `json:"stopped_early,omitempty"`
	Machine      machine       `json:"machine"`
	Config       runConfig     `json:"config"`
	Summaries    []summary     `json:"summaries"`
	Runs         []measurement `json:"runs"`
}

type runConfig struct {
	Rounds      int      `json:"rounds"`
	DurationS   float64  `json:"duration_s"`
	WarmupS     float64  `json:"warmup_s"`
	WSConns     int      `json:"ws_conns"`
	IdleConns   int      `json:"ws_idle_conns"`
	WSSIdle     int      `json:"wss_idle_conns,omitempty"`
	IdleCap     int      `json:"ws_idle_cap"`
	Systems     []string `json:"systems"`
	Scenarios   []string `json:"scenarios"`
	BlastBeatIn []string `json:"blastbeat_set,omitempty"`
	Nodes       int      `json:"blastbeat_nodes,omitempty"` // bench nodes behind BlastBeat (absent: 1)
}

// summary is one cell of the table: the medians over a scenario ×
// system's rounds.
type summary struct {
	Scenario string  `json:"scenario"`
	System   string  `json:"system"`
	Unit     string  `json:"unit"`
	NA       string  `json:"na,omitempty"`
	Error    string  `json:"error,omitempty"`
	Runs     int     `json:"runs"`
	OK       int     `json:"ok"`
	Value    float64 `json:"value"`
	Min      float64 `json:"min"`
	Max      float64 `json:"max"`
	P50Ms    float64 `json:"p50_ms,omitempty"`
	P99Ms    float64 `json:"p99_ms,omitempty"`
	// Ratio is the advantage over nginx proxy_pass: value/baseline for
	// rates, baseline/value for memory per connection; > 1 is better. 0
	// when either side has no number. It is the median of the rounds'
	// own ratios (each round's run against the same round's baseline:
	// rounds drift together), RatioMin and RatioMax their spread; with
	// no round in common, the ratio of the medians.
	Ratio    float64 `json:"ratio_vs_nginx_proxy,omitempty"`
	RatioMin float64 `json:"ratio_min,omitempty"`
	RatioMax float64 `json:"ratio_max,omitempty"`
	// ProxyCPURatio is the proxy's CPU per operation ÷ nginx proxy_pass's,
	// the median of the rounds' own (< 1: the proxy spends less).
	ProxyCPURatio float64 `json:"proxy_cpu_ratio_vs_nginx_proxy,omitempty"`
	ProxyCPUPct   float64 `json:"proxy_cpu_pct,omitempty"`
	BackendCPUPct float64 `json:"backend_cpu_pct,omitempty"`
	OtherCPUPct   float64 `json:"other_cpu_pct,omitempty"`
	// StealMaxPct is the most CPU the hypervisor took from the machine
	// (steal) in one of the runs: a disturbed run's numbers are low.
	StealMaxPct  float64  `json:"steal_max_pct,omitempty"`
	ProxyCPUus   float64  `json:"proxy_cpu_us_per_op,omitempty"`
	BackendCPUus float64  `json:"backend_cpu_us_per_op,omitempty"`
	BackendBPC   float64  `json:"backend_bytes_per_conn,omitempty"`
	Conns        int      `json:"conns,omitempty"`
	ProjConns    int      `json:"projected_conns,omitempty"`
	ProjProxyMiB float64  `json:"projected_proxy_rss_mib,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
}

// lowerIsBetter says whether a unit measures a cost.
func lowerIsBetter(unit string) bool { return unit == "B/conn" }

// finish fills the config and the summaries.
func (r *results) finish(e *env) {
	r.Finished = time.Now()
	r.Quick = e.opts.quick
	r.Config = runConfig{
		Rounds: e.opts.rounds, DurationS: e.opts.dur.Seconds(), WarmupS: e.opts.warmup.Seconds(),
		WSConns: e.opts.wsConns, IdleConns: e.opts.idleConns, WSSIdle: e.opts.wssIdleConns, IdleCap: e.idleCap(),
		Systems: e.opts.systems, Scenarios: e.opts.scenarios, BlastBeatIn: e.opts.bbSet,
	}
	if e.opts.nodes > 1 {
		r.Config.Nodes = e.opts.nodes
	}
	r.Summaries = summarize(r.Runs, e.opts.scenarios, e.opts.systems)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize takes the median of every scenario × system over its good
// runs (no n/a, no error) and the ratio to the baseline's median.
func summarize(runs []measurement, scenarios, systems []string) []summary {
	var out []summary
	for _, sc := range scenarios {
		row := make([]summary, 0, len(systems))
		// Each good run's value and proxy CPU per operation, by system
		// and round, for the rounds' own ratios.
		perRound := map[string]map[int][2]float64{}
		for _, sys := range systems {
			perRound[sys] = map[int][2]float64{}
			s := summary{Scenario: sc, System: sys}
			var val, p50, p99, pc, bc, oc, pus, bus, bbpc, projMiB []float64
			for _, m := range runs {
				if m.Scenario != sc || m.System != sys {
					continue
				}
				s.Runs++
				s.Unit = m.Unit
				switch {
				case m.NA != "":
					if s.NA == "" {
						s.NA = m.NA
					}
					continue
				case m.Error != "":
					if s.Error == "" {
						s.Error = m.Error
					}
					continue
				}
				s.OK++
				perRound[sys][m.Round] = [2]float64{m.Value, m.ProxyCPUus}
				val = append(val, m.Value)
				p50 = append(p50, m.P50Ms)
				p99 = append(p99, m.P99Ms)
				pc = append(pc, m.ProxyCPUPct)
				bc = append(bc, m.BackendCPUPct)
				oc = append(oc, m.OtherCPUPct)
				s.StealMaxPct = math.Max(s.StealMaxPct, m.StealPct)
				pus = append(pus, m.ProxyCPUus)
				bus = append(bus, m.BackendCPUus)
				bbpc = append(bbpc, m.BackendBytesPerCon)
				projMiB = append(projMiB, m.ProjectedProxyMiB)
				s.Conns = max(s.Conns, m.Conns)
				s.ProjConns = max(s.ProjConns, m.ProjectedConns)
				if m.Warning != "" && !slices.Contains(s.Warnings, m.Warning) {
					s.Warnings = append(s.Warnings, m.Warning)
				}
			}
			if s.OK > 0 {
				// Some rounds worked: the cell has a number; the failures
				// become a warning.
				if s.Error != "" {
					s.Warnings = append(s.Warnings, fmt.Sprintf("%d of %d runs failed: %s", s.Runs-s.OK, s.Runs, s.Error))
				}
				s.NA, s.Error = "", ""
				s.Value, s.Min, s.Max = median(val), slices.Min(val), slices.Max(val)
				s.P50Ms, s.P99Ms = median(p50), median(p99)
				s.ProxyCPUPct, s.BackendCPUPct, s.OtherCPUPct = median(pc), median(bc), median(oc)
				s.ProxyCPUus, s.BackendCPUus = median(pus), median(bus)
				s.BackendBPC = median(bbpc)
				s.ProjProxyMiB = median(projMiB)
			} else if s.Error != "" {
				s.NA = ""
			}
			row = append(row, s)
		}
		var base *summary
		for i := range row {
			if row[i].System == baseline && row[i].OK > 0 && row[i].Value > 0 {
				base = &row[i]
			}
		}
		for i := range row {
			s := &row[i]
			if base == nil || s.OK == 0 || s.Value <= 0 {
				continue
			}
			ratio := func(v, b float64) float64 {
				if lowerIsBetter(s.Unit) {
					return b / v
				}
				return v / b
			}
			var rs, cpu []float64
			for r, v := range perRound[s.System] {
				b, ok := perRound[base.System][r]
				if !ok || v[0] <= 0 || b[0] <= 0 {
					continue
				}
				rs = append(rs, ratio(v[0], b[0]))
				if v[1] > 0 && b[1] > 0 {
					cpu = append(cpu, v[1]/b[1])
				}
			}
			if len(rs) == 0 {
				s.Ratio = ratio(s.Value, base.Value)
				continue
			}
			s.Ratio, s.RatioMin, s.RatioMax = median(rs), slices.Min(rs), slices.Max(rs)
			if len(cpu) > 0 {
				s.ProxyCPURatio = median(cpu)
			}
		}
		out = append(out, row...)
	}
	return out
}

// brief is the one-line progress report of a run.
func (m measurement) brief() string {
	if m.NA != "" {
		return "n/a: " + m.NA
	}
	s := ""
	if m.Error != "" {
		s = "ERROR: " + m.Error
		if m.Value <= 0 {
			return s
		}
		s += " — measured anyway: "
	}
	s += formatValue(m.Value, m.Unit)
	if m.Unit == "B/conn" {
		s += fmt.Sprintf(" over %d conns (backend %s)", m.Conns, formatValue(m.BackendBytesPerCon, m.Unit))
	} else {
		s += fmt.Sprintf("  p50 %s p99 %s  cpu proxy %.0f%% backend %.0f%% loadgen %.0f%% other %.0f%%",
			formatMs(m.P50Ms), formatMs(m.P99Ms), m.ProxyCPUPct, m.BackendCPUPct, m.LoadCPUPct, m.OtherCPUPct)
	}
	if m.TLS != "" {
		s += "  (" + m.TLS + ")"
	}
	if m.Warning != "" && m.Error == "" {
		s += "  ⚠ " + m.Warning
	}
	if m.OtherCPUPct > busyOtherPct {
		s += "  ⚠ busy box"
	}
	if m.StealPct > busyOtherPct {
		s += fmt.Sprintf("  ⚠ steal %.0f%%", m.StealPct)
	}
	return s
}

// busyRuns counts the runs during which other processes used more than
// busyOtherPct of a core, and the worst share seen.
func (r *results) busyRuns() (n, of int, worst float64) {
	for _, m := range r.Runs {
		if m.WallSec == 0 {
			continue
		}
		of++
		if m.OtherCPUPct > busyOtherPct || m.StealPct > busyOtherPct {
			n++
		}
		worst = math.Max(worst, math.Max(m.OtherCPUPct, m.StealPct))
	}
	return n, of, worst
}

// formatValue renders a value with its unit: 31,204 req/s; 3.2 KiB/conn.
func formatValue(v float64, unit string) string {
	if unit == "B/conn" {
		return formatBytes(v) + "/conn"
	}
	return thousands(v) + " " + unit
}

func formatBytes(b float64) string {
	switch a := math.Abs(b); {
	case a >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

func thousands(v float64) string {
	n := int64(math.Round(v))
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func formatMs(ms float64) string {
	switch {
	case ms <= 0:
		return "–"
	case ms < 1:
		return fmt.Sprintf("%.0f µs", ms*1000)
	case ms < 100:
		return fmt.Sprintf("%.2f ms", ms)
	default:
		return fmt.Sprintf("%.0f ms", ms)
	}
}

// footnotes numbers distinct n/a and error reasons.
type footnotes struct {
	notes []string
}

func (f *footnotes) ref(note string) string {
	i := slices.Index(f.notes, note)
	if i < 0 {
		f.notes = append(f.notes, note)
		i = len(f.notes) - 1
	}
	return fmt.Sprintf("[%d]", i+1)
}

func findSummary(ss []summary, sc, sys string) *summary {
	for i := range ss {
		if ss[i].Scenario == sc && ss[i].System == sys {
			return &ss[i]
		}
	}
	return nil
}

// markdown renders RESULTS.md.
func (r *results) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# BlastBeat benchmark results")
	w("")
	if r.Quick {
		w("> **Quick smoke run** (`-quick`): one short round. These numbers check that the harness works; they are not results.")
		w("")
	}
	if r.StoppedEarly != "" {
		w("> **Stopped early:** %s. The table holds the runs that finished.", r.StoppedEarly)
		w("")
	}
	if n, of, worst := r.busyRuns(); n > 0 {
		w("> **The machine was not idle:** in %d of %d measured runs, processes outside the bench, or the hypervisor (steal: a virtual machine's CPU given to other guests), took more than %d%% of a core (up to %.0f%%). Those numbers are low and noisy, and a ratio between a disturbed run and a quiet one means little; see the \"other\" and \"steal\" columns under All runs, and rerun on a quiet machine (`-quiet-wait`).", n, of, busyOtherPct, worst)
		w("")
	}
	m := r.Machine
	w("- **Date:** %s (%.0f min)", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Finished.Sub(r.Started).Minutes())
	w("- **Machine:** %d cores (%s), %.1f GiB RAM, %s, open files per process ≤ %d", m.Cores, m.CPU, m.MemGiB, m.Kernel, m.NoFile)
	h2 := ""
	if m.H2load != "" {
		h2 = " · h2load " + m.H2load
	}
	w("- **Software:** BlastBeat %s · %s · nginx %s · wrk %s%s · libzmq %s · mongrel2 %s", orDash(m.BlastBeat), m.Go, orDash(m.Nginx), orDash(m.Wrk), h2, orDash(m.Libzmq), orDash(m.Mongrel2))
	c := r.Config
	w("- **Method:** %d round(s); each round runs every scenario on every system in turn (A B A B …), each run on a freshly started system, %.0f s measured after a %.0f s warm-up; the table shows medians. Load generators (wrk, h2load, bench/wsload, bench/tlsload) run on the same cores as the systems.", c.Rounds, c.DurationS, c.WarmupS)
	w("- **Ratio:** advantage over nginx proxy_pass: this system's rate ÷ nginx proxy_pass's, or, for memory, nginx's bytes per connection ÷ this system's, taken round by round (each run against the same round's nginx run) and shown as the median of the rounds, with their spread. **> 1 is better.**")
	w("")

	var fn footnotes
	w("## Results")
	w("")
	head := "| scenario |"
	sep := "|---|"
	for _, sys := range c.Systems {
		head += " " + systemByName(sys).label + " |"
		sep += "---|"
	}
	w("%s", head)
	w("%s", sep)
	for _, sc := range c.Scenarios {
		row := "| " + scenarioTitle(sc, c) + " |"
		for _, sys := range c.Systems {
			row += " " + cell(findSummary(r.Summaries, sc, sys), &fn, sys) + " |"
		}
		w("%s", row)
	}
	w("")
	if len(fn.notes) > 0 {
		for i, n := range fn.notes {
			w("%d. %s", i+1, n)
		}
		w("")
	}

	w("## CPU")
	w("")
	w("Share of one core over the measured window (200%% = both cores), and CPU time per request or message.")
	w("")
	w("| scenario | system | proxy | proxy CPU | proxy µs/op | backend | backend CPU | backend µs/op |")
	w("|---|---|---|---|---|---|---|---|")
	for _, sc := range c.Scenarios {
		for _, sys := range c.Systems {
			s := findSummary(r.Summaries, sc, sys)
			if s == nil || s.OK == 0 || lowerIsBetter(s.Unit) {
				continue
			}
			d := systemByName(sys)
			be, bcpu, bus := "–", "–", "–"
			if d.backend != "" {
				be, bcpu, bus = d.backend, fmt.Sprintf("%.0f%%", s.BackendCPUPct), fmt.Sprintf("%.1f", s.BackendCPUus)
			}
			w("| %s | %s | %s | %.0f%% | %.1f | %s | %s | %s |", sc, sys, d.proxy, s.ProxyCPUPct, s.ProxyCPUus, be, bcpu, bus)
		}
	}
	w("")

	if idle := idleRows(c.Scenarios); len(idle) > 0 {
		w("## Idle WebSockets")
		w("")
		var asked []string
		for _, sc := range idle {
			n := c.IdleConns
			if sc == "tls-ws-idle" {
				n = c.WSSIdle
			}
			asked = append(asked, fmt.Sprintf("%s %s", sc, thousands(float64(n))))
		}
		w("RSS (VmRSS) of the proxy's processes after the connections opened, minus before, divided by the connections; the backend's the same way. Connections asked for: %s; this machine holds at most %s through a proxy (open-file limit).", strings.Join(asked, ", "), thousands(float64(c.IdleCap)))
		w("")
		w("| scenario | system | conns measured | proxy per conn | backend per conn | projection |")
		w("|---|---|---|---|---|---|")
		for _, sc := range idle {
			for _, sys := range c.Systems {
				s := findSummary(r.Summaries, sc, sys)
				if s == nil || s.OK == 0 {
					continue
				}
				proj := "–"
				if s.ProjConns > 0 {
					proj = fmt.Sprintf("**projected**: %.0f MiB proxy RSS at %s conns", s.ProjProxyMiB, thousands(float64(s.ProjConns)))
				}
				w("| %s | %s | %s | %s | %s | %s |", sc, sys, thousands(float64(s.Conns)), formatBytes(s.Value), formatBytes(s.BackendBPC), proj)
			}
		}
		w("")
	}

	w("## Notes")
	w("")
	w("- nginx return 200 serves `/stream` as a static 16 KiB file (Content-Length, not chunked) and answers `/post` without a backend: it is the ceiling, not a proxy.")
	w("- nginx is configured for the bench: `worker_processes %d`, `listen … reuseport` (each worker its own socket: no uneven accept), `access_log off`, upstream `keepalive 64` (HTTP/2 rows: as many as the requests in flight, 1,000), `keepalive_requests 1000000` on both sides, `client_body_buffer_size 128k` (the 64 KiB POST stays in memory; nginx still buffers the whole body before proxying it).", m.Cores)
	if c.Nodes > 1 {
		w("- BlastBeat runs %d bench node processes (bench1 … bench%d) in one virtual host; the backend's CPU is theirs together.", c.Nodes, c.Nodes)
	}
	if len(c.BlastBeatIn) > 0 {
		w("- BlastBeat's config adds: `%s`.", strings.Join(c.BlastBeatIn, "`, `"))
	}
	w("- Mongrel2 gets the whole request body in one message (`limits.content_length` 1 MiB) and writes an access log (it has no switch to turn it off). Its handler sends `/stream` as one message: Mongrel2 1.12 drops the connection when a chunked response arrives in several.")
	w("- CPU is read from /proc/PID/stat (utime+stime) of the proxy's processes (nginx: master and workers) and of the backend, at the start and end of the measured window; \"other\" is what the rest of the machine used meanwhile (/proc/stat).")
	w("- Errors: a run with over 1%% failed requests (non-2xx, socket errors, broken WebSockets) is an error and stays out of the medians; fewer give a ⚠.")
	w("- p99 is wrk's `--latency` 99th percentile, or the log-bucket histogram (±3%%) of bench/wsload (WebSocket echo) and bench/tlsload (tls-new: connect to last byte), or, for the HTTP/2 rows, the exact 99th percentile (nearest rank) of h2load's `--log-file` (each request's time from its start to the end of its stream; h2load's own summary gives only min, max, mean and sd).")
	if slices.ContainsFunc(c.Scenarios, func(id string) bool { return scenarioByID(id).tls }) {
		w("- HTTPS rows: every system serves the same throwaway ECDSA P-256 certificate (made per run); clients negotiate TLS 1.3 with X25519 (nginx: `ssl_protocols TLSv1.2 TLSv1.3`, otherwise its TLS defaults, session tickets on). `tls-new` makes a full handshake per request (bench/tlsload keeps no sessions); `tls-close` is wrk with `Connection: close`, which resumes each slot's TLS session, so it measures resumed handshakes.")
	}
	if slices.ContainsFunc(c.Scenarios, func(id string) bool { return scenarioByID(id).kind == kindH2 }) {
		w("- HTTP/2 rows: `h2load -t 2 -c 100 -m 10 -D %gs --warm-up-time %gs` (warm-up on the same connections; CPU measured over h2load's main phase only). h2c is HTTP/2 with prior knowledge on a plain port (BlastBeat: its usual listener; nginx: a second one, `listen … http2`, since nginx 1.22 serves only HTTP/2 there); h2-tls offers only `h2` by ALPN (nginx: `listen … ssl http2`). nginx's `keepalive_requests 1000000` also lifts its per-connection request cap on HTTP/2 (by default 1000, then a GOAWAY; h2load does not reconnect). Errors are h2load's 4xx/5xx answers (non-2xx) and its errored and timed-out streams. Mongrel2 has no HTTP/2.", c.DurationS, c.WarmupS)
	}
	w("")

	w("## All runs")
	w("")
	w("CPU columns: share of one core over the measured window for the proxy, the backend, the load generator, everything else on the machine (\"other\": another tenant), and what the hypervisor gave other guests (\"steal\"); either makes the run unreliable.")
	w("")
	w("| round | scenario | system | result | p99 | proxy | backend | loadgen | other | steal | note |")
	w("|---|---|---|---|---|---|---|---|---|---|---|")
	pct := func(v float64) string { return fmt.Sprintf("%.0f%%", v) }
	for _, m := range r.Runs {
		note := m.Warning
		res, p99, pc, bc, lc, oc, st := "–", "–", "–", "–", "–", "–", "–"
		if m.NA != "" {
			res, note = "n/a", m.NA
		} else {
			if m.Value > 0 {
				res = formatValue(m.Value, m.Unit)
			}
			if m.WallSec > 0 {
				p99 = formatMs(m.P99Ms)
				pc, bc, lc, oc, st = pct(m.ProxyCPUPct), pct(m.BackendCPUPct), pct(m.LoadCPUPct), pct(m.OtherCPUPct), pct(m.StealPct)
			}
			if m.Error != "" {
				res, note = "**error** "+res, m.Error
			}
		}
		w("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", m.Round, m.Scenario, m.System, res, p99, pc, bc, lc, oc, st, mdEscape(note))
	}
	return b.String()
}

// idleRows are the idle-memory scenarios among ids, in order.
func idleRows(ids []string) []string {
	var out []string
	for _, id := range ids {
		if scenarioByID(id).kind == kindWSIdle {
			out = append(out, id)
		}
	}
	return out
}

func scenarioTitle(id string, c runConfig) string {
	sc := scenarioByID(id)
	switch id {
	case "ws-echo":
		return fmt.Sprintf("WebSocket echo, %s conns", thousands(float64(c.WSConns)))
	case "ws-idle":
		return fmt.Sprintf("Idle WebSockets (%s asked): proxy RSS per conn", thousands(float64(c.IdleConns)))
	case "tls-ws-idle":
		return fmt.Sprintf("Idle wss:// WebSockets (%s asked): proxy RSS per conn", thousands(float64(c.WSSIdle)))
	}
	return sc.title
}

// cell renders one table cell.
func cell(s *summary, fn *footnotes, sys string) string {
	switch {
	case s == nil:
		return "–"
	case s.NA != "":
		return "n/a " + fn.ref(sys+": "+mdEscape(s.NA))
	case s.OK == 0:
		return "error " + fn.ref(sys+": "+mdEscape(s.Error))
	}
	parts := []string{formatValue(s.Value, s.Unit)}
	if lowerIsBetter(s.Unit) {
		parts = append(parts, "backend "+formatBytes(s.BackendBPC)+"/conn")
	} else {
		parts = append(parts, "p99 "+formatMs(s.P99Ms))
	}
	if s.Ratio > 0 {
		r := fmt.Sprintf("**×%.2f**", s.Ratio)
		if s.RatioMax > s.RatioMin {
			r += fmt.Sprintf(" (rounds ×%.2f–×%.2f)", s.RatioMin, s.RatioMax)
		}
		parts = append(parts, r)
	}
	if s.System == "blastbeat" && !lowerIsBetter(s.Unit) {
		parts = append(parts, fmt.Sprintf("CPU proxy %.0f%% · node %.0f%%", s.ProxyCPUPct, s.BackendCPUPct))
	}
	if s.OtherCPUPct > busyOtherPct {
		parts = append(parts, fmt.Sprintf("⚠ busy box (other %.0f%%)", s.OtherCPUPct))
	}
	if s.StealMaxPct > busyOtherPct {
		parts = append(parts, fmt.Sprintf("⚠ steal up to %.0f%%", s.StealMaxPct))
	}
	if len(s.Warnings) > 0 {
		parts = append(parts, "⚠ "+fn.ref(sys+": "+mdEscape(strings.Join(s.Warnings, "; "))))
	}
	return strings.Join(parts, "<br>")
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// chart builds the SVG chart's data: one group per scenario with a
// ratio, one bar per system.
func (r *results) chart() (series []string, groups []chartGroup) {
	for _, sys := range r.Config.Systems {
		series = append(series, systemByName(sys).label)
	}
	for _, sc := range r.Config.Scenarios {
		g := chartGroup{label: sc}
		has := false
		for _, sys := range r.Config.Systems {
			s := findSummary(r.Summaries, sc, sys)
			bar := chartBar{}
			if s != nil && s.Ratio > 0 {
				bar.value, bar.ok = s.Ratio, true
				has = true
			}
			g.bars = append(g.bars, bar)
		}
		if has {
			groups = append(groups, g)
		}
	}
	return series, groups
}

// rebuildReport reads a results.json and writes the report again from its
// runs (the summaries are recomputed).
func rebuildReport(o options) error {
	b, err := os.ReadFile(o.reportFrom)
	if err != nil {
		return err
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", o.reportFrom, err)
	}
	for _, id := range r.Config.Scenarios {
		if !slices.ContainsFunc(allScenarios, func(s scenario) bool { return s.id == id }) {
			return fmt.Errorf("%s: unknown scenario %q", o.reportFrom, id)
		}
	}
	for _, name := range r.Config.Systems {
		if !slices.ContainsFunc(allSystems, func(s system) bool { return s.name == name }) {
			return fmt.Errorf("%s: unknown system %q", o.reportFrom, name)
		}
	}
	r.Summaries = summarize(r.Runs, r.Config.Scenarios, r.Config.Systems)
	return writeResults(o.out, &r)
}

// writeResults writes RESULTS.md, results.json and results.svg into -out
// and prints the Markdown.
func (e *env) writeResults(r *results) error {
	return writeResults(e.opts.out, r)
}

func writeResults(out string, r *results) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	md := r.markdown()
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	series, groups := r.chart()
	title := "Throughput (memory for the idle rows) relative to nginx proxy_pass — higher is better"
	svg := renderSVG(title, series, groups)
	files := []struct {
		name string
		data []byte
	}{
		{"RESULTS.md", []byte(md)},
		{"results.json", append(js, '\n')},
		{"results.svg", []byte(svg)},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(out, f.name), f.data, 0o644); err != nil {
			return err
		}
	}
	fmt.Println()
	fmt.Print(md)
	fmt.Printf("\nharness: wrote %s, %s, %s\n", filepath.Join(out, "RESULTS.md"), filepath.Join(out, "results.json"), filepath.Join(out, "results.svg"))
	return nil
}
