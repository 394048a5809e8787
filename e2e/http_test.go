package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

const hCatchAll = "[blastbeat:*]\nnode = he\n"

// hEchoProxy starts a proxy whose catch-all vhost is served by an hEcho
// node named he, and waits until it routes.
func hEchoProxy(t *testing.T) (*proxy, *hNode) {
	t.Helper()
	p := startProxy(t, "", hCatchAll)
	hn := hStartNode(t, p.ZMQ, "he", hEcho())
	waitRoutable(t, p, "", "/ready")
	return p, hn
}

func TestHTTPGet(t *testing.T) {
	t.Parallel()
	p, hn := hEchoProxy(t)
	c, _ := hClient(t)
	for _, tc := range []struct {
		uri, path, query string
	}{
		{"/", "/", ""},
		{"/hello?x=1", "/hello", "x=1"},
		{"/a%20b/c?q=%41&r", "/a b/c", "q=%41&r"},
		{"/deep/er/path/", "/deep/er/path/", ""},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			req, _ := http.NewRequest("GET", p.URL(tc.uri), nil)
			req.Header.Set("X-Test", "yes")
			resp, body := hDo(t, c, req)
			if resp.StatusCode != 200 || body != "he GET "+tc.uri {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, "he GET "+tc.uri)
			}
			if resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length %d for a %d-byte body", resp.ContentLength, len(body))
			}
			h, ok := hn.Log.headOf(tc.uri)
			if !ok {
				t.Fatalf("node saw no request for %q: %s", tc.uri, hSummary(hn.Log.all()))
			}
			for k, v := range map[string]string{
				"REQUEST_METHOD":  "GET",
				"PATH_INFO":       tc.path,
				"QUERY_STRING":    tc.query,
				"SERVER_PROTOCOL": "HTTP/1.1",
				"HTTP_HOST":       p.Addr,
				"HTTP_X_TEST":     "yes",
				"UWSGI_SCHEME":    "http",
				"REMOTE_ADDR":     "127.0.0.1",
			} {
				if h.Env[k] != v {
					t.Errorf("environ %s = %q, want %q", k, h.Env[k], v)
				}
			}
		})
	}
}

func TestHTTPPostEcho(t *testing.T) {
	t.Parallel()
	p, hn := hEchoProxy(t)
	c, _ := hClient(t)
	// 0 last: see TestHTTPEmptyResponseKeepAlive
	for _, size := range []int{1, 5000, 300 << 10, 0} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			payload := make([]byte, size)
			_, _ = rand.Read(payload)
			uri := fmt.Sprintf("/post/%d", size)
			req, _ := http.NewRequest("POST", p.URL(uri), bytes.NewReader(payload))
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, body := hDo(t, c, req)
			if resp.StatusCode != 200 || resp.Header.Get("X-Node") != "he" {
				t.Fatalf("got %d from %q", resp.StatusCode, resp.Header.Get("X-Node"))
			}
			if body != string(payload) {
				t.Fatalf("echo differs: got %d bytes, sent %d", len(body), size)
			}
			h, ok := hn.Log.headOf(uri)
			if !ok {
				t.Fatalf("node saw no request for %q", uri)
			}
			if h.Env["CONTENT_LENGTH"] != strconv.Itoa(size) || h.Env["CONTENT_TYPE"] != "application/octet-stream" || h.Env["REQUEST_METHOD"] != "POST" {
				t.Errorf("environ: method %q length %q type %q", h.Env["REQUEST_METHOD"], h.Env["CONTENT_LENGTH"], h.Env["CONTENT_TYPE"])
			}
			var got []byte
			for _, m := range hn.Log.of(h.SID, "body") {
				if len(m.Body) == 0 {
					t.Errorf("an empty body message for a Content-Length body")
				}
				got = append(got, m.Body...)
			}
			// the session may carry earlier requests' bodies: take the tail
			if !bytes.HasSuffix(got, payload) {
				t.Errorf("the node's body pieces do not end with the %d bytes sent", size)
			}
		})
	}
}

