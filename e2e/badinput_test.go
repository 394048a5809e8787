package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// bLimits are the [blastbeat] limits the bad-input proxy runs with.
const bLimits = "max-header-size = 4096\nmax-uri = 1024\nmax-body = 1000\nheader-timeout = 1\n"

// bRec is one message a recording node received.
type bRec struct {
	sid, typ, path string
	body           []byte
}

// bRecorder is a node handler that records every message and answers
// GET and HEAD requests with 200 "ok PATH" (other methods get no answer).
type bRecorder struct {
	mu   sync.Mutex
	msgs []bRec
}

func (r *bRecorder) handle(n *node.Node, m node.Message) {
	rec := bRec{sid: string(m.SID), typ: m.Type, body: append([]byte(nil), m.Body...)}
	var env map[string]string
	if m.Type == "uwsgi" {
		env, _ = node.Environ(m.Body)
		rec.path = env["PATH_INFO"]
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, rec)
	r.mu.Unlock()
	if m.Type == "uwsgi" && (env["REQUEST_METHOD"] == "GET" || env["REQUEST_METHOD"] == "HEAD") {
		body := "ok " + rec.path
		_ = n.Send(m.SID, "headers", fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	}
}

// sidOf returns the sid of the last request for path, or "".
func (r *bRecorder) sidOf(path string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.msgs) - 1; i >= 0; i-- {
		if m := r.msgs[i]; m.typ == "uwsgi" && m.path == path {
			return m.sid
		}
	}
	return ""
}

// sawPathWith reports whether any request path the node got contains s.
func (r *bRecorder) sawPathWith(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if m.typ == "uwsgi" && strings.Contains(m.path, s) {
			return true
		}
	}
	return false
}

// session returns the types and the total body bytes received for sid.
func (r *bRecorder) session(sid string) (types []string, bodyBytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if m.sid == sid {
			types = append(types, m.typ)
			if m.typ == "body" {
				bodyBytes += len(m.body)
			}
		}
	}
	return types, bodyBytes
}

// bSend writes payload on a new connection and reads until the proxy
// closes it or timeout passes. closed reports an EOF or a reset (a
// deadline is not a close). Write errors are ignored: a proxy may close
// before it reads everything.
func bSend(t *testing.T, addr string, payload []byte, timeout time.Duration) (raw []byte, closed bool, err error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	_, _ = c.Write(payload)
	buf := make([]byte, 4096)
	for {
		n, rerr := c.Read(buf)
		raw = append(raw, buf[:n]...)
		if rerr != nil {
			closed = errors.Is(rerr, io.EOF) || errors.Is(rerr, syscall.ECONNRESET)
			return raw, closed, rerr
		}
	}
}

// bStatusRE finds the status of a response.
var bStatusRE = regexp.MustCompile(`^HTTP/1\.[01] (\d{3}) `)

