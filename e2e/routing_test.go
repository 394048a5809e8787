package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
	"github.com/blastbeat/blastbeat/protocol"
)

// hNameHandler answers every request with the node's name and the URI.
func hNameHandler(hn *hNode, n *node.Node, m hMsg) {
	switch m.Type {
	case "uwsgi":
		hRespond(n, m.SID, 200, "X-Node: "+hn.Name+"\r\n", hn.Name+" "+m.Env["REQUEST_URI"])
	case "headers":
		hRespond(n, m.SID, 200, "X-Node: "+hn.Name+"\r\n", hn.Name+" headers")
	}
}

// hRawGet sends one request head (and body) on a new connection and
// returns the response.
func hRawGet(t testing.TB, p *proxy, req string) (*http.Response, string) {
	t.Helper()
	r := hDial(t, p.Addr, 10*time.Second)
	r.write(req)
	method, _, _ := strings.Cut(req, " ")
	return r.response(method)
}

// hHostReq is a GET with the given Host (none when host is "-").
func hHostReq(path, host string) string {
	if host == "-" {
		return "GET " + path + " HTTP/1.1\r\nConnection: close\r\n\r\n"
	}
	return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
}

// twoHosts starts a proxy with [blastbeat] lines extra and two vhosts,
// a.test served by node na and hostB by node nb (hNameHandler), and
// waits until both route.
func twoHosts(t *testing.T, extra, hostB string) *proxy {
	t.Helper()
	p := startProxy(t, extra, "[blastbeat:a.test]\nnode = na\n\n[blastbeat:"+hostB+"]\nnode = nb\n")
	hStartNode(t, p.ZMQ, "na", hNameHandler)
	hStartNode(t, p.ZMQ, "nb", hNameHandler)
	waitRoutable(t, p, "a.test", "/ready")
	waitRoutable(t, p, hostB, "/ready")
	return p
}

func TestRoutingVirtualHosts(t *testing.T) {
	t.Parallel()
	p := twoHosts(t, "", "b.test:8000")
	for _, tc := range []struct {
		name, req string
		status    int
		body      string // prefix for proxy errors
	}{
		{"a", hHostReq("/x", "a.test"), 200, "na /x"},
		{"a-case", hHostReq("/x", "A.Test"), 200, "na /x"},
		{"a-any-port", hHostReq("/x", "a.test:1234"), 200, "na /x"},
		{"b-port", hHostReq("/y", "b.test:8000"), 200, "nb /y"},
		{"b-upper", hHostReq("/y", "B.TEST:8000"), 200, "nb /y"},
		{"b-other-port", hHostReq("/y", "b.test:8001"), 404, ""},
		{"b-no-port", hHostReq("/y", "b.test"), 404, ""},
		{"unknown", hHostReq("/z", "c.test"), 404, ""},
		{"absolute-form", "GET http://a.test/abs HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n", 200, "na http://a.test/abs"},
		{"no-host-1.1", hHostReq("/n", "-"), 400, ""},
		{"no-host-1.0", "GET /n HTTP/1.0\r\n\r\n", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := hRawGet(t, p, tc.req)
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d %q, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.body != "" && body != tc.body {
				t.Fatalf("got body %q, want %q", body, tc.body)
			}
			if tc.status >= 400 && resp.Header.Get("Content-Type") != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("error with Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

// TestRoutingHeadersFormat: a format = headers vhost gets the raw head.
func TestRoutingHeadersFormat(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:h.test]\nnode = nh\nformat = headers\n")
	hn := hStartNode(t, p.ZMQ, "nh", hNameHandler)
	waitRoutable(t, p, "h.test", "/ready")

	head := "POST /raw/path?q=1 HTTP/1.1\r\nHost: h.test\r\nX-Custom: one\r\nX-Custom: two\r\nContent-Length: 5\r\n\r\n"
	resp, body := hRawGet(t, p, head+"hello")
	if resp.StatusCode != 200 || body != "nh headers" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	var got []hMsg
	for _, m := range hn.Log.all() {
		if m.Type == "headers" && bytes.Contains(m.Body, []byte("/raw/path")) {
			got = append(got, m)
		}
	}
	if len(got) != 1 || string(got[0].Body) != head {
		t.Fatalf("node got heads %s, want exactly %q", hSummary(got), head)
	}
	if n := hn.Log.count("uwsgi"); n != 0 {
		t.Errorf("a format=headers vhost sent %d uwsgi messages", n)
	}
	// The node answers on the head, so the client's response says nothing
	// about the body: wait until the node has it.
	checkFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if b, _, _ := hBodyOf(hn.Log, got[0].SID); string(b) != "hello" {
			return fmt.Errorf("node has body %q, want %q", b, "hello")
		}
		return nil
	})
}

// TestRoutingUwsgiResponse: a node may answer with a uwsgi packet.
func TestRoutingUwsgiResponse(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:*]\nnode = nu\n")
	hStartNode(t, p.ZMQ, "nu", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		pkt, start := protocol.BeginUwsgi(nil)
		for _, kv := range [][2]string{
			{"Status", "201 Created"},
			{"Content-Type", "text/plain"},
			{"X-Multi", "1"},
			{"X-Multi", "2"},
			{"Content-Length", "7"},
		} {
			pkt = protocol.AppendUwsgiString(pkt, kv[0], kv[1])
		}
		pkt, err := protocol.FinishUwsgi(pkt, start)
		if err != nil {
			panic(err)
		}
		_ = n.Send([]byte(m.SID), "uwsgi", pkt)
		_ = n.Send([]byte(m.SID), "body", []byte("created"))
	})
	waitRoutable(t, p, "", "/ready")
	c, _ := hClient(t)
	for i := 0; i < 2; i++ { // and keep-alive after it
		resp, body := hDo(t, c, hReq(t, "GET", p.URL("/u")))
		if resp.StatusCode != 201 || body != "created" || resp.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
		}
		if got := resp.Header.Values("X-Multi"); len(got) != 2 || got[0] != "1" || got[1] != "2" {
			t.Errorf("X-Multi %q, want [1 2]", got)
		}
	}
}