// TestHTTPKeepAlive sends several requests on one client connection: the
// connection is reused and every request of it carries one sid.
func TestHTTPKeepAlive(t *testing.T) {
	t.Parallel()
	p, hn := hEchoProxy(t)
	c, _ := hClient(t)
	const n = 6
	var sids []string
	for i := 0; i < n; i++ {
		var reused atomic.Bool
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { reused.Store(ci.Reused) }}
		uri := fmt.Sprintf("/ka/%d", i)
		var req *http.Request
		want := "he GET " + uri
		if i%2 == 1 {
			want = "posted " + strconv.Itoa(i)
			req, _ = http.NewRequest("POST", p.URL(uri), strings.NewReader(want))
		} else {
			req, _ = http.NewRequest("GET", p.URL(uri), nil)
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, body := hDo(t, c, req)
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("request %d: got %d %q, want %q", i, resp.StatusCode, body, want)
		}
		if i > 0 && !reused.Load() {
			t.Errorf("request %d did not reuse the connection", i)
		}
		if resp.Close {
			t.Errorf("request %d: response closes the connection", i)
		}
		h, ok := hn.Log.headOf(uri)
		if !ok {
			t.Fatalf("node saw no request %q", uri)
		}
		sids = append(sids, h.SID)
	}
	for i, s := range sids {
		if s != sids[0] {
			t.Errorf("request %d used sid %x, request 0 sid %x", i, s, sids[0])
		}
	}
	var kaHeads int
	for _, m := range hn.Log.of(sids[0], "uwsgi") {
		if strings.HasPrefix(m.Env["REQUEST_URI"], "/ka/") {
			kaHeads++
		}
	}
	if kaHeads != n {
		t.Errorf("sid %x carried %d uwsgi messages of /ka/, want %d: %s", sids[0], kaHeads, n, hSummary(hn.Log.of(sids[0], "")))
	}
}

// TestHTTP10 checks HTTP/1.0 clients: closed after the response unless
// they ask for keep-alive.
func TestHTTP10(t *testing.T) {
	t.Parallel()
	p, hn := hEchoProxy(t)

	t.Run("close", func(t *testing.T) {
		r := hDial(t, p.Addr, 5*time.Second)
		r.write("GET /ten HTTP/1.0\r\n\r\n")
		resp, body := r.response("GET")
		if resp.StatusCode != 200 || body != "he GET /ten" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if closed, rest := r.closed(); !closed || rest != "" {
			t.Fatalf("connection not closed after an HTTP/1.0 response (closed=%v, extra %q)", closed, rest)
		}
		h, _ := hn.Log.headOf("/ten")
		if h.Env["SERVER_PROTOCOL"] != "HTTP/1.0" {
			t.Errorf("SERVER_PROTOCOL %q", h.Env["SERVER_PROTOCOL"])
		}
	})

	t.Run("keep-alive", func(t *testing.T) {
		r := hDial(t, p.Addr, 5*time.Second)
		r.write("GET /ten-ka/1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		resp, body := r.response("GET")
		if resp.StatusCode != 200 || body != "he GET /ten-ka/1" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if !strings.EqualFold(resp.Header.Get("Connection"), "keep-alive") {
			t.Errorf("HTTP/1.0 keep-alive response has Connection %q", resp.Header.Get("Connection"))
		}
		r.write("GET /ten-ka/2 HTTP/1.0\r\n\r\n")
		resp, body = r.response("GET")
		if resp.StatusCode != 200 || body != "he GET /ten-ka/2" {
			t.Fatalf("second request: got %d %q", resp.StatusCode, body)
		}
		if closed, rest := r.closed(); !closed || rest != "" {
			t.Fatalf("connection not closed after the last HTTP/1.0 response (closed=%v, extra %q)", closed, rest)
		}
		h1, _ := hn.Log.headOf("/ten-ka/1")
		h2, _ := hn.Log.headOf("/ten-ka/2")
		if h1.SID == "" || h1.SID != h2.SID {
			t.Errorf("keep-alive HTTP/1.0 requests had sids %x and %x", h1.SID, h2.SID)
		}
	})
}

// TestHTTPPipelining writes three requests at once: the responses come
// back in order and the node gets each request only once the response
// before it is complete.
func TestHTTPPipelining(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:*]\nnode = hp\n")
	var heldSID atomic.Value
	hn := hStartNode(t, p.ZMQ, "hp", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		uri := m.Env["REQUEST_URI"]
		if uri == "/p1" {
			// head and the first half of the body; the rest comes later
			_ = n.Send([]byte(m.SID), "headers", []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n/p"))
			heldSID.Store(m.SID)
			return
		}
		hRespond(n, m.SID, 200, "", uri)
	})
	waitRoutable(t, p, "", "/ready")

	r := hDial(t, p.Addr, 10*time.Second)
	r.write("GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
		"GET /p3 HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(r.br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	half := make([]byte, 2)
	if _, err := io.ReadFull(resp.Body, half); err != nil || string(half) != "/p" {
		t.Fatalf("first half of response 1: %q %v", half, err)
	}
	// A request on another connection, answered after the node handled
	// whatever the proxy had sent before it: /p2 must not be among that.
	c, _ := hClient(t)
	if _, body := hDo(t, c, hReq(t, "GET", p.URL("/other"))); body != "/other" {
		t.Fatalf("/other: %q", body)
	}
	sid, _ := heldSID.Load().(string)
	if hs := hn.Log.of(sid, "uwsgi"); len(hs) != 1 {
		t.Fatalf("the node got %d requests of the pipelining connection while response 1 was incomplete: %s", len(hs), hSummary(hs))
	}
	hn.Do(func(n *node.Node) { _ = n.Send([]byte(sid), "body", []byte("1")) })
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "1" {
		t.Fatalf("rest of response 1: %q %v", rest, err)
	}
	for _, want := range []string{"/p2", "/p3"} {
		resp, body := r.response("GET")
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("pipelined response: got %d %q, want %q", resp.StatusCode, body, want)
		}
	}
	var uris []string
	for _, m := range hn.Log.of(sid, "") {
		switch m.Type {
		case "uwsgi":
			uris = append(uris, m.Env["REQUEST_URI"])
		case "body":
			uris = append(uris, "body:"+string(m.Body))
		}
	}
	if got := strings.Join(uris, " "); got != "/p1 /p2 body:abc /p3" {
		t.Fatalf("the node saw %q on the sid, want %q", got, "/p1 /p2 body:abc /p3")
	}
}

