package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type scenarioKind int

const (
	kindWrk    scenarioKind = iota
	kindTLSNew              // bench/tlsload: a full TLS handshake per request
	kindWSEcho
	kindWSIdle
	kindH2 // h2load: HTTP/2, h2c with prior knowledge or h2 over TLS (ALPN)
)

// scenario is one row of the results table.
type scenario struct {
	id      string
	title   string
	kind    scenarioKind
	unit    string // of value: req/s, msgs/s, B/conn
	path    string
	threads int
	conns   int
	streams int // h2load -m: concurrent streams per connection
	headers []string
	post    bool // POST postBodySize bytes (wrk Lua script)
	tls     bool // over HTTPS / wss://, with the run's throwaway certificate
}

const (
	postBodySize = 64 << 10
	streamSize   = 16 << 10 // 16 chunks of 1 KiB
)

var (
	helloBody  = []byte("Hello, World!")
	streamBody = bytes.Repeat([]byte("x"), streamSize)
)

var allScenarios = []scenario{
	{id: "get-c64", title: "GET / keep-alive, 64 conns", kind: kindWrk, unit: "req/s", path: "/", threads: 2, conns: 64},
	{id: "get-c1", title: "GET / keep-alive, 1 conn (latency)", kind: kindWrk, unit: "req/s", path: "/", threads: 1, conns: 1},
	{id: "get-close", title: "GET /, new connection per request, 64 conns", kind: kindWrk, unit: "req/s", path: "/", threads: 2, conns: 64, headers: []string{"Connection: close"}},
	{id: "post-64k", title: "POST 64 KiB to /post, 64 conns", kind: kindWrk, unit: "req/s", path: "/post", threads: 2, conns: 64, post: true},
	{id: "stream", title: "GET /stream, chunked 16 × 1 KiB, 64 conns", kind: kindWrk, unit: "req/s", path: "/stream", threads: 2, conns: 64},
	{id: "ws-echo", title: "WebSocket echo, 1,000 conns", kind: kindWSEcho, unit: "msgs/s"},
	{id: "ws-idle", title: "Idle WebSockets: proxy RSS per conn", kind: kindWSIdle, unit: "B/conn"},
	{id: "tls", title: "HTTPS GET / keep-alive, 64 conns", kind: kindWrk, unit: "req/s", path: "/", threads: 2, conns: 64, tls: true},
	{id: "tls-new", title: "HTTPS GET /, full TLS handshake per request, 64 conns", kind: kindTLSNew, unit: "handshakes/s", path: "/", conns: 64, headers: []string{"Connection: close"}, tls: true},
	{id: "tls-close", title: "HTTPS GET /, new connection per request, TLS session resumed (wrk), 64 conns", kind: kindWrk, unit: "req/s", path: "/", threads: 2, conns: 64, headers: []string{"Connection: close"}, tls: true},
	{id: "tls-ws-idle", title: "Idle wss:// WebSockets: proxy RSS per conn", kind: kindWSIdle, unit: "B/conn", tls: true},
	{id: "h2c", title: "HTTP/2 cleartext (h2c, prior knowledge) GET /, 100 conns × 10 streams", kind: kindH2, unit: "req/s", path: "/", threads: 2, conns: 100, streams: 10},
	{id: "h2-tls", title: "HTTP/2 over TLS (h2 by ALPN) GET /, 100 conns × 10 streams", kind: kindH2, unit: "req/s", path: "/", threads: 2, conns: 100, streams: 10, tls: true},
}