// bCheckProxyError parses raw as one proxy error response: its status, a
// text/plain body with a correct Content-Length and Connection: close.
func bCheckProxyError(raw []byte, wantClose bool) (int, error) {
	m := bStatusRE.FindSubmatch(raw)
	if m == nil {
		return 0, fmt.Errorf("no status line in %q", bTail(string(raw), 300))
	}
	status, _ := strconv.Atoi(string(m[1]))
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		return status, fmt.Errorf("unparsable response %q: %v", raw, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || int64(len(body)) != resp.ContentLength {
		return status, fmt.Errorf("body %q (%v) does not match Content-Length %d", body, err, resp.ContentLength)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return status, fmt.Errorf("Content-Type %q, want text/plain", ct)
	}
	if wantClose && !resp.Close {
		return status, fmt.Errorf("no Connection: close in %q", raw)
	}
	return status, nil
}

// bAlive checks that the proxy still routes a request to the node of host
// (whose answer must end with the request's path).
func bAlive(t *testing.T, p *proxy, host string) {
	t.Helper()
	path := fmt.Sprintf("/alive-%d", rand.Int64())
	raw, closed, err := bSend(t, p.Addr, []byte("GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"), 10*time.Second)
	if !closed || !bytes.HasPrefix(raw, []byte("HTTP/1.1 200 ")) || !bytes.HasSuffix(raw, []byte(" "+path)) {
		t.Fatalf("the proxy no longer answers: got %q (%v)\nlog:\n%s", raw, err, bTail(p.Log(), 3000))
	}
}

// bClientHello is the start of a real TLS 1.2/1.3 ClientHello record.
var bClientHello = []byte{
	0x16, 0x03, 0x01, 0x00, 0xf8, 0x01, 0x00, 0x00, 0xf4, 0x03, 0x03, 0x5b, 0x1e, 0x8a, 0x0d, 0x6c,
	0x3a, 0x10, 0x92, 0xf0, 0x4e, 0x21, 0x7b, 0x99, 0x01, 0xc3, 0xde, 0x52, 0x8f, 0x0a, 0x77, 0x18,
	0x64, 0x03, 0x2b, 0xee, 0x93, 0x40, 0xaf, 0x6c, 0x11, 0x20, 0x9e, 0x0b, 0x7d, 0x42, 0xc5, 0x3e,
	0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9,
	0x00, 0x00, 0x00, 0x0e, 0x00, 0x0c, 0x00, 0x00, 0x09, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't',
}

// TestBadRequests sends every malformed, oversize or unroutable request
// shape of PROTOCOL.md on raw sockets: each gets its exact status, closes
// the connection (unless the request was well-formed), never reaches the
// node, and leaves the proxy serving.
func TestBadRequests(t *testing.T) {
	p := startProxy(t, bLimits, "[blastbeat:good.test]\nnode = n1\n")
	rec := &bRecorder{}
	startGoNode(t, p.ZMQ, "n1", rec.handle)
	waitRoutable(t, p, "good.test", "/ready")

	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return string(b)
	}
	var seq []byte
	for i := 0; i < 256; i++ {
		seq = append(seq, byte(i))
	}
	manyHeaders := ""
	for i := 0; len(manyHeaders) < 4200; i++ {
		manyHeaders += fmt.Sprintf("X-H%03d: %s\r\n", i, strings.Repeat("v", 40))
	}
	const H = "Host: good.test\r\n"

	// {P} is replaced by a path unique to the case; a head that may reach
	// the node (it is well-formed up to the error) says forwarded.
	cases := []struct {
		name      string
		req       string
		status    int // exact status; 0 with anyOf: any of those or a close without answer
		anyOf     []int
		forwarded bool // the head is valid: it reaches the node, which must get `end`
	}{
		// Smuggling shapes (PROTOCOL.md): 400.
		{name: "cl-and-te", req: "POST {P} HTTP/1.1\r\n" + H + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
		{name: "te-and-cl", req: "POST {P} HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", status: 400},
		{name: "two-content-lengths", req: "POST {P} HTTP/1.1\r\n" + H + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", status: 400},
		{name: "content-length-list-differs", req: "POST {P} HTTP/1.1\r\n" + H + "Content-Length: 5, 6\r\n\r\nhello!", status: 400},
		{name: "content-length-sign", req: "POST {P} HTTP/1.1\r\n" + H + "Content-Length: +5\r\n\r\nhello", status: 400},
		{name: "obs-fold-space", req: "GET {P} HTTP/1.1\r\n" + H + "X-Folded: a\r\n b\r\n\r\n", status: 400},
		{name: "obs-fold-tab", req: "GET {P} HTTP/1.1\r\n" + H + "X-Folded: a\r\n\tb\r\n\r\n", status: 400},
		{name: "obs-fold-te", req: "POST {P} HTTP/1.1\r\n" + H + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", status: 400},
		{name: "bare-lf-request-line", req: "GET {P} HTTP/1.1\n" + H + "\r\n", status: 400},
		{name: "bare-lf-header", req: "GET {P} HTTP/1.1\r\nHost: good.test\nX-A: b\r\n\r\n", status: 400},
		{name: "bare-lf-end-of-head", req: "GET {P} HTTP/1.1\r\n" + H + "\n", status: 400},
		{name: "bare-lf-everywhere", req: "GET {P} HTTP/1.1\nHost: good.test\n\n", status: 400},
		{name: "bare-cr", req: "GET {P} HTTP/1.1\rHost: good.test\r\n\r\n", status: 400},
		{name: "space-before-colon-host", req: "GET {P} HTTP/1.1\r\nHost : good.test\r\n\r\n", status: 400},
		{name: "space-before-colon-te", req: "POST {P} HTTP/1.1\r\n" + H + "Content-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", status: 400},
		{name: "tab-before-colon", req: "GET {P} HTTP/1.1\r\n" + H + "X-A\t: b\r\n\r\n", status: 400},
		{name: "te-twice", req: "POST {P} HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
		{name: "te-chunked-not-last", req: "POST {P} HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", status: 400},
		{name: "te-in-http10", req: "POST {P} HTTP/1.0\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400},
		{name: "nul-in-header", req: "GET {P} HTTP/1.1\r\n" + H + "X-A: a\x00b\r\n\r\n", status: 400},
		{name: "two-hosts", req: "GET {P} HTTP/1.1\r\n" + H + "Host: other.test\r\n\r\n", status: 400},
		{name: "absolute-uri-host-mismatch", req: "GET http://other.test{P} HTTP/1.1\r\n" + H + "\r\n", status: 400},
		{name: "missing-host", req: "GET {P} HTTP/1.1\r\nX-A: b\r\n\r\n", status: 400},

		// Limits.
		{name: "head-too-large", req: "GET {P} HTTP/1.1\r\n" + H + "X-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n", status: 431},
		{name: "head-too-large-many-fields", req: "GET {P} HTTP/1.1\r\n" + H + manyHeaders + "\r\n", status: 431},
		{name: "uri-too-long", req: "GET {P}/" + strings.Repeat("u", 1100) + " HTTP/1.1\r\n" + H + "\r\n", status: 414},
		{name: "uri-too-long-past-head-limit", req: "GET {P}/" + strings.Repeat("u", 5000) + " HTTP/1.1\r\n" + H + "\r\n", status: 414},
		{name: "body-too-large-content-length", req: "POST {P} HTTP/1.1\r\n" + H + "Content-Length: 5000\r\n\r\n", status: 413},
		{name: "body-too-large-chunked", req: "POST {P} HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n7d0\r\n" + strings.Repeat("b", 2000) + "\r\n0\r\n\r\n", status: 413, forwarded: true},
		{name: "body-too-large-chunked-by-one", req: "POST {P} HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n3e8\r\n" + strings.Repeat("b", 1000) + "\r\n1\r\nb\r\n0\r\n\r\n", status: 413, forwarded: true},
		{name: "bad-chunk-size", req: "POST {P} HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", status: 400, forwarded: true},
		{name: "stalled-head", req: "GET {P} HTTP/1.1\r\nHost: goo", status: 408},

		// Unroutable without a catch-all: HTTP/1.0 needs no Host, and
		// closes after its answer.
		{name: "unknown-host-http10", req: "GET {P} HTTP/1.0\r\nHost: nowhere.test\r\n\r\n", status: 404},
		{name: "no-host-http10", req: "GET {P} HTTP/1.0\r\n\r\n", status: 404},

		// Garbage: 400 or a close, never a hang.
		{name: "garbage-random-512", req: random(512), anyOf: []int{400}},
		{name: "garbage-random-64k", req: random(64 << 10), anyOf: []int{400}},
		{name: "garbage-tls-client-hello", req: string(bClientHello), anyOf: []int{400}},
		{name: "garbage-bytes-0-255", req: string(seq), anyOf: []int{400}},
		{name: "garbage-nuls", req: strings.Repeat("\x00", 1000), anyOf: []int{400}},
		{name: "garbage-method-only", req: "GET\r\n\r\n", anyOf: []int{400}},
		{name: "garbage-no-version", req: "GET {P}\r\n" + H + "\r\n", anyOf: []int{400}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("/bad%02d-%s", i, tc.name)
			req := strings.ReplaceAll(tc.req, "{P}", path)
			start := time.Now()
			raw, closed, err := bSend(t, p.Addr, []byte(req), 5*time.Second)
			if !closed {
				t.Fatalf("request %q: the connection was not closed within 5s (%v); got %q",
					bTail(req, 200), err, bTail(string(raw), 300))
			}
			if tc.anyOf != nil {
				if len(raw) > 0 {
					status, perr := bCheckProxyError(raw, true)
					ok := false
					for _, s := range tc.anyOf {
						ok = ok || s == status
					}
					if !ok || perr != nil {
						t.Errorf("garbage %q: status %d, want one of %v or a close: %v", bTail(req, 80), status, tc.anyOf, perr)
					}
				}
			} else {
				status, perr := bCheckProxyError(raw, true)
				if status != tc.status || perr != nil {
					t.Errorf("request %q:\nwant %d and Connection: close, got %d after %v: %v\n%q",
						bTail(req, 200), tc.status, status, time.Since(start).Round(time.Millisecond), perr, bTail(string(raw), 300))
				}
			}
			bAlive(t, p, "good.test")
			// The alive request went to the node after this one on the same
			// pipe, so a forwarded head would have arrived by now.
			if !tc.forwarded && rec.sawPathWith(path) {
				t.Errorf("request %q reached the node", bTail(req, 200))
			}
			if tc.forwarded {
				sid := rec.sidOf(path)
				if sid == "" {
					t.Fatalf("the valid head of %q never reached the node", bTail(req, 200))
				}
				checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
					if types, _ := rec.session(sid); types[len(types)-1] != "end" {
						return fmt.Errorf("the node got %v for the refused request, no final end", types)
					}
					return nil
				})
			}
		})
	}

	// 404 on a well-formed request is not a protocol error: the answer has
	// a correct length, the request's body is skipped (never parsed as a
	// request) and the connection serves the next request.
	t.Run("unknown-host-keeps-connection", func(t *testing.T) {
		smuggled := "GET /smuggled HTTP/1.1\r\nHost: good.test\r\n\r\n"
		reqs := []string{
			"GET /unknown-1 HTTP/1.1\r\nHost: nowhere.test\r\n\r\n",
			fmt.Sprintf("POST /unknown-2 HTTP/1.1\r\nHost: nowhere.test\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled),
			"POST /unknown-3 HTTP/1.1\r\nHost: nowhere.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
				fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled),
		}
		for _, r := range reqs {
			c, err := net.Dial("tcp", p.Addr)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			_, _ = io.WriteString(c, r)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				c.Close()
				t.Fatalf("%q: %v", r, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 404 || int64(len(body)) != resp.ContentLength || resp.Close {
				t.Errorf("%q: got %d close=%v body %q (length %d); want 404, keep-alive", r, resp.StatusCode, resp.Close, body, resp.ContentLength)
			}
			_, _ = io.WriteString(c, "GET /after-404 HTTP/1.1\r\nHost: good.test\r\n\r\n")
			resp, err = http.ReadResponse(br, nil)
			if err != nil {
				c.Close()
				t.Fatalf("after %q: %v", r, err)
			}
			body, _ = io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != "ok /after-404" {
				t.Errorf("after %q: got %d %q, want 200 \"ok /after-404\"", r, resp.StatusCode, body)
			}
			c.Close()
		}
		if rec.sawPathWith("/smuggled") || rec.sawPathWith("/unknown-") {
			t.Errorf("a refused request or the body of one reached the node")
		}
	})

	// A request body exactly at max-body is accepted.
	t.Run("body-at-limit-accepted", func(t *testing.T) {
		for _, req := range []string{
			"POST /at-limit-cl HTTP/1.1\r\nHost: good.test\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("b", 1000),
			"POST /at-limit-chunked HTTP/1.1\r\nHost: good.test\r\nTransfer-Encoding: chunked\r\n\r\n1f4\r\n" +
				strings.Repeat("b", 500) + "\r\n1f4\r\n" + strings.Repeat("b", 500) + "\r\n0\r\n\r\n",
		} {
			c, err := net.Dial("tcp", p.Addr)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(c, req)
			path := strings.Fields(req)[1]
			checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
				types, n := rec.session(rec.sidOf(path))
				if n != 1000 {
					return fmt.Errorf("node got %v, %d body bytes for %s", types, n, path)
				}
				return nil
			})
			c.Close()
		}
	})
}

// TestClientGoneMidBody: a client that sends part of a declared body and
// goes away leaves the node with an `end` for its sid.
func TestClientGoneMidBody(t *testing.T) {
	p := startProxy(t, "", "[blastbeat:b.test]\nnode = y\n")
	rec := &bRecorder{}
	startGoNode(t, p.ZMQ, "y", rec.handle)
	waitRoutable(t, p, "b.test", "/ready")

	for _, tc := range []struct {
		name  string
		reset bool // close with RST instead of FIN
	}{{"fin", false}, {"rst", true}} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/mid-body-" + tc.name
			c, err := net.Dial("tcp", p.Addr)
			if err != nil {
				t.Fatal(err)
			}
			head := "POST " + path + " HTTP/1.1\r\nHost: b.test\r\nContent-Length: 100000\r\n\r\n"
			if _, err := io.WriteString(c, head+strings.Repeat("m", 1000)); err != nil {
				t.Fatal(err)
			}
			var sid string
			checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
				sid = rec.sidOf(path)
				if _, n := rec.session(sid); sid == "" || n != 1000 {
					return fmt.Errorf("node has %d body bytes of %s", n, path)
				}
				return nil
			})
			if tc.reset {
				_ = c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
			checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
				types, n := rec.session(sid)
				if types[len(types)-1] != "end" || n != 1000 {
					return fmt.Errorf("node got %v (%d body bytes); want uwsgi, body…, end", types, n)
				}
				return nil
			})
			bAlive(t, p, "b.test")
		})
	}
}

