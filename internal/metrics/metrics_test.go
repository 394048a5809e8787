package metrics

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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

// TestStatsIdleConnClosed: a scraper's keep-alive connection idle past
// the idle timeout is closed (before, none was: each held a goroutine
// and a descriptor for good).
func TestStatsIdleConnClosed(t *testing.T) {
	s, err := Listen("127.0.0.1:0", 4, 100*time.Millisecond, fixedSource{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// Now idle: the server closes it (EOF), long before the deadline.
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("an idle stats connection: %v, want EOF", err)
	}
}

// TestProbes: /healthz is 200; /readyz is 200 unless stopping, and with
// ?vhosts 503 while a virtual host has no live node, naming them.
func TestProbes(t *testing.T) {
	get := func(src Source, path string) (int, string) {
		rec := httptest.NewRecorder()
		Handler(src).ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	down := fixedSource{Nodes: []server.NodeMetrics{
		{Name: "a1", VHosts: []string{"a.test"}, Up: true},
		{Name: "b1", VHosts: []string{"b.test"}},
		{Name: "b2", VHosts: []string{"b.test", "c.test"}, Up: false},
	}}
	if code, _ := get(down, "/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get(down, "/readyz"); code != 200 {
		t.Errorf("/readyz (no vhost check) with b.test down: %d", code)
	}
	if code, body := get(down, "/readyz?vhosts"); code != 503 || body != "no live node for: b.test, c.test\n" {
		t.Errorf("/readyz?vhosts with b.test and c.test down: %d %q", code, body)
	}
	up := fixedSource{Nodes: []server.NodeMetrics{{Name: "a1", VHosts: []string{"a.test"}, Up: true}}}
	if code, _ := get(up, "/readyz?vhosts"); code != 200 {
		t.Errorf("/readyz?vhosts with every vhost live: %d", code)
	}
	stopping := fixedSource{Stopping: true, Nodes: up.Nodes}
	if code, body := get(stopping, "/readyz"); code != 503 || body != "stopping\n" {
		t.Errorf("/readyz while stopping: %d %q", code, body)
	}
	// A stuck event loop is no liveness: /healthz 503 (it said ok).
	if code, body := get(stalledSource{up}, "/healthz"); code != 503 || body != "an event loop is stuck\n" {
		t.Errorf("/healthz with a loop stuck: %d %q", code, body)
	}
}

// TestReadyzCheap: /readyz asks a server that says whether it stops
// (Server.Stopping) that alone, not for the whole snapshot; ?vhosts
// still needs the node table.
func TestReadyzCheap(t *testing.T) {
	for _, stop := range []bool{false, true} {
		src := &flagSource{stop: stop}
		rec := httptest.NewRecorder()
		Handler(src).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if want := map[bool]int{false: 200, true: 503}[stop]; rec.Code != want || src.snapshots != 0 {
			t.Errorf("stopping %v: /readyz %d (want %d), %d snapshots (want 0)", stop, rec.Code, want, src.snapshots)
		}
	}
	src := &flagSource{}
	rec := httptest.NewRecorder()
	Handler(src).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz?vhosts", nil))
	if rec.Code != 200 || src.snapshots != 1 {
		t.Errorf("/readyz?vhosts: %d, %d snapshots", rec.Code, src.snapshots)
	}
}

// flagSource is a server that says whether it stops, and counts its
// snapshots.
type flagSource struct {
	stop      bool
	snapshots int
}

func (f *flagSource) Metrics() server.Metrics { f.snapshots++; return server.Metrics{Stopping: f.stop} }
func (f *flagSource) Stopping() bool          { return f.stop }

// stalledSource is a server whose event loop is stuck (Server.Stalled).
type stalledSource struct{ fixedSource }

func (stalledSource) Stalled(time.Duration) bool { return true }

// TestStatsUnsentBodyClosed: a request that declares a body and sends
// none is answered, then closed within the idle timeout. Before, net/http
// waited for the body with no deadline after the response: each such
// connection held one of stats-max-connections for good, and as many
// shut /healthz out.
func TestStatsUnsentBodyClosed(t *testing.T) {
	for _, framing := range []string{"Content-Length: 10", "Transfer-Encoding: chunked"} {
		s, err := Listen("127.0.0.1:0", 4, 100*time.Millisecond, fixedSource{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"+framing+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", framing, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%s and no body: %v, want EOF long before the client's deadline", framing, err)
		}
		c.Close()
		s.Close()
	}
}

// TestNodeProtocolErrors: the node-side error counters are exported by
// kind (they were only in the stop's log line: a misbehaving or spoofing
// node could not be alerted on).
func TestNodeProtocolErrors(t *testing.T) {
	var src fixedSource
	src.Stats.Unauthorized, src.Stats.BadMessage, src.Stats.Unexpected = 1, 2, 3
	src.Stats.BadResponse, src.Stats.DroppedNoLoop, src.Stats.Bridge.DroppedFrames = 4, 5, 6
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(src))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "blastbeat_node_protocol_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"unauthorized": 1, "bad_message": 2, "unexpected": 3, "bad_response": 4, "no_loop": 5, "bad_frames": 6}
	if len(got) != len(want) {
		t.Fatalf("node_protocol_errors_total: %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("node_protocol_errors_total: %v, want %v", got, want)
		}
	}
}

// TestStatsProbesNotShutOut: with every general slot of the stats
// listener held by keep-alive scrapers, a scrape more gets 503 at once
// (not a wait in the backlog) and /healthz and /readyz are still
// answered. Before, probes queued behind the scrapers until one left
// (stats-idle-timeout), and a liveness probe's timeout restarted a
// healthy proxy.
func TestStatsProbesNotShutOut(t *testing.T) {
	const maxConns = 16 // 14 general, 2 kept for probes
	s, err := Listen("127.0.0.1:0", maxConns, time.Minute, fixedSource{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	exchange := func(c net.Conn, path string) (*http.Response, string) {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Scrapers take every general slot and keep their connections.
	var scraper net.Conn
	for i := 0; i < maxConns-probeReserve(maxConns); i++ {
		c := dial()
		if resp, _ := exchange(c, "/status"); resp.StatusCode != 200 {
			t.Fatalf("scrape %d: %d", i, resp.StatusCode)
		}
		scraper = c
	}
	// One more scrape is refused on a reserved slot, and closed.
	resp, body := exchange(dial(), "/metrics")
	if resp.StatusCode != 503 || !resp.Close || !strings.Contains(body, "stats-max-connections") {
		t.Fatalf("a scrape past the general slots: %d close=%v %.200q", resp.StatusCode, resp.Close, body)
	}
	// Probes, more of them than the reserve, one after another: each
	// answered and closed.
	for i := 0; i < 2*probeReserve(maxConns)+1; i++ {
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, body := exchange(dial(), path)
			if resp.StatusCode != 200 || body != "ok\n" || !resp.Close {
				t.Fatalf("probe %s %d: %d close=%v %q", path, i, resp.StatusCode, resp.Close, body)
			}
		}
	}
	// The refused scrape is counted, for whoever scrapes next.
	if _, body := exchange(scraper, "/metrics"); !strings.Contains(body, "\nblastbeat_stats_busy_total 1\n") {
		t.Fatalf("no blastbeat_stats_busy_total 1 in /metrics")
	}
}

// TestStatsProbeSlotDeadline: a connection on a reserved slot that
// sends nothing is closed by its own deadline (here 100 ms), not by the
// header timeout (5 s): a general one accepted before it, which that
// timeout would close first, is still served after it (before, both
// waited the header timeout, and the general one was closed first).
func TestStatsProbeSlotDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := newSlotListener(ln, 2)
	sl.probeLife = 100 * time.Millisecond
	srv := &http.Server{Handler: Handler(fixedSource{}), ConnContext: connContext, ReadHeaderTimeout: readHeaderTimeout}
	go srv.Serve(sl)
	defer srv.Close()
	var conns []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		conns = append(conns, c)
	}
	if _, err := conns[1].Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("an idle connection on a probe slot: %v, want EOF", err)
	}
	if _, err := io.WriteString(conns[0], "GET /status HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conns[0]), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the general connection after the probe slot's closed: %v", err)
	}
	resp.Body.Close()
}