// TestRoutingNoLiveNode: a vhost whose node never connected answers 503
// at once, not after its timeout (30 s here; the bound of 10 s leaves a
// loaded, race-built run room and still tells the two apart).
func TestRoutingNoLiveNode(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:*]\nnode = ghost\ntimeout = 30\n")
	start := time.Now()
	resp, body := hRawGet(t, p, hHostReq("/", "x"))
	if d := time.Since(start); resp.StatusCode != 503 || d > 10*time.Second {
		t.Fatalf("got %d %q after %v, want 503 at once", resp.StatusCode, body, d)
	}
}

// TestRoutingTimeout: a node that never answers gets the client a 504
// after the vhost's timeout, and the node an `end`.
func TestRoutingTimeout(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:slow.test]\nnode = ns\ntimeout = 1\n")
	hn := hStartNode(t, p.ZMQ, "ns", nil) // answers pings, never requests
	var resp *http.Response
	var body string
	var took time.Duration
	checkFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		start := time.Now()
		resp, body = hRawGet(t, p, hHostReq("/never", "slow.test"))
		took = time.Since(start)
		if resp.StatusCode == 503 {
			return fmt.Errorf("node not alive yet")
		}
		return nil
	})
	if resp.StatusCode != 504 {
		t.Fatalf("got %d %q, want 504", resp.StatusCode, body)
	}
	if took < 900*time.Millisecond || took > 15*time.Second {
		t.Errorf("504 after %v, want about 1 s (at least the timeout)", took)
	}
	// The 504 does not order anything at the node: wait for the head.
	var h hMsg
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		var ok bool
		if h, ok = hn.Log.headOf("/never"); !ok {
			return fmt.Errorf("the node never got the request: %s", hSummary(hn.Log.all()))
		}
		return nil
	})
	hn.Log.waitType(t, h.SID, "end", 5*time.Second)
}

// hRetryHandler answers every request with retry.
func hRetryHandler(hn *hNode, n *node.Node, m hMsg) {
	if m.Type == "uwsgi" {
		_ = n.Send([]byte(m.SID), "retry", nil)
	}
}