// measurement is one run: one round × scenario × system.
type measurement struct {
	Round    int     `json:"round"`
	Scenario string  `json:"scenario"`
	System   string  `json:"system"`
	NA       string  `json:"na,omitempty"`    // the system cannot do this
	Error    string  `json:"error,omitempty"` // it should have, and failed
	Warning  string  `json:"warning,omitempty"`
	Unit     string  `json:"unit"`
	Value    float64 `json:"value"` // req/s, msgs/s, or proxy bytes per idle conn
	P50Ms    float64 `json:"p50_ms,omitempty"`
	P90Ms    float64 `json:"p90_ms,omitempty"`
	P99Ms    float64 `json:"p99_ms,omitempty"`
	Count    int64   `json:"count,omitempty"` // requests or messages measured
	Non2xx   int64   `json:"non2xx,omitempty"`
	SockErrs int64   `json:"socket_errors,omitempty"`
	WallSec  float64 `json:"wall_s,omitempty"` // the CPU sampling window
	TLS      string  `json:"tls,omitempty"`    // tls-new, h2 rows: version, cipher suite, group (and ALPN protocol) negotiated

	ProxyCPUPct   float64 `json:"proxy_cpu_pct,omitempty"` // % of one core
	BackendCPUPct float64 `json:"backend_cpu_pct,omitempty"`
	LoadCPUPct    float64 `json:"loadgen_cpu_pct,omitempty"` // wrk or wsload
	OtherCPUPct   float64 `json:"other_cpu_pct,omitempty"`   // everything else on the machine
	StealPct      float64 `json:"steal_pct,omitempty"`
	ProxyCPUus    float64 `json:"proxy_cpu_us_per_op,omitempty"` // CPU µs per request/message
	BackendCPUus  float64 `json:"backend_cpu_us_per_op,omitempty"`

	// ws-idle
	Conns              int     `json:"conns,omitempty"`
	ProxyRSSBeforeKiB  int64   `json:"proxy_rss_before_kib,omitempty"`
	ProxyRSSAfterKiB   int64   `json:"proxy_rss_after_kib,omitempty"`
	BackendBytesPerCon float64 `json:"backend_bytes_per_conn,omitempty"`
	ProjectedConns     int     `json:"projected_conns,omitempty"`
	ProjectedProxyMiB  float64 `json:"projected_proxy_rss_mib,omitempty"`
}

// busyOtherPct is the CPU share (of one core) used by processes outside
// the run above which a run is flagged: the machine was not idle.
const busyOtherPct = 25

// cpuSample is the CPU time of an instance's processes, and of the whole
// machine, at one moment.
type cpuSample struct {
	at             time.Time
	proxy, backend uint64 // ticks
	sys            sysCPU
}

func sampleCPU(in *instance) cpuSample {
	return cpuSample{at: time.Now(), proxy: cpuTicks(in.proxyPIDs), backend: cpuTicks(in.backendPIDs), sys: readSysCPU()}
}

// fillCPU sets the CPU fields of m from two samples, the load generator's
// ticks in between and the operations done. What the machine spent beyond
// proxy, backend and load generator is "other": another tenant (the
// report flags runs where it passed busyOtherPct).
func fillCPU(m *measurement, a, b cpuSample, loadTicks uint64, ops int64) {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return
	}
	pct := func(ticks uint64) float64 { return 100 * float64(ticks) / clockTicks / wall }
	m.WallSec = wall
	dp, db := b.proxy-a.proxy, b.backend-a.backend
	m.ProxyCPUPct, m.BackendCPUPct, m.LoadCPUPct = pct(dp), pct(db), pct(loadTicks)
	if busy, ours := b.sys.busy-a.sys.busy, dp+db+loadTicks; busy > ours {
		m.OtherCPUPct = pct(busy - ours)
	}
	m.StealPct = pct(b.sys.steal - a.sys.steal)
	if ops > 0 {
		m.ProxyCPUus = 1e6 * float64(dp) / clockTicks / float64(ops)
		m.BackendCPUus = 1e6 * float64(db) / clockTicks / float64(ops)
	}
}

// warn adds a warning to the run.
func (m *measurement) warn(s string) {
	if m.Warning != "" {
		m.Warning += "; "
	}
	m.Warning += s
}

// rusageTicks is a finished child's CPU time in clockTicks.
func rusageTicks(p *proc) uint64 {
	if p.cmd.ProcessState == nil {
		return 0
	}
	d := p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
	return uint64(d.Seconds() * clockTicks)
}