// bEvilHead is what a misbehaving node tries to make a client see.
const bEvilHead = "HTTP/1.1 299 EVIL\r\nContent-Length: 4\r\n\r\nEVIL"

// bStopStats stops the proxy with SIGTERM and returns the stats line it
// logs on the way out.
func bStopStats(t *testing.T, p *proxy) string {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	var line string
	checkFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		for _, l := range strings.Split(p.Log(), "\n") {
			if strings.Contains(l, `msg="blastbeat stopped"`) {
				line = l
				return nil
			}
		}
		return errors.New("no \"blastbeat stopped\" line in the log yet")
	})
	// Wait for the exit itself (a zombie until startProxy's cleanup reaps
	// it), so that the cleanup's SIGTERM does not hit a process whose
	// handler is already gone.
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
		if err != nil {
			return nil
		}
		if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return nil
		}
		return errors.New("blastbeat has not exited yet")
	})
	return line
}

// bStat returns counter name (BadMessage: bad_message=N, DroppedFrames:
// bridge_dropped_frames=N) of the stop line; 0 when absent (zero counters
// are left out of it).
func bStat(line, name string) int {
	key := regexp.MustCompile(`([a-z0-9])([A-Z])`).ReplaceAllString(name, "${1}_${2}")
	key = strings.ToLower(key)
	m := regexp.MustCompile(`[ ](bridge_)?` + key + `=(\d+)`).FindStringSubmatch(line)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[2])
	return n
}