// TestRoutingRetry: r1 answers retry; the request (head and body) goes to
// r2, whose answer the client gets.
func TestRoutingRetry(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:r.test]\nnode = r1\nnode = r2\n")
	r1 := hStartNode(t, p.ZMQ, "r1", hRetryHandler)
	r2 := hStartNode(t, p.ZMQ, "r2", hEcho())
	waitRoutable(t, p, "r.test", "/ready")
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		// until r1 is alive too: then a retried request shows up at r1
		if r1.Log.count("uwsgi") == 0 {
			resp, body := hRawGet(t, p, hHostReq("/probe", "r.test"))
			if resp.StatusCode != 200 || !strings.HasPrefix(body, "r2 ") {
				t.Fatalf("probe: got %d %q, want r2's answer", resp.StatusCode, body)
			}
			return fmt.Errorf("r1 got no request yet")
		}
		return nil
	})
	const payload = "the body that must follow the head"
	retried := 0
	for i := 0; i < 8; i++ {
		uri := fmt.Sprintf("/post/%d", i)
		resp, body := hRawGet(t, p, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: r.test\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", uri, len(payload), payload))
		if resp.StatusCode != 200 || body != payload || resp.Header.Get("X-Node") != "r2" {
			t.Fatalf("%s: got %d %q from %q, want r2's echo", uri, resp.StatusCode, body, resp.Header.Get("X-Node"))
		}
		h2, ok := r2.Log.headOf(uri)
		if !ok {
			t.Fatalf("r2 never got %s", uri)
		}
		if b, _, _ := hBodyOf(r2.Log, h2.SID); string(b) != payload {
			t.Errorf("%s: r2 got body %q", uri, b)
		}
		if h1, ok := r1.Log.headOf(uri); ok {
			retried++
			if h1.SID != h2.SID || !bytes.Equal(h1.Body, h2.Body) {
				t.Errorf("%s: r2 got another head than r1:\n r1 %x %q\n r2 %x %q", uri, h1.SID, h1.Body, h2.SID, h2.Body)
			}
		}
	}
	if retried == 0 {
		t.Errorf("no request of 8 went to r1 first")
	}
}

// TestRoutingMaxHops: when every node answers retry, the client gets 502
// after max-hops retries.
func TestRoutingMaxHops(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "max-hops = 3", "[blastbeat:m.test]\nnode = m1\nnode = m2\n")
	m1 := hStartNode(t, p.ZMQ, "m1", hRetryHandler)
	m2 := hStartNode(t, p.ZMQ, "m2", hRetryHandler)
	var resp *http.Response
	var body string
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		resp, body = hRawGet(t, p, hHostReq("/hop", "m.test"))
		if resp.StatusCode == 503 {
			return fmt.Errorf("no node alive yet")
		}
		if m1.Log.count("uwsgi") == 0 || m2.Log.count("uwsgi") == 0 {
			return fmt.Errorf("not both nodes alive yet")
		}
		return nil
	})
	if resp.StatusCode != 502 {
		t.Fatalf("got %d %q, want 502", resp.StatusCode, body)
	}
	// both nodes are alive now: a fresh request bounces 1 + max-hops times
	resp, body = hRawGet(t, p, hHostReq("/final", "m.test"))
	if resp.StatusCode != 502 {
		t.Fatalf("got %d %q, want 502", resp.StatusCode, body)
	}
	hops := 0
	for _, hn := range []*hNode{m1, m2} {
		for _, m := range hn.Log.heads() {
			if m.Env["REQUEST_URI"] == "/final" {
				hops++
			}
		}
	}
	if hops != 4 {
		t.Errorf("the request was sent %d times, want 4 (1 + max-hops 3)", hops)
	}
}