// runOne does one measured run: start the system, probe, warm up,
// measure, stop.
func (e *env) runOne(ctx context.Context, sys system, sc scenario, round int, profile string) (m measurement) {
	m = measurement{Round: round, Scenario: sc.id, System: sys.name, Unit: sc.unit}
	if why := e.missing[sys.name]; why != "" {
		m.NA = why
		return m
	}
	if why := e.noTool(sc); why != "" {
		m.NA = why
		return m
	}
	if why := sys.skip(e, sc); why != "" {
		m.NA = why
		return m
	}
	isWS := sc.kind == kindWSEcho || sc.kind == kindWSIdle
	wsKey := sys.name // ws:// and wss:// are probed apart
	if sc.tls {
		wsKey += " wss"
	}
	if why := e.noWS[wsKey]; isWS && why != "" {
		m.NA = why + " (probed earlier in this run)"
		return m
	}
	dir, err := e.runDir(fmt.Sprintf("r%d-%s-%s", round, sc.id, sys.name))
	if err != nil {
		m.Error = err.Error()
		return m
	}
	in, err := sys.start(ctx, e, dir, launch{profile: profile, tls: sc.tls, h2: sc.kind == kindH2, inflight: sc.conns * max(1, sc.streams)})
	if err != nil {
		m.Error = "start: " + err.Error()
		return m
	}
	defer in.stop(e)
	switch sc.kind {
	case kindWrk:
		e.runWrk(ctx, in, sc, &m)
	case kindTLSNew:
		e.runTLSNew(ctx, in, sc, &m)
	case kindWSEcho:
		e.runWSEcho(ctx, in, sc, &m)
	case kindWSIdle:
		e.runWSIdle(ctx, in, sc, &m)
	case kindH2:
		e.runH2(ctx, in, sc, &m)
	}
	if ctx.Err() != nil && m.Error == "" {
		m.Error = "stopped: " + context.Cause(ctx).Error()
	}
	if isWS && m.NA != "" {
		e.noWS[wsKey] = m.NA // the next WebSocket runs need not start it
	}
	return m
}

// noTool says why a scenario cannot run here at all ("" = it can).
func (e *env) noTool(sc scenario) string {
	if sc.kind == kindH2 && e.h2load == "" {
		return "h2load not installed (apt-get install -y nghttp2-client)"
	}
	return ""
}

// probeHTTP sends one request of the scenario and checks the answer; an
// https:// base must present a certificate that roots verifies. The HTTP/2
// rows ask for HTTP/2 only (h2c with prior knowledge on http://, h2 by
// ALPN on https://) and check that the answer came over it.
func probeHTTP(ctx context.Context, base string, sc scenario, roots *x509.CertPool) error {
	var body io.Reader
	method := "GET"
	if sc.post {
		method = "POST"
		body = bytes.NewReader(make([]byte, postBodySize))
	}
	req, err := http.NewRequestWithContext(ctx, method, base+sc.path, body)
	if err != nil {
		return err
	}
	for _, h := range sc.headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	// Keep-alive unless the scenario says otherwise: a server may end a
	// streamed response early for a client that asked to close.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	if sc.kind == kindH2 {
		tr.Protocols = new(http.Protocols)
		if sc.tls {
			tr.Protocols.SetHTTP2(true)
		} else {
			tr.Protocols.SetUnencryptedHTTP2(true)
		}
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %s", method, sc.path, resp.Status)
	}
	if sc.kind == kindH2 && resp.ProtoMajor != 2 {
		return fmt.Errorf("%s %s: answered over %s, not HTTP/2", method, sc.path, resp.Proto)
	}
	want := helloBody
	if sc.path == "/stream" {
		want = streamBody
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s %s: body of %d bytes is not the expected %d", method, sc.path, len(got), len(want))
	}
	return nil
}