func hReq(t testing.TB, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestHTTPExpectContinue: the proxy answers 100 Continue, then forwards
// the body.
func TestHTTPExpectContinue(t *testing.T) {
	t.Parallel()
	p, hn := hEchoProxy(t)
	r := hDial(t, p.Addr, 5*time.Second)
	r.write("POST /continue HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
	const cont = "HTTP/1.1 100 Continue\r\n\r\n"
	got := make([]byte, len(cont))
	if _, err := io.ReadFull(r.br, got); err != nil || string(got) != cont {
		t.Fatalf("before the body: got %q (%v), want %q", got, err, cont)
	}
	r.write("hello world")
	resp, body := r.response("POST")
	if resp.StatusCode != 200 || body != "hello world" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	h, _ := hn.Log.headOf("/continue")
	var got2 []byte
	for _, m := range hn.Log.of(h.SID, "body") {
		got2 = append(got2, m.Body...)
	}
	if h.Env["CONTENT_LENGTH"] != "11" || string(got2) != "hello world" {
		t.Fatalf("node got CONTENT_LENGTH %q and body %q", h.Env["CONTENT_LENGTH"], got2)
	}
}

// TestHTTPEmptyResponseKeepAlive: a response with Content-Length: 0
// completes at its head, and the connection serves the next request.
func TestHTTPEmptyResponseKeepAlive(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:*]\nnode = hz\n")
	hStartNode(t, p.ZMQ, "hz", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		switch m.Env["REQUEST_URI"] {
		case "/empty":
			_ = n.Send([]byte(m.SID), "headers", []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		case "/redirect":
			_ = n.Send([]byte(m.SID), "headers", []byte("HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"))
		default:
			hRespond(n, m.SID, 200, "", m.Env["REQUEST_URI"])
		}
	})
	waitRoutable(t, p, "", "/ready")
	r := hDial(t, p.Addr, 5*time.Second)
	for _, tc := range []struct {
		req    string
		status int
		body   string
	}{
		{"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n", 200, ""},
		{"GET /one HTTP/1.1\r\nHost: x\r\n\r\n", 200, "/one"},
		{"GET /redirect HTTP/1.1\r\nHost: x\r\n\r\n", 302, ""},
		{"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 200, "/two"},
	} {
		r.write(tc.req)
		resp, body := r.response("GET")
		if resp.StatusCode != tc.status || body != tc.body {
			t.Fatalf("%q: got %d %q", tc.req, resp.StatusCode, body)
		}
	}
}

// TestHTTPSlowFirstByte: a client that connects and sends its request a
// little later (a browser's preconnect, a slow network) is served.
func TestHTTPSlowFirstByte(t *testing.T) {
	t.Parallel()
	p, _ := hEchoProxy(t)
	r := hDial(t, p.Addr, 5*time.Second)
	// The pause is the stimulus (a slow client), not a synchronisation:
	// it spans two sweeps of the proxy, far below every timeout.
	time.Sleep(600 * time.Millisecond)
	r.write("GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := r.response("GET")
	if resp.StatusCode != 200 || body != "he GET /late" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

// TestHTTPConcurrent1000 opens 1,000 connections at once; each makes 5
// keep-alive requests and checks it gets its own responses. All
// connections are open together: the last four requests of every
// connection start once every connection has its first response.
func TestHTTPConcurrent1000(t *testing.T) {
	const conns, reqs = 1000, 5
	p := startProxy(t, "", "[blastbeat:*]\nnode = hc\n")
	hn := hStartNode(t, p.ZMQ, "hc", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type == "uwsgi" {
			hRespond(n, m.SID, 200, "", "path="+m.Env["REQUEST_URI"])
		}
	})
	hn.Log.Light.Store(true)
	waitRoutable(t, p, "", "/ready")

	start := time.Now()
	var first, all sync.WaitGroup
	first.Add(conns)
	all.Add(conns)
	release := make(chan struct{})
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		go func() {
			defer all.Done()
			firstDone := false
			defer func() {
				if !firstDone {
					first.Done()
				}
			}()
			c, err := net.DialTimeout("tcp", p.Addr, 10*time.Second)
			if err != nil {
				errs <- fmt.Errorf("conn %d: %v", i, err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			br := bufio.NewReader(c)
			for j := 0; j < reqs; j++ {
				if j == 1 {
					firstDone = true
					first.Done()
					<-release
				}
				uri := fmt.Sprintf("/c%d/r%d", i, j)
				if _, err := io.WriteString(c, "GET "+uri+" HTTP/1.1\r\nHost: many\r\n\r\n"); err != nil {
					errs <- fmt.Errorf("conn %d request %d: write: %v", i, j, err)
					return
				}
				resp, body, err := hReadResponse(br, "GET")
				if err != nil {
					errs <- fmt.Errorf("conn %d request %d: %v", i, j, err)
					return
				}
				if resp.StatusCode != 200 || body != "path="+uri {
					errs <- fmt.Errorf("conn %d request %d: got %d %q", i, j, resp.StatusCode, body)
					return
				}
			}
		}()
	}
	first.Wait()
	opened := time.Since(start)
	close(release)
	all.Wait()
	elapsed := time.Since(start)
	close(errs)
	nerr := 0
	for err := range errs {
		if nerr++; nerr <= 10 {
			t.Error(err)
		}
	}
	if nerr > 0 {
		t.Fatalf("%d of %d connections failed", nerr, conns)
	}
	t.Logf("%d concurrent connections × %d requests: %v in all (all open with a first response after %v)", conns, reqs, elapsed.Round(time.Millisecond), opened.Round(time.Millisecond))

	perSID := map[string]int{}
	for _, m := range hn.Log.heads() {
		if strings.HasPrefix(m.Env["REQUEST_URI"], "/c") {
			perSID[m.SID]++
		}
	}
	if len(perSID) != conns {
		t.Errorf("%d sids for %d connections", len(perSID), conns)
	}
	for sid, k := range perSID {
		if k != reqs {
			t.Errorf("sid %x carried %d requests, want %d", sid, k, reqs)
		}
	}
}