// TestRoutingBadResponse: a node that ends the session before any head,
// or sends a malformed head, gets the client a 502.
func TestRoutingBadResponse(t *testing.T) {
	t.Parallel()
	bad := map[string][][2]string{ // path → messages
		"/end":         {{"end", ""}},
		"/garbage":     {{"headers", "this is not http\r\n\r\n"}},
		"/status":      {{"headers", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"}},
		"/nocolon":     {{"headers", "HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 2\r\n\r\nok"}},
		"/cl-te":       {{"headers", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"}},
		"/bad-cl":      {{"headers", "HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\n"}},
		"/no-empty":    {{"headers", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Cut"}},
		"/bad-uwsgi":   {{"uwsgi", "\x00\xff\xff\x00junk"}},
		"/body-first":  {{"body", "early"}, {"end", ""}},
		"/chunk-first": {{"chunk", "early"}, {"end", ""}},
	}
	p := startProxy(t, "", "[blastbeat:*]\nnode = nx\n")
	hStartNode(t, p.ZMQ, "nx", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		msgs, ok := bad[m.Env["REQUEST_URI"]]
		if !ok {
			hRespond(n, m.SID, 200, "", "fine")
			return
		}
		for _, msg := range msgs {
			_ = n.Send([]byte(m.SID), msg[0], []byte(msg[1]))
		}
	})
	waitRoutable(t, p, "", "/ready")
	for path := range bad {
		t.Run(path[1:], func(t *testing.T) {
			r := hDial(t, p.Addr, 5*time.Second)
			r.write("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, body := r.response("GET")
			if resp.StatusCode != 502 {
				t.Fatalf("got %d %q, want 502", resp.StatusCode, body)
			}
			if strings.Contains(body, "early") {
				t.Errorf("the client got the node's bytes: %q", body)
			}
		})
	}
}

// TestRoutingFailover: when a node dies (its socket closed) or hangs (it
// stops reading, so it answers no ping), requests go to the other node of
// the vhost within a few seconds (ping-freq 1: dead after 3 s).
func TestRoutingFailover(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"stopped", "hung"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			p := startProxy(t, "", "[blastbeat:f.test]\nnode = f1\nnode = f2\n")
			f1 := hStartNode(t, p.ZMQ, "f1", hNameHandler)
			hStartNode(t, p.ZMQ, "f2", hNameHandler)
			seen := map[string]bool{}
			checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
				resp, body := hRawGet(t, p, hHostReq("/who", "f.test"))
				seen[resp.Header.Get("X-Node")] = true
				if !seen["f1"] || !seen["f2"] {
					return fmt.Errorf("nodes seen so far: %v (%d %q)", seen, resp.StatusCode, body)
				}
				return nil
			})
			if mode == "stopped" {
				f1.Stop()
			} else {
				release := make(chan struct{})
				t.Cleanup(func() { close(release) }) // before f1.Stop
				blocked := make(chan struct{})
				go f1.Do(func(*node.Node) { close(blocked); <-release })
				<-blocked // f1 reads nothing from here on
			}
			stopped := time.Now()
			checkFor(t, 8*time.Second, 20*time.Millisecond, func() error {
				resp, body := hRawGet(t, p, hHostReq("/after", "f.test"))
				if resp.StatusCode != 200 || body != "f2 /after" {
					return fmt.Errorf("got %d %q", resp.StatusCode, body)
				}
				return nil
			})
			t.Logf("f1 %s: a request was served by f2 %v after", mode, time.Since(stopped).Round(time.Millisecond))
			for i := 0; i < 10; i++ {
				start := time.Now()
				resp, body := hRawGet(t, p, hHostReq("/steady", "f.test"))
				if resp.StatusCode != 200 || body != "f2 /steady" {
					t.Fatalf("request %d after failover: got %d %q", i, resp.StatusCode, body)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("request %d after failover took %v", i, d)
				}
			}
		})
	}
}

// TestRoutingClientCloseSendsEnd: when the client closes its connection
// the node gets `end` for the connection's sid.
func TestRoutingClientCloseSendsEnd(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:*]\nnode = ne\n")
	hn := hStartNode(t, p.ZMQ, "ne", hNameHandler)
	waitRoutable(t, p, "", "/ready")
	r := hDial(t, p.Addr, 5*time.Second)
	r.write("GET /bye HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := r.response("GET"); resp.StatusCode != 200 || body != "ne /bye" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	h, ok := hn.Log.headOf("/bye")
	if !ok {
		t.Fatalf("the node has no head for /bye: %s", hSummary(hn.Log.all()))
	}
	if n := len(hn.Log.of(h.SID, "end")); n != 0 {
		t.Fatalf("end before the client closed")
	}
	r.c.Close()
	hn.Log.waitType(t, h.SID, "end", 5*time.Second)
}

// TestNodeAuthorization: node X of vhost A sends messages for a sid of
// node Y's vhost; the client of Y never sees them and gets Y's answer.
func TestNodeAuthorization(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:x.test]\nnode = nodex\n\n[blastbeat:y.test]\nnode = nodey\n")
	ySID := make(chan string, 1)
	forge := make(chan string, 1)
	hStartNode(t, p.ZMQ, "nodex", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		if m.Env["REQUEST_URI"] == "/forge" {
			select {
			case sid := <-forge:
				s := []byte(sid)
				_ = n.Send(s, "headers", []byte("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nHACKED"))
				_ = n.Send(s, "body", []byte("HACKED"))
				_ = n.Send(s, "chunk", []byte("HACKED"))
				_ = n.Send(s, "retry", nil)
				_ = n.Send(s, "end", nil)
			default:
			}
		}
		hRespond(n, m.SID, 200, "", "x "+m.Env["REQUEST_URI"])
	})
	yn := hStartNode(t, p.ZMQ, "nodey", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		if m.Env["REQUEST_URI"] == "/held" {
			ySID <- m.SID // answered later, through Do
			return
		}
		hRespond(n, m.SID, 200, "", "y "+m.Env["REQUEST_URI"])
	})
	waitRoutable(t, p, "x.test", "/ready")
	waitRoutable(t, p, "y.test", "/ready")

	cy := hDial(t, p.Addr, 10*time.Second)
	cy.write("GET /held HTTP/1.1\r\nHost: y.test\r\n\r\n")
	var sid string
	select {
	case sid = <-ySID:
	case <-time.After(5 * time.Second):
		t.Fatal("node y never got /held")
	}
	forge <- sid
	// X forges before it answers its own client, so once that answer is
	// back the proxy has read the forged messages.
	resp, body := hRawGet(t, p, hHostReq("/forge", "x.test"))
	if resp.StatusCode != 200 || body != "x /forge" {
		t.Fatalf("x: got %d %q", resp.StatusCode, body)
	}
	if len(forge) != 0 {
		t.Fatal("x did not forge")
	}
	yn.Do(func(n *node.Node) { hRespond(n, sid, 200, "", "y /held") })
	resp, body = cy.response("GET")
	if resp.StatusCode != 200 || body != "y /held" {
		t.Fatalf("y's client got %d %q, want y's answer", resp.StatusCode, body)
	}
	// the connection is still in step: nothing forged was queued after it
	cy.write("GET /next HTTP/1.1\r\nHost: y.test\r\n\r\n")
	resp, body = cy.response("GET")
	if resp.StatusCode != 200 || body != "y /next" {
		t.Fatalf("next request on y's connection: %d %q", resp.StatusCode, body)
	}
}