func (e *env) runWrk(ctx context.Context, in *instance, sc scenario, m *measurement) {
	if err := probeHTTP(ctx, in.base(sc), sc, e.pki.pool); err != nil {
		m.Error = "probe: " + err.Error()
		return
	}
	script := ""
	if sc.post {
		script = e.postScript
	}
	url := in.base(sc) + sc.path
	if e.opts.warmup > 0 {
		if _, err := e.tool(ctx, "wrk-warmup", append([]string{e.wrk}, wrkArgs(sc.threads, sc.conns, e.opts.warmup, sc.headers, script, url)...), e.opts.warmup+30*time.Second); err != nil {
			m.Error = "warm-up: " + err.Error()
			return
		}
	}
	// A Connection: close row counts the connections the kernel accepted
	// over the run (closesPerRequest).
	var opens0, opens1 uint64
	var opensErr error
	if asksClose(sc) {
		opens0, opensErr = passiveOpens()
	}
	a := sampleCPU(in)
	out, load, err := e.toolCPU(ctx, "wrk", append([]string{e.wrk}, wrkArgs(sc.threads, sc.conns, e.opts.dur, sc.headers, script, url)...), e.opts.dur+30*time.Second)
	b := sampleCPU(in)
	if asksClose(sc) && opensErr == nil {
		opens1, opensErr = passiveOpens()
	}
	if err != nil {
		m.Error = "wrk: " + err.Error()
		return
	}
	r, err := parseWrk(out)
	if err != nil {
		m.Error = err.Error()
		return
	}
	if asksClose(sc) && opensErr == nil && opens1 >= opens0 {
		if ok, w := closesPerRequest(opens1-opens0, uint64(r.Requests)); !ok {
			m.warn(w)
		}
	}
	m.Value, m.Count = r.Rate, r.Requests
	m.P50Ms, m.P90Ms, m.P99Ms = r.P50Ms, r.P90Ms, r.P99Ms
	m.Non2xx, m.SockErrs = r.Non2xx, r.SocketErrors()
	if bad := r.Non2xx + r.SocketErrors(); bad > 0 {
		w := fmt.Sprintf("%d non-2xx, %d socket errors (connect %d, read %d, write %d, timeout %d)",
			r.Non2xx, r.SocketErrors(), r.ConnErrs, r.ReadErrs, r.WriteErrs, r.Timeouts)
		m.warn(w)
		if r.Requests == 0 || float64(bad) > 0.01*float64(r.Requests) {
			m.Error = fmt.Sprintf("over 1%% failed: %s of %d requests", w, r.Requests)
		}
	}
	fillCPU(m, a, b, load, r.Requests)
}