// TestNodeMalformedMessages: whatever a node sends (wrong frame counts,
// unknown types, bad or foreign sids, malformed heads), the proxy drops it
// or answers 502, never forwards it as a response and keeps serving.
func TestNodeMalformedMessages(t *testing.T) {
	p := startProxy(t, "", "[blastbeat:*]\nnode = evil\n")
	rng := rand.New(rand.NewPCG(3, 4))
	fakeSID := func(loop byte, slot int) []byte {
		s := make([]byte, 16)
		for i := range s {
			s[i] = byte(rng.UintN(256))
		}
		s[6] = 0x40 | s[6]&0x0f
		s[8] = 0x80 | loop&0x3f
		s[9], s[10], s[11] = byte(slot>>16), byte(slot>>8), byte(slot)
		return s
	}
	type frames = [][]byte
	b := func(s string) []byte { return []byte(s) }
	evil := map[string]func(sid []byte) []frames{
		"1-frame":       func(sid []byte) []frames { return []frames{{sid}} },
		"2-frames":      func(sid []byte) []frames { return []frames{{sid, b("headers")}} },
		"4-frames":      func(sid []byte) []frames { return []frames{{sid, b("headers"), b(bEvilHead), b("x")}} },
		"5-frames":      func(sid []byte) []frames { return []frames{{sid, b("headers"), b(bEvilHead), b("x"), b("y")}} },
		"unknown-type":  func(sid []byte) []frames { return []frames{{sid, b("bogus"), b(bEvilHead)}} },
		"empty-type":    func(sid []byte) []frames { return []frames{{sid, b(""), b(bEvilHead)}} },
		"type-with-nul": func(sid []byte) []frames { return []frames{{sid, b("headers\x00"), b(bEvilHead)}} },
		"sid-3-bytes":   func(sid []byte) []frames { return []frames{{sid[:3], b("headers"), b(bEvilHead)}} },
		"sid-17-bytes": func(sid []byte) []frames {
			return []frames{{append(append([]byte{}, sid...), 0), b("headers"), b(bEvilHead)}}
		},
		"sid-empty": func(sid []byte) []frames { return []frames{{b(""), b("headers"), b(bEvilHead)}} },
		"sid-never-issued": func(sid []byte) []frames {
			return []frames{{fakeSID(0, 0), b("headers"), b(bEvilHead)}, {fakeSID(1, 0), b("headers"), b(bEvilHead)}}
		},
		"sid-same-slot": func(sid []byte) []frames {
			s := append([]byte{}, sid...)
			s[0] ^= 0xff
			return []frames{{s, b("headers"), b(bEvilHead)}}
		},
		"sid-loop-63":    func(sid []byte) []frames { return []frames{{fakeSID(63, 0xffffff), b("headers"), b(bEvilHead)}} },
		"sid-slot-max":   func(sid []byte) []frames { return []frames{{fakeSID(0, 0xffffff), b("headers"), b(bEvilHead)}} },
		"pong-with-body": func(sid []byte) []frames { return []frames{{sid, b("pong"), b(bEvilHead)}} },
		"websocket-on-http": func(sid []byte) []frames {
			return []frames{{sid, b("websocket"), b("EVIL")}, {sid, b("websocket-binary"), b("EVIL")}}
		},
		"body-before-head": func(sid []byte) []frames { return []frames{{sid, b("body"), b("EVIL")}, {sid, b("chunk"), b("EVIL")}} },
		"huge-type":        func(sid []byte) []frames { return []frames{{sid, bytes.Repeat(b("h"), 1<<16), b(bEvilHead)}} },
		"ping-to-proxy":    func(sid []byte) []frames { return []frames{{sid, b("ping"), b(bEvilHead)}} },
	}
	// Cases answered with 502 instead of the good response.
	bad := map[string]frames{
		"bad-head-garbage": {nil, b("headers"), b("\x00\x01garbage\r\n\r\n")},
		"bad-head-no-end":  {nil, b("headers"), b("HTTP/1.1 200 OK\r\nContent-Length: 4")},
		"bad-head-status":  {nil, b("headers"), b("HTTP/1.1 2000 OK\r\n\r\n")},
		"bad-uwsgi":        {nil, b("uwsgi"), b("\x00\xff\xff\x00\x01")},
		"empty-head":       {nil, b("headers"), nil},
	}
	startGoNode(t, p.ZMQ, "evil", func(n *node.Node, m node.Message) {
		if m.Type != "uwsgi" {
			return
		}
		env, _ := node.Environ(m.Body)
		kind := strings.TrimPrefix(env["PATH_INFO"], "/evil/")
		if f, ok := bad[kind]; ok {
			_, _ = n.Socket().SendMessage(m.SID, f[1], f[2])
			return
		}
		if f, ok := evil[kind]; ok {
			for _, msg := range f(m.SID) {
				args := make([]any, len(msg))
				for i := range msg {
					args[i] = msg[i]
				}
				_, _ = n.Socket().SendMessage(args...)
			}
		}
		body := "good " + env["PATH_INFO"]
		_ = n.Send(m.SID, "headers", fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
		if kind == "stray-after-response" {
			// Only body-like strays: an HTTP/1.x sid is the connection's,
			// so a late `headers` (or `retry`, `end`) may legitimately be
			// taken for the next request's, which the client may already
			// have sent.
			_ = n.Send(m.SID, "body", []byte("EVIL"))
			_ = n.Send(m.SID, "chunk", []byte("EVIL"))
			_ = n.Send(m.SID, "chunk", nil)
			_ = n.Send(m.SID, "websocket", []byte("EVIL"))
		}
	})
	waitRoutable(t, p, "", "/ready")

	var kinds []string
	for k := range evil {
		kinds = append(kinds, k)
	}
	kinds = append(kinds, "stray-after-response")
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			c, err := net.Dial("tcp", p.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			var seen bytes.Buffer
			br := bufio.NewReader(io.TeeReader(c, &seen))
			for _, path := range []string{"/evil/" + kind, "/next"} {
				_, _ = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%s: %v; read %q", path, err, seen.String())
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || string(body) != "good "+path {
					t.Fatalf("%s: got %d %q; want 200 %q", path, resp.StatusCode, body, "good "+path)
				}
			}
			if strings.Contains(seen.String(), "EVIL") {
				t.Errorf("the client saw a dropped message: %q", seen.String())
			}
			bAlive(t, p, "x")
		})
	}
	for kind := range bad {
		t.Run(kind, func(t *testing.T) {
			raw, closed, err := bSend(t, p.Addr, []byte("GET /evil/"+kind+" HTTP/1.1\r\nHost: x\r\n\r\n"), 5*time.Second)
			status, perr := bCheckProxyError(raw, true)
			if !closed || status != 502 || perr != nil {
				t.Errorf("want 502 and a close, got %d closed=%v (%v, %v): %q", status, closed, err, perr, raw)
			}
			bAlive(t, p, "x")
		})
	}
	stats := bStopStats(t, p)
	t.Logf("proxy stats: %s", stats)
	if bStat(stats, "BadMessage") < 1 || bStat(stats, "DroppedFrames") < 1 || bStat(stats, "Stale") < 1 ||
		bStat(stats, "BadResponse") < 1 || bStat(stats, "Unexpected") < 1 {
		t.Errorf("the dropped messages were not all counted: %s", stats)
	}
}