// TestRoutingIOThreads: with zmq-io-threads = 2 the proxy runs two libzmq
// I/O threads, and nodes served through them answer.
func TestRoutingIOThreads(t *testing.T) {
	t.Parallel()
	p := twoHosts(t, "zmq-io-threads = 2\n", "b.test")
	for host, want := range map[string]string{"a.test": "na /x", "b.test": "nb /x"} {
		if resp, body := hRawGet(t, p, hHostReq("/x", host)); resp.StatusCode != 200 || body != want {
			t.Fatalf("%s: got %d %q, want 200 %q", host, resp.StatusCode, body, want)
		}
	}
	if th := threadNames(t, p.Pid()); th["ZMQbg/IO/0"] != 1 || th["ZMQbg/IO/1"] != 1 || th["ZMQbg/IO/2"] != 0 {
		t.Fatalf("threads %v, want one ZMQbg/IO/0 and one ZMQbg/IO/1", th)
	}
}

// TestRoutingBusyPoll: with zmq-busy-poll the proxy answers as without
// it, and /metrics counts the bridge's polls for work.
func TestRoutingBusyPoll(t *testing.T) {
	t.Parallel()
	stats := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := twoHosts(t, "zmq-busy-poll = 500us\nstats = "+stats+"\n", "b.test")
	for i := range 10 {
		for host, want := range map[string]string{"a.test": "na /x", "b.test": "nb /x"} {
			if resp, body := hRawGet(t, p, hHostReq("/x", host)); resp.StatusCode != 200 || body != want {
				t.Fatalf("request %d to %s: got %d %q, want 200 %q", i, host, resp.StatusCode, body, want)
			}
		}
	}
	fams := opsScrape(t, stats)
	work, ok1 := opsValue(fams, "blastbeat_bridge_busy_polls_total", map[string]string{"result": "work"})
	idle, ok2 := opsValue(fams, "blastbeat_bridge_busy_polls_total", map[string]string{"result": "idle"})
	if !ok1 || !ok2 || work+idle < 20 {
		t.Fatalf("bridge_busy_polls_total: work %v (%v), idle %v (%v); want at least one poll per request", work, ok1, idle, ok2)
	}
}