// runH2 drives an HTTP/2 row with h2load: sc.conns connections with
// sc.streams concurrent streams each, warmed up (--warm-up-time) on the
// same connections. CPU is sampled over h2load's main phase, from the
// first worker's "started" line to the last worker's "over" line. p50 and
// p99 come from h2load's --log-file (one line per request), since its
// summary has no percentiles.
func (e *env) runH2(ctx context.Context, in *instance, sc scenario, m *measurement) {
	url := in.h2(sc)
	if url == "" {
		m.Error = "no HTTP/2 listener"
		return
	}
	if err := probeHTTP(ctx, url, sc, e.pki.pool); err != nil {
		m.Error = "probe: " + err.Error()
		return
	}
	logFile := filepath.Join(e.logDir, fmt.Sprintf("h2load-%03d.tsv", e.runs))
	os.Remove(logFile) // h2load appends to it
	if !e.opts.keep {
		defer os.Remove(logFile)
	}
	argv := append([]string{e.h2load}, h2loadArgs(sc.threads, sc.conns, sc.streams, e.opts.dur, e.opts.warmup, sc.tls, logFile, url+sc.path)...)
	lr, err := e.startLines(procSpec{name: "h2load", argv: argv})
	if err != nil {
		m.Error = err.Error()
		return
	}
	defer lr.p.stop(time.Second)
	var (
		out                  strings.Builder
		a, b                 cpuSample
		loadA, loadB         uint64
		workers, started, ov int
	)
	sampleB := func() {
		b = sampleCPU(in)
		if st, err := readStat(lr.p.pid()); err == nil {
			loadB = st.ticks
		}
	}
	timeout := time.NewTimer(e.opts.warmup + e.opts.dur + 60*time.Second)
	defer timeout.Stop()
read:
	for {
		select {
		case l, ok := <-lr.lines:
			if !ok {
				break read
			}
			out.WriteString(l + "\n")
			switch {
			case strings.HasPrefix(l, h2loadSpawn):
				workers++
			case strings.HasPrefix(l, h2loadMainStart):
				if started == 0 {
					a = sampleCPU(in)
					if st, err := readStat(lr.p.pid()); err == nil {
						loadA = st.ticks
					}
				}
				started++
			case strings.HasPrefix(l, h2loadMainOver):
				if ov++; ov == workers {
					sampleB()
				}
			}
		case <-ctx.Done():
			m.Error = "h2load: " + context.Cause(ctx).Error()
			return
		case <-timeout.C:
			m.Error = fmt.Sprintf("h2load ran past %s: %s", e.opts.warmup+e.opts.dur+60*time.Second, tail(out.String(), 300))
			return
		}
	}
	if !lr.p.wait(5 * time.Second) {
		m.Error = "h2load closed its output but did not exit"
		return
	}
	if lr.p.err != nil {
		m.Error = fmt.Sprintf("h2load: %v: %s", lr.p.err, strings.TrimSpace(tail(out.String()+lr.p.logTail(300), 400)))
		return
	}
	if started == 0 {
		m.Error = "h2load never started its main phase: " + tail(out.String(), 300)
		return
	}
	if b.at.IsZero() {
		sampleB() // fewer "over" lines than workers: take the end as it came
	}
	// Its summary stays with the run's logs (-keep).
	_ = os.WriteFile(strings.TrimSuffix(logFile, ".tsv")+".out", []byte(out.String()), 0o644)
	r, err := parseH2load(out.String())
	if err != nil {
		m.Error = err.Error()
		return
	}
	// h2load writes its own complaints (could not connect, no ALPN
	// protocol) to stderr, which went to its log.
	stderr := strings.TrimSpace(lr.p.logTail(300))
	m.TLS = r.TLS()
	want := "h2c"
	if sc.tls {
		want = "h2"
	}
	if r.Done == 0 {
		m.Error = fmt.Sprintf("h2load: no request done (protocol %q) %s", r.Protocol, stderr)
		return
	}
	if r.Protocol != want {
		m.Error = fmt.Sprintf("h2load negotiated %q, not %s", r.Protocol, want)
		return
	}
	m.Value, m.Count = r.Rate, r.Done
	m.Non2xx, m.SockErrs = r.Non2xx(), r.StreamErrors()
	if f, err := os.Open(logFile); err != nil {
		m.warn(fmt.Sprintf("no per-request log (%v): p99 is h2load's max request time", err))
		m.P99Ms = r.ReqMaxMs
	} else {
		lat, err := parseH2loadLog(f)
		f.Close()
		switch {
		case err != nil || lat.N == 0:
			m.warn(fmt.Sprintf("per-request log unusable (%v, %d answers): p99 is h2load's max request time", err, lat.N))
			m.P99Ms = r.ReqMaxMs
		default:
			m.P50Ms, m.P90Ms, m.P99Ms = lat.P50Ms, lat.P90Ms, lat.P99Ms
			if lat.Malformed > 0 {
				m.warn(fmt.Sprintf("%d malformed lines in h2load's log", lat.Malformed))
			}
			if gap := time.Duration(lat.MaxGapMs * float64(time.Millisecond)); gap >= time.Second {
				m.warn(fmt.Sprintf("stall: no request ended for %s", gap.Round(time.Millisecond)))
			}
		}
	}
	if bad := r.Non2xx() + r.StreamErrors(); bad > 0 {
		w := fmt.Sprintf("%d non-2xx, %d stream errors (errored %d, timeout %d; h2load: %d done, %d succeeded, %d failed)",
			r.Non2xx(), r.StreamErrors(), r.Errored, r.Timeout, r.Done, r.Succeeded, r.Failed)
		m.warn(w)
		if float64(bad) > 0.01*float64(r.Done) {
			m.Error = fmt.Sprintf("over 1%% failed: %s", w)
		}
	}
	if stderr != "" {
		m.warn("h2load: " + stderr)
	}
	fillCPU(m, a, b, loadB-min(loadA, loadB), r.Done)
}

