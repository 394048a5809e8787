package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/blastbeat/blastbeat/node"
)

// Operations: /metrics scraped with Prometheus's own text parser after a
// known mix of requests, /status, the access log (file and JSON, reopened
// on SIGUSR1), and node events in the log.

// opsScrape fetches /metrics from the stats listener and parses it.
func opsScrape(t testing.TB, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// opsValue is the value of the sample of family name whose labels
// include want (nil, false when there is none).
func opsValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetrics: a known mix (3 GETs and a POST answered 200, a 404, a
// 400, a WebSocket upgrade, an h2 request) shows in the counters, by
// vhost and class; the node table in /metrics and /status; histograms
// count every answered request.
func TestMetrics(t *testing.T) {
	t.Parallel()
	stats := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProxy(t, "stats = "+stats+"\n", "[blastbeat:m.test]\nnode = m1\n\n[blastbeat:other.test]\nnode = m2\n\n[blastbeat:ws.test]\nnode = m1\n")
	hStartNode(t, p.ZMQ, "m1", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type == "uwsgi" && m.Env["HTTP_UPGRADE"] == "" {
			hRespond(n, m.SID, 200, "", "ok")
		}
	})
	waitRoutable(t, p, "m.test", "/ready")
	before := opsScrape(t, stats)
	base := func(name string, labels map[string]string) float64 {
		v, _ := opsValue(before, name, labels)
		return v
	}

	c := &http.Client{Timeout: 10 * time.Second}
	get := func(host, path string) int {
		req, _ := http.NewRequest("GET", p.URL(path), nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; i < 3; i++ {
		if s := get("m.test", "/a"); s != 200 {
			t.Fatalf("GET: %d", s)
		}
	}
	req, _ := http.NewRequest("POST", p.URL("/post"), strings.NewReader("body"))
	req.Host = "m.test"
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST: %v", err)
	} else {
		resp.Body.Close()
	}
	if s := get("nowhere.test", "/"); s != 404 {
		t.Fatalf("no vhost: %d", s)
	}
	if s := get("other.test", "/"); s != 503 { // its node never connected
		t.Fatalf("no live node: %d", s)
	}
	if out := rawExchange(t, p.Addr, "GET /x HTTP/1.1\r\nHost: m.test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 5*time.Second); !strings.HasPrefix(out, "HTTP/1.1 400") {
		t.Fatalf("smuggling shape: %q", out)
	}
	wRawUpgrade(t, p, "/ws", nil)
	h2 := h2cClient(t, p.Addr)
	hreq, _ := http.NewRequest("GET", "http://m.test/h2", nil)
	if resp, err := h2.Do(hreq); err != nil || resp.StatusCode != 200 {
		t.Fatalf("h2: %v", err)
	} else {
		resp.Body.Close()
	}

	// The counters are summed on scrape: wait until the last exchange
	// (finished on its loop just after its response went out) shows.
	var fams map[string]*dto.MetricFamily
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		fams = opsScrape(t, stats)
		got, _ := opsValue(fams, "blastbeat_requests_total", map[string]string{"vhost": "m.test", "code": "2xx"})
		if want := base("blastbeat_requests_total", map[string]string{"vhost": "m.test", "code": "2xx"}) + 5; got != want {
			return fmt.Errorf("m.test 2xx = %v, want %v", got, want)
		}
		return nil
	})
	for _, c := range []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"blastbeat_requests_total", map[string]string{"vhost": "-", "code": "4xx"}, 2}, // the 404 and the 400
		{"blastbeat_requests_total", map[string]string{"vhost": "ws.test", "code": "1xx"}, 1},
		{"blastbeat_rejected_total", map[string]string{"reason": "no_vhost"}, 1},
		{"blastbeat_rejected_total", map[string]string{"reason": "no_live_node"}, 1},
		{"blastbeat_requests_total", map[string]string{"vhost": "other.test", "code": "5xx"}, 1}, // the proxy's 503, under its vhost
		{"blastbeat_rejected_total", map[string]string{"reason": "cl_and_te"}, 1},
		{"blastbeat_connection_upgrades_total", map[string]string{"protocol": "ws"}, 1},
		{"blastbeat_connection_upgrades_total", map[string]string{"protocol": "h2"}, 1},
		{"blastbeat_connections_open", map[string]string{"protocol": "ws"}, 1},
		{"blastbeat_response_head_seconds", nil, 5}, // the node's heads; the proxy answered the 101
		{"blastbeat_node_messages_total", map[string]string{"node": "m1", "direction": "in"}, 5},
	} {
		got, ok := opsValue(fams, c.name, c.labels)
		if !ok {
			t.Errorf("%s%v: missing", c.name, c.labels)
			continue
		}
		want := base(c.name, c.labels) + c.delta
		if c.name == "blastbeat_node_messages_total" {
			if got < want {
				t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, want)
			}
			continue
		}
		if got != want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, want)
		}
	}
	if v, _ := opsValue(fams, "blastbeat_node_up", map[string]string{"node": "m1"}); v != 1 {
		t.Errorf("node_up{m1} = %v, want 1", v)
	}
	if v, ok := opsValue(fams, "blastbeat_node_up", map[string]string{"node": "m2"}); !ok || v != 0 {
		t.Errorf("node_up{m2} = %v (%v), want 0", v, ok)
	}
	if _, ok := opsValue(fams, "blastbeat_node_last_pong_age_seconds", map[string]string{"node": "m1"}); !ok {
		t.Errorf("no pong age for m1")
	}

	// /status: the node table.
	resp, err := http.Get("http://" + stats + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Nodes []struct {
			Name     string   `json:"name"`
			VHosts   []string `json:"vhosts"`
			Up       bool     `json:"up"`
			Sessions int64    `json:"sessions"`
			LastPong string   `json:"last_pong"`
		} `json:"nodes"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || len(st.Nodes) != 2 {
		t.Fatalf("/status: %v %+v", err, st)
	}
	m1, m2 := st.Nodes[0], st.Nodes[1]
	if m1.Name != "m1" || !m1.Up || m1.LastPong == "" || len(m1.VHosts) != 2 || m1.VHosts[0] != "m.test" || m1.Sessions < 1 {
		t.Errorf("/status m1: %+v", m1)
	}
	if m2.Name != "m2" || m2.Up || m2.LastPong != "" {
		t.Errorf("/status m2: %+v", m2)
	}
}

// TestStatsListenerRefusesPublic: a stats address that is not loopback
// is a config error naming the line, unless stats-public says so.
func TestStatsListenerRefusesPublic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "bb.ini")
	cfg := "[blastbeat]\nbind = 127.0.0.1:1\nzmq = tcp://127.0.0.1:2\nstats = 0.0.0.0:9090\n\n[blastbeat:*]\nnode = n\n"
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	outb, err := exec.Command(binary, "-t", file).CombinedOutput()
	out := string(outb)
	if err == nil || !strings.Contains(out, file+":4") || !strings.Contains(out, "stats") {
		t.Errorf("-t with a public stats address: %v\n%s", err, out)
	}
}

// TestAccessLog: combined lines in a file, each within a second of its
// request, moved away and reopened on SIGUSR1; JSON lines on stderr.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "access.log")
	p := startProxy(t, "access-log = "+file+"\n", "[blastbeat:log.test]\nnode = l1\n")
	hStartNode(t, p.ZMQ, "l1", hEcho())
	waitRoutable(t, p, "log.test", "/ready")

	req, _ := http.NewRequest("GET", p.URL("/logged?q=1"), nil)
	req.Host = "log.test"
	req.Header.Set("User-Agent", "ops-test \"quoted\"")
	req.Header.Set("Referer", "http://ref.test/")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sent := time.Now()
	var line string
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		b, _ := os.ReadFile(file)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "/logged?q=1") {
				line = l
				return nil
			}
		}
		return fmt.Errorf("no line for /logged in %q", b)
	})
	// Written within accessLogFlushEvery (200 ms); logged, not asserted
	// (no test asserts on wall-clock time).
	t.Logf("the line reached the file %v after the response", time.Since(sent).Round(time.Millisecond))
	for _, part := range []string{`127.0.0.1 - - [`, `"GET /logged?q=1 HTTP/1.1" 200 `, `"http://ref.test/" "ops-test \x22quoted\x22"`,
		` vhost=log.test node=l1 sid=`, ` rt=`} {
		if !strings.Contains(line, part) {
			t.Errorf("line %q lacks %q", line, part)
		}
	}
	if len(body) == 0 {
		t.Errorf("empty body")
	}

	// logrotate: move the file, SIGUSR1, the next line goes to a new file.
	if err := os.Rename(file, file+".1"); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		req, _ := http.NewRequest("GET", p.URL("/after-rotate"), nil)
		req.Host = "log.test"
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		b, err := os.ReadFile(file)
		if err != nil || !strings.Contains(string(b), "/after-rotate") {
			return fmt.Errorf("no new file with /after-rotate yet (%v)", err)
		}
		return nil
	})
	old, _ := os.ReadFile(file + ".1")
	if strings.Contains(string(old), "/after-rotate") && !strings.Contains(string(old), "/logged") {
		t.Errorf("rotated file %q", old)
	}
}

// TestAccessLogJSON: access-log-format = json on stderr.
func TestAccessLogJSON(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "access-log = stderr\naccess-log-format = json\n", "[blastbeat:*]\nnode = j1\n")
	hStartNode(t, p.ZMQ, "j1", hEcho())
	waitRoutable(t, p, "", "/ready")
	if resp, err := http.Get(p.URL("/json-line")); err == nil {
		resp.Body.Close()
	}
	var rec map[string]any
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		sc := bufio.NewScanner(strings.NewReader(p.Log()))
		for sc.Scan() {
			l := sc.Text()
			if strings.HasPrefix(l, "{") && strings.Contains(l, "/json-line") {
				return json.Unmarshal([]byte(l), &rec)
			}
		}
		return fmt.Errorf("no JSON line for /json-line")
	})
	for k, want := range map[string]any{"method": "GET", "uri": "/json-line", "proto": "HTTP/1.1", "status": 200.0, "node": "j1", "vhost": "*"} {
		if rec[k] != want {
			t.Errorf("%s = %v, want %v (%v)", k, rec[k], want, rec)
		}
	}
	for _, k := range []string{"time", "remote", "bytes", "sid", "duration_ms"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("no %s in %v", k, rec)
		}
	}
}

// TestNodeEvents: a node's first message, its death (it stops answering
// pings) and its return are logged; so is an identity no vhost lists.
func TestNodeEvents(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:*]\nnode = ev1\n")
	n := hStartNode(t, p.ZMQ, "ev1", hEcho())
	waitRoutable(t, p, "", "/ready")
	stranger := hStartNode(t, p.ZMQ, "stranger", nil)
	stranger.Do(func(nd *node.Node) { _ = nd.Send([]byte("0123456789abcdef"), "body", []byte("x")) })
	wantLog := func(what string) {
		t.Helper()
		checkFor(t, 15*time.Second, 20*time.Millisecond, func() error {
			if !strings.Contains(p.Log(), what) {
				return fmt.Errorf("no %s in the log", what)
			}
			return nil
		})
	}
	wantLog(`msg="node connected" node=ev1`)
	wantLog(`identity=stranger`)
	n.Stop()
	wantLog(`msg="node down: missed its pings" node=ev1`)
	hStartNode(t, p.ZMQ, "ev1", hEcho())
	checkFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		if strings.Count(p.Log(), `msg="node up" node=ev1`) < 2 {
			return fmt.Errorf("ev1 not logged up again")
		}
		return nil
	})
}

// TestDuplicateNodeName: a second process connecting with a node name
// already connected is named in a warning.
func TestDuplicateNodeName(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:*]\nnode = twin\n")
	startGoNode(t, p.ZMQ, "twin", helloHandler)
	waitRoutable(t, p, "", "/")
	startGoNode(t, p.ZMQ, "twin", helloHandler) // a second process, same name
	checkFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(p.Log(), `msg="a new process answers for this node name`) || !strings.Contains(p.Log(), "node=twin old-instance=") {
			return fmt.Errorf("no warning naming twin")
		}
		return nil
	})
}

// TestUnconnectedNodeWarned: a node a virtual host lists that never
// connects (a misspelt name, an endpoint it does not reach) is named in a
// warning once dead-after passed, instead of its requests getting 503
// with nothing in the log; a node that connected is not.
func TestUnconnectedNodeWarned(t *testing.T) {
	t.Parallel()
	// ping-freq 2 s: dead-after is 6 s, time enough for "here" to
	// connect on a loaded machine before the warnings are due.
	p := startProxy(t, "ping-freq = 2\n", "[blastbeat:a.test]\nnode = here\n\n[blastbeat:b.test]\nnode = ghost\n")
	hStartNode(t, p.ZMQ, "here", hEcho())
	waitRoutable(t, p, "a.test", "/ready")
	checkFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(p.Log(), `has not connected`) || !strings.Contains(p.Log(), "node=ghost") {
			return fmt.Errorf("no warning naming ghost")
		}
		return nil
	})
	for _, l := range strings.Split(p.Log(), "\n") {
		if strings.Contains(l, "has not connected") && strings.Contains(l, "node=here") {
			t.Errorf("a connected node was warned about: %s", l)
		}
	}
}