// threadNames counts the threads of process pid by name (libzmq names its
// I/O threads ZMQbg/IO/<i>, one set per context).
func threadNames(t *testing.T, pid int) map[string]int {
	t.Helper()
	comms, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/comm", pid))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, c := range comms {
		if b, err := os.ReadFile(c); err == nil {
			names[strings.TrimSpace(string(b))]++
		}
	}
	return names
}

// TestRoutingBridges: with zmq-bridges = 2 the proxy runs two bridges,
// in one libzmq context, behind one endpoint. Six nodes connect,
// each through one of them (the kernel picks), and every node serves
// requests, bodies included; once a node goes away, the others serve.
func TestRoutingBridges(t *testing.T) {
	t.Parallel()
	const nodes = 6
	var vh strings.Builder
	vh.WriteString("[blastbeat:*]\n")
	for i := range nodes {
		fmt.Fprintf(&vh, "node = b%d\n", i)
	}
	p := startProxy(t, "zmq-bridges = 2\n", vh.String())
	hns := make([]*hNode, nodes)
	for i := range hns {
		hns[i] = hStartNode(t, p.ZMQ, fmt.Sprintf("b%d", i), hEcho())
	}
	get := func() (string, error) {
		resp, err := http.Get(p.URL("/who"))
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("status %d", resp.StatusCode)
		}
		return resp.Header.Get("X-Node"), nil
	}
	// New sessions go to the live node with the fewest: each answers.
	seen := map[string]bool{}
	checkFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		who, err := get()
		if err == nil {
			seen[who] = true
		}
		if len(seen) < nodes {
			return fmt.Errorf("answers from %v", seen)
		}
		return nil
	})
	body := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB: lent to libzmq
	for i := range nodes {
		resp, err := http.Post(p.URL(fmt.Sprintf("/up/%d", i)), "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) {
			t.Fatalf("POST %d via %s: %d, %d bytes back, %v", i, resp.Header.Get("X-Node"), resp.StatusCode, len(got), err)
		}
	}
	// The bridges share one libzmq context, of one I/O thread each.
	if names := threadNames(t, p.Pid()); names["ZMQbg/IO/0"] != 1 || names["ZMQbg/IO/1"] != 1 {
		t.Fatalf("threads named ZMQbg/IO/0: %d, ZMQbg/IO/1: %d; want one libzmq context of two I/O threads", names["ZMQbg/IO/0"], names["ZMQbg/IO/1"])
	}
	// b0 goes away: its bridge finds it unreachable, and the others serve.
	hns[0].Stop()
	checkFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		for range 2 * nodes {
			who, err := get()
			if err != nil || who == "b0" {
				return fmt.Errorf("answer from %q, %v", who, err)
			}
		}
		return nil
	})
}