// tool runs a load tool to completion, bounded by timeout, and returns
// its stdout.
func (e *env) tool(ctx context.Context, name string, argv []string, timeout time.Duration) (string, error) {
	out, _, err := e.toolCPU(ctx, name, argv, timeout)
	return out, err
}

// toolCPU is tool that also returns the CPU ticks the tool used.
func (e *env) toolCPU(ctx context.Context, name string, argv []string, timeout time.Duration) (string, uint64, error) {
	var out bytes.Buffer
	p, err := e.reg.start(procSpec{name: name, argv: argv, logDir: e.logDir, stdout: &out})
	if err != nil {
		return "", 0, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop(time.Second)
		return out.String(), 0, context.Cause(ctx)
	case <-time.After(timeout):
		p.stop(time.Second)
		return out.String(), 0, fmt.Errorf("%s ran past %s", name, timeout)
	}
	if p.err != nil {
		return out.String(), 0, fmt.Errorf("%s: %v: %s", name, p.err, strings.TrimSpace(tail(out.String()+p.logTail(300), 400)))
	}
	return out.String(), rusageTicks(p), nil
}

// probeWS tries one handshake and one echo; the error says why the system
// has no WebSocket. A wss:// URL is verified against the run's CA.
func (e *env) probeWS(ctx context.Context, url string) error {
	_, err := e.tool(ctx, "wsload-probe", []string{e.bins.wsload, "-mode", "probe", "-url", url, "-cacert", e.pki.ca, "-timeout", "3s"}, 10*time.Second)
	if err != nil {
		// wsload's own last word is the reason ("handshake: …").
		msg := err.Error()
		if i := strings.LastIndex(msg, "wsload: "); i >= 0 {
			msg = msg[i+len("wsload: "):]
		}
		return fmt.Errorf("%s", strings.TrimSpace(msg))
	}
	return nil
}

// lineReader runs a child whose stdout the harness reads line by line.
type lineReader struct {
	p     *proc
	lines chan string
}

func (e *env) startLines(spec procSpec) (*lineReader, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	spec.stdout = w
	spec.logDir = e.logDir
	p, err := e.reg.start(spec)
	w.Close() // the child holds its own copy
	if err != nil {
		r.Close()
		return nil, err
	}
	lr := &lineReader{p: p, lines: make(chan string, 16)}
	go func() {
		defer r.Close()
		defer close(lr.lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lr.lines <- sc.Text()
		}
	}()
	return lr, nil
}

// next returns the next line starting with prefix, skipping others.
func (lr *lineReader) next(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case l, ok := <-lr.lines:
			if !ok {
				lr.p.wait(2 * time.Second)
				return "", fmt.Errorf("%s ended before %q: %v %s", lr.p.name, prefix, lr.p.err, strings.TrimSpace(lr.p.logTail(300)))
			}
			if strings.HasPrefix(l, prefix) {
				return l, nil
			}
		case <-ctx.Done():
			return "", context.Cause(ctx)
		case <-t.C:
			return "", fmt.Errorf("no %q from %s within %s", prefix, lr.p.name, timeout)
		}
	}
}

// wsEchoResult mirrors wsload's echo JSON.
type wsEchoResult struct {
	Conns      int     `json:"conns"`
	Connected  int     `json:"connected"`
	Failed     int     `json:"failed"`
	Msgs       int64   `json:"msgs"`
	Rate       float64 `json:"rate"`
	P50us      float64 `json:"p50_us"`
	P90us      float64 `json:"p90_us"`
	P99us      float64 `json:"p99_us"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error"`
}

// measured runs a load tool that prints "MEASURE" when its measured
// phase starts and one JSON line when it ends (wsload -mode echo,
// tlsload). It samples the system's CPU over that window and returns the
// JSON line, the two samples and the tool's CPU ticks in between.
func (e *env) measured(ctx context.Context, in *instance, name string, argv []string, warmup time.Duration) (line string, a, b cpuSample, load uint64, err error) {
	lr, err := e.startLines(procSpec{name: name, argv: argv})
	if err != nil {
		return "", a, b, 0, err
	}
	defer lr.p.stop(time.Second)
	if _, err := lr.next(ctx, "MEASURE", warmup+e.opts.dur+90*time.Second); err != nil {
		return "", a, b, 0, err
	}
	a = sampleCPU(in)
	loadA, _ := readStat(lr.p.pid())
	line, err = lr.next(ctx, "{", e.opts.dur+60*time.Second)
	b = sampleCPU(in)
	if err != nil {
		return "", a, b, 0, err
	}
	if lr.p.wait(5*time.Second) && rusageTicks(lr.p) > loadA.ticks {
		load = rusageTicks(lr.p) - loadA.ticks
	}
	return line, a, b, load, nil
}