// TestNodeWritesForeignSession: node x of vhost a.test writes headers,
// body, chunk, end and retry to a sid of node y's session in vhost b.test
// (while it waits for its response head, and again between requests); y's
// client never sees x's bytes and keeps its connection.
func TestNodeWritesForeignSession(t *testing.T) {
	p := startProxy(t, "", "[blastbeat:a.test]\nnode = x\n\n[blastbeat:b.test]\nnode = y\n")
	var mu sync.Mutex
	var victim []byte
	release := make(chan struct{}, 1)
	startGoNode(t, p.ZMQ, "y", func(n *node.Node, m node.Message) {
		if m.Type != "uwsgi" {
			return
		}
		env, _ := node.Environ(m.Body)
		path := env["PATH_INFO"]
		if strings.HasPrefix(path, "/victim") {
			mu.Lock()
			victim = append([]byte(nil), m.SID...)
			mu.Unlock()
		}
		if path == "/victim-hold" {
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
		}
		body := "y " + path
		_ = n.Send(m.SID, "headers", fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	})
	startGoNode(t, p.ZMQ, "x", func(n *node.Node, m node.Message) {
		if m.Type != "uwsgi" {
			return
		}
		mu.Lock()
		sid := victim
		mu.Unlock()
		if sid != nil {
			_ = n.Send(sid, "headers", []byte(bEvilHead))
			_ = n.Send(sid, "body", []byte("EVILX"))
			_ = n.Send(sid, "chunk", []byte("EVILC"))
			_ = n.Send(sid, "uwsgi", []byte("\x00\x0e\x00\x00\x06\x00Status\x04\x00EVIL"))
			_ = n.Send(sid, "retry", nil)
			_ = n.Send(sid, "end", nil)
		}
		body := fmt.Sprintf("x attacked=%v", sid != nil)
		_ = n.Send(m.SID, "headers", fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	})
	waitRoutable(t, p, "a.test", "/ready")
	waitRoutable(t, p, "b.test", "/ready")

	// An intruder whose identity no vhost lists writes to the victim too.
	intruder, err := node.Dial("intruder", p.ZMQ)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()

	attack := func() {
		t.Helper()
		mu.Lock()
		sid := victim
		mu.Unlock()
		_ = intruder.Send(sid, "headers", []byte(bEvilHead))
		_ = intruder.Send(sid, "end", nil)
		// x's own response comes after its attack on the same pipe: once
		// it is here, the attack was delivered to the victim's loop.
		raw, closed, err := bSend(t, p.Addr, []byte("GET /attack HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"), 5*time.Second)
		if !closed || !bytes.HasSuffix(raw, []byte("x attacked=true")) {
			t.Fatalf("attack request: %q (%v)", raw, err)
		}
	}

	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var seen bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &seen))
	read := func(want string) {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("victim: %v; read %q", err, seen.String())
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != want || resp.Close {
			t.Fatalf("victim got %d %q close=%v; want 200 %q; all read: %q", resp.StatusCode, body, resp.Close, want, seen.String())
		}
	}

	// 1. While the victim waits for its response head.
	_, _ = io.WriteString(c, "GET /victim-hold HTTP/1.1\r\nHost: b.test\r\n\r\n")
	checkFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if victim == nil {
			return errors.New("y has not seen the victim's request")
		}
		return nil
	})
	attack()
	release <- struct{}{}
	read("y /victim-hold")

	// 2. Between requests of the kept-alive connection.
	attack()
	_, _ = io.WriteString(c, "GET /victim-again HTTP/1.1\r\nHost: b.test\r\n\r\n")
	read("y /victim-again")

	if strings.Contains(seen.String(), "EVIL") {
		t.Errorf("the victim saw x's bytes: %q", seen.String())
	}
	bAlive(t, p, "b.test")
	stats := bStopStats(t, p)
	t.Logf("proxy stats: %s", stats)
	if bStat(stats, "Unauthorized") < 12 {
		t.Errorf("x's 12 foreign messages were not all counted as Unauthorized: %s", stats)
	}
}