func (e *env) runWSEcho(ctx context.Context, in *instance, sc scenario, m *measurement) {
	url := in.ws(sc)
	if err := e.probeWS(ctx, url); err != nil {
		m.NA = "no WebSocket: " + err.Error()
		return
	}
	warmup := max(e.opts.warmup, 500*time.Millisecond)
	line, a, b, load, err := e.measured(ctx, in, "wsload-echo", []string{e.bins.wsload, "-mode", "echo",
		"-url", url, "-cacert", e.pki.ca, "-c", strconv.Itoa(e.opts.wsConns), "-d", e.opts.dur.String(), "-warmup", warmup.String()}, warmup)
	if err != nil {
		m.Error = err.Error()
		return
	}
	var r wsEchoResult
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		m.Error = fmt.Sprintf("wsload output %q: %v", line, err)
		return
	}
	m.Value, m.Count = r.Rate, r.Msgs
	m.P50Ms, m.P90Ms, m.P99Ms = r.P50us/1e3, r.P90us/1e3, r.P99us/1e3
	m.SockErrs = r.Errors + int64(r.Failed)
	if r.Failed > 0 || r.Errors > 0 {
		w := fmt.Sprintf("%d of %d connections failed to open, %d broke: %s", r.Failed, r.Conns, r.Errors, r.FirstError)
		m.warn(w)
		if r.Connected == 0 || r.Failed+int(r.Errors) > r.Conns/100 {
			m.Error = w
		}
	}
	fillCPU(m, a, b, load, r.Msgs)
}

// tlsNewResult mirrors tlsload's JSON.
type tlsNewResult struct {
	Conns      int     `json:"conns"`
	Handshakes int64   `json:"handshakes"`
	Rate       float64 `json:"rate"`
	P50us      float64 `json:"p50_us"`
	P90us      float64 `json:"p90_us"`
	P99us      float64 `json:"p99_us"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error"`
	TLS        string  `json:"tls"`
}

// runTLSNew measures new TLS connections per second: bench/tlsload opens
// a connection per request and does a full handshake on each (wrk would
// resume its sessions; that is tls-close).
func (e *env) runTLSNew(ctx context.Context, in *instance, sc scenario, m *measurement) {
	if err := probeHTTP(ctx, in.base(sc), sc, e.pki.pool); err != nil {
		m.Error = "probe: " + err.Error()
		return
	}
	warmup := max(e.opts.warmup, 500*time.Millisecond)
	line, a, b, load, err := e.measured(ctx, in, "tlsload", []string{e.bins.tlsload,
		"-url", in.base(sc) + sc.path, "-c", strconv.Itoa(sc.conns), "-d", e.opts.dur.String(), "-warmup", warmup.String()}, warmup)
	if err != nil {
		m.Error = err.Error()
		return
	}
	var r tlsNewResult
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		m.Error = fmt.Sprintf("tlsload output %q: %v", line, err)
		return
	}
	m.Value, m.Count, m.TLS = r.Rate, r.Handshakes, r.TLS
	m.P50Ms, m.P90Ms, m.P99Ms = r.P50us/1e3, r.P90us/1e3, r.P99us/1e3
	m.SockErrs = r.Errors
	if r.Errors > 0 {
		w := fmt.Sprintf("%d of %d connections failed: %s", r.Errors, r.Errors+r.Handshakes, r.FirstError)
		m.warn(w)
		if r.Handshakes == 0 || float64(r.Errors) > 0.01*float64(r.Errors+r.Handshakes) {
			m.Error = "over 1% failed: " + w
		}
	}
	fillCPU(m, a, b, load, r.Handshakes)
}

// idleCap is how many idle WebSockets this machine can hold through any
// proxy: each process may open e.nofile files, and the proxy (one
// process, or nginx's busiest worker with two sockets per proxied
// connection) must stay well under that.
func (e *env) idleCap() int { return e.nofile * 3 / 4 }

func (e *env) runWSIdle(ctx context.Context, in *instance, sc scenario, m *measurement) {
	url := in.ws(sc)
	if err := e.probeWS(ctx, url); err != nil {
		m.NA = "no WebSocket: " + err.Error()
		return
	}
	want := e.opts.idleConns
	if sc.tls {
		want = e.opts.wssIdleConns
	}
	n := min(want, e.idleCap())
	per := max(1, e.opts.idlePerProc)
	nproc := (n + per - 1) / per
	if nproc > 250 {
		m.Error = fmt.Sprintf("%d client processes needed; raise -ws-idle-per-proc", nproc)
		return
	}
	time.Sleep(300 * time.Millisecond) // let the probe's connection go
	beforeP, beforeB := rssKiB(in.proxyPIDs), rssKiB(in.backendPIDs)

	var loaders []*lineReader
	defer func() {
		for _, lr := range loaders {
			lr.p.stop(2 * time.Second)
		}
	}()
	left := n
	for i := range nproc {
		c := min(per, left)
		left -= c
		lr, err := e.startLines(procSpec{name: fmt.Sprintf("wsload-idle-%d", i), stdin: true, argv: []string{e.bins.wsload,
			"-mode", "idle", "-url", url, "-cacert", e.pki.ca, "-c", strconv.Itoa(c), "-src", fmt.Sprintf("127.0.0.%d", 2+i)}})
		if err != nil {
			m.Error = err.Error()
			return
		}
		loaders = append(loaders, lr)
	}
	ok, failed := 0, 0
	var firstErr string
	for _, lr := range loaders {
		line, err := lr.next(ctx, "READY", 3*time.Minute)
		if err != nil {
			m.Error = err.Error()
			return
		}
		var o, f int
		if _, err := fmt.Sscanf(line, "READY ok=%d failed=%d", &o, &f); err != nil {
			m.Error = fmt.Sprintf("wsload said %q", line)
			return
		}
		ok, failed = ok+o, failed+f
		if i := strings.Index(line, " err="); i >= 0 && firstErr == "" {
			firstErr = line[i+5:]
		}
	}
	time.Sleep(time.Second) // let the proxy settle the last handshakes
	afterP, afterB := rssKiB(in.proxyPIDs), rssKiB(in.backendPIDs)
	closed := 0
	for _, lr := range loaders {
		lr.p.stdin.Close()
	}
	for _, lr := range loaders {
		line, err := lr.next(ctx, "DONE", 30*time.Second)
		if err != nil {
			m.Error = err.Error()
			return
		}
		var a, c int
		if _, err := fmt.Sscanf(line, "DONE alive=%d closed=%d", &a, &c); err == nil {
			closed += c
		}
	}
	if ok == 0 {
		m.Error = "no connection opened: " + firstErr
		return
	}
	m.Conns = ok
	m.Count = int64(ok)
	m.ProxyRSSBeforeKiB, m.ProxyRSSAfterKiB = beforeP, afterP
	m.Value = float64(afterP-beforeP) * 1024 / float64(ok)
	m.BackendBytesPerCon = float64(afterB-beforeB) * 1024 / float64(ok)
	if want > n {
		// More than this machine can hold: extrapolate, labelled as such.
		m.ProjectedConns = want
		m.ProjectedProxyMiB = (float64(afterP)*1024 + float64(want-ok)*m.Value) / (1 << 20)
	}
	if failed > 0 {
		m.warn(fmt.Sprintf("%d of %d connections failed to open (%s)", failed, n, firstErr))
	}
	if closed > 0 {
		m.warn(fmt.Sprintf("%d connections were closed by the server while idle", closed))
	}
	if failed > n/100 || closed > n/100 {
		m.Error = m.Warning
	}
}
