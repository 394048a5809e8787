package e2e

// HTTP semantics the proxy enforces or adds on the way through (RFC 9110,
// RFC 9112): Upgrade is hop-by-hop, Date is added, TRACE is refused,
// methods are case-sensitive, a path that decodes to a control byte is
// refused, and chunk extensions are parsed strictly. Every identifier
// starts with s to stay clear of the other e2e files.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/blastbeat/blastbeat/node"
)

// sReadmeWSNode is a node written the way the original README's Python
// backend is (its uwsgi_to_dict, its recv_multipart loop, its ping/pong),
// with the README's WebSocket convention: a uwsgi message whose environ
// has HTTP_UPGRADE is a WebSocket whose handshake the proxy answers, so
// the node sends nothing for it and echoes the `websocket` messages that
// follow. Any other request gets a plain 200 naming its path and the
// HTTP_UPGRADE it saw. A node like this never answers a plain request
// that carries HTTP_UPGRADE.
const sReadmeWSNode = `import sys
import struct

import zmq


def uwsgi_to_dict(msg):
    (ulen, ) = struct.unpack('<H', msg[1:3])
    pos = 4
    env = {}
    while pos < ulen:
        (klen,) = struct.unpack('<H', msg[pos:pos+2])
        k = msg[pos+2:pos+2+klen]
        pos += 2+klen
        (vlen,) = struct.unpack('<H', msg[pos:pos+2])
        v = msg[pos+2:pos+2+vlen]
        pos += 2+vlen
        env[k] = v
    return env


endpoint, identity = sys.argv[1], sys.argv[2]

context = zmq.Context()
socket = context.socket(zmq.DEALER)
socket.setsockopt(zmq.IDENTITY, identity.encode())
socket.connect(endpoint)

while True:
    sid, msg_type, msg_body = socket.recv_multipart()
    if msg_type == b'ping':
        socket.send_multipart([sid, b'pong', b''])
        continue
    if msg_type == b'websocket':
        socket.send_multipart([sid, b'websocket', msg_body])
        continue
    if msg_type != b'uwsgi':
        continue
    env = uwsgi_to_dict(msg_body)
    path = env.get(b'PATH_INFO', b'?')
    if b'HTTP_UPGRADE' in env:
        print('websocket %s upgrade=%s' % (path, env[b'HTTP_UPGRADE']))
        continue
    print('http %s' % path)
    body = b'plain ' + path + b' upgrade=' + env.get(b'HTTP_UPGRADE', b'-')
    head = b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n' % len(body)
    socket.send_multipart([sid, b'headers', head])
    socket.send_multipart([sid, b'body', body])
`

// sStartPythonSource writes src to a temporary file and runs it like
// bStartPythonNode runs a testdata script.
func sStartPythonSource(t *testing.T, name, src, endpoint, identity string) *logBuffer {
	t.Helper()
	file := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &logBuffer{}
	cmd := exec.Command(bPython, "-u", file, endpoint, identity)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by its pid
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Errorf("python node %s (pid %d) did not exit", name, pid)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("%s (pid %d) output:\n%s", name, pid, bTail(out.String(), 2000))
		}
	})
	return out
}

// sWSHeaders are the WebSocket handshake fields other than Connection.
const sWSHeaders = "Upgrade: websocket\r\nSec-WebSocket-Key: " + wKey + "\r\nSec-WebSocket-Version: 13\r\n"

// TestSemanticsUpgradeWithoutConnection: RFC 9110 §7.8 makes Upgrade
// hop-by-hop, meaningful only when Connection lists "upgrade". A request
// with the WebSocket fields but no "Connection: upgrade" is a plain HTTP
// request: no 101, and the node's environ has no HTTP_UPGRADE, so a
// README-style node (which takes HTTP_UPGRADE for a WebSocket and stays
// silent) answers it at once instead of leaving the client to the proxy's
// 504 after `timeout`. The same node with a real handshake proves it does
// tell the two apart.
func TestSemanticsUpgradeWithoutConnection(t *testing.T) {
	t.Parallel()
	bNeedPythonZMQ(t)
	const timeout = 15 * time.Second // long enough for a loaded run, short enough to tell a 504 apart
	p := startProxy(t, "timeout = 15\n", "[blastbeat:*]\nnode = pyws\n")
	out := sStartPythonSource(t, "readme_ws_node.py", sReadmeWSNode, p.ZMQ, "pyws")
	waitRoutable(t, p, "", "/ready")

	for _, tc := range []struct{ name, connection string }{
		{name: "no-connection", connection: ""},
		{name: "connection-keep-alive", connection: "Connection: keep-alive\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/plain-" + tc.name
			req := "GET " + path + " HTTP/1.1\r\nHost: ws.test\r\n" + tc.connection + sWSHeaders + "\r\n"
			r := hDial(t, p.Addr, 2*timeout)
			start := time.Now()
			r.write(req)
			resp, body := r.response("GET")
			took := time.Since(start)
			if resp.StatusCode != 200 || body != "plain "+path+" upgrade=-" {
				t.Fatalf("request %q: got %d %q after %v; want the node's 200 %q (a 504 after the %v timeout means "+
					"the node saw HTTP_UPGRADE)", req, resp.StatusCode, body, took.Round(time.Millisecond), "plain "+path+" upgrade=-", timeout)
			}
			if took >= timeout {
				t.Errorf("the 200 took %v, not within the proxy's %v timeout", took, timeout)
			}
			if resp.Header.Get("Sec-WebSocket-Accept") != "" {
				t.Errorf("a plain response carries Sec-WebSocket-Accept: %v", resp.Header)
			}
			// The connection is a plain keep-alive one: a second request
			// on it is answered too.
			r.write("GET /after HTTP/1.1\r\nHost: ws.test\r\n\r\n")
			if resp, body := r.response("GET"); resp.StatusCode != 200 || body != "plain /after upgrade=-" {
				t.Fatalf("second request on the connection: got %d %q", resp.StatusCode, body)
			}
		})
	}

	// The control: with Connection: Upgrade it is a WebSocket, which the
	// node sees (HTTP_UPGRADE) and echoes.
	t.Run("control-real-upgrade", func(t *testing.T) {
		c := wRawUpgrade(t, p, "/real", nil)
		if _, err := c.Write(wFrame(0x81, []byte("hi"))); err != nil {
			t.Fatal(err)
		}
		c.expectFrame(t, ws.OpText, []byte("hi"))
		checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if !strings.Contains(out.String(), "websocket b'/real' upgrade=b'websocket'") {
				return fmt.Errorf("the node never printed the WebSocket for /real")
			}
			return nil
		})
	})
}

// sOwnDate is the Date a node sets itself.
const sOwnDate = "Sun, 06 Nov 1994 08:49:37 GMT"

// TestSemanticsDate: RFC 9110 §6.6.1 — a response from the node without a
// Date gets one from the proxy (an IMF-fixdate of now), whatever its
// framing; a node's own Date, in any case, is kept and not doubled.
func TestSemanticsDate(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", hCatchAll)
	echo := hEcho()
	hStartNode(t, p.ZMQ, "he", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type == "uwsgi" {
			switch m.Env["PATH_INFO"] {
			case "/own-date":
				hRespond(n, m.SID, 200, "Date: "+sOwnDate+"\r\n", "own")
				return
			case "/own-date-lower":
				hRespond(n, m.SID, 200, "date: "+sOwnDate+"\r\n", "own")
				return
			}
		}
		echo(hn, n, m)
	})
	waitRoutable(t, p, "", "/ready")

	for _, tc := range []struct {
		name, req, method, body string
		own                     bool // the node sent sOwnDate
	}{
		{name: "content-length", req: "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n", method: "GET", body: "he GET /plain"},
		{name: "chunked", req: "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			method: "POST", body: "hello"},
		{name: "http10-client", req: "GET /ten HTTP/1.0\r\nHost: x\r\n\r\n", method: "GET", body: "he GET /ten"},
		{name: "node-date", req: "GET /own-date HTTP/1.1\r\nHost: x\r\n\r\n", method: "GET", body: "own", own: true},
		{name: "node-date-lowercase", req: "GET /own-date-lower HTTP/1.1\r\nHost: x\r\n\r\n", method: "GET", body: "own", own: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := hDial(t, p.Addr, 10*time.Second)
			before := time.Now()
			r.write(tc.req)
			resp, body := r.response(tc.method)
			after := time.Now()
			if resp.StatusCode != 200 || body != tc.body {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, tc.body)
			}
			dates := resp.Header.Values("Date")
			if len(dates) != 1 {
				t.Fatalf("Date fields %q, want exactly one", dates)
			}
			if tc.own {
				if dates[0] != sOwnDate {
					t.Errorf("Date %q, want the node's %q", dates[0], sOwnDate)
				}
				return
			}
			// IMF-fixdate exactly (http.ParseTime also takes the obsolete
			// forms), in GMT, within a few seconds of now.
			d, err := time.Parse(http.TimeFormat, dates[0])
			if err != nil {
				t.Fatalf("Date %q is not an IMF-fixdate: %v", dates[0], err)
			}
			if _, err := http.ParseTime(dates[0]); err != nil {
				t.Fatalf("http.ParseTime(%q): %v", dates[0], err)
			}
			const slack = 3 * time.Second
			if d.Before(before.Add(-slack)) || d.After(after.Add(slack)) {
				t.Errorf("Date %q is not within %v of the request (%v .. %v)", dates[0], slack,
					before.UTC().Format(http.TimeFormat), after.UTC().Format(http.TimeFormat))
			}
		})
	}
}

// sSmuggled is a request hidden in the body of another.
const sSmuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

// TestSemanticsTrace: RFC 9110 §9.3.8 — TRACE echoes the request,
// credentials included (cross-site tracing), so the proxy answers it 405
// with Allow (§15.5.6) and never forwards it; the connection stays usable
// and the node sees only the next request. A vhost with allow-trace =
// true passes TRACE to its node.
func TestSemanticsTrace(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", hCatchAll+"\n[blastbeat:trace.test]\nnode = he\nallow-trace = true\n")
	hn := hStartNode(t, p.ZMQ, "he", hEcho())
	waitRoutable(t, p, "", "/ready")

	for _, tc := range []struct{ name, trace string }{
		{name: "plain", trace: "TRACE /t1 HTTP/1.1\r\nHost: x\r\nCookie: secret=1\r\n\r\n"},
		// A body (which a client must not send, §9.3.8) is skipped,
		// never read as the next request.
		{name: "with-body", trace: fmt.Sprintf("TRACE /t2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(sSmuggled), sSmuggled)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after := "/after-trace-" + tc.name
			r := hDial(t, p.Addr, 10*time.Second)
			r.write(tc.trace)
			resp, body := r.response("TRACE")
			if resp.StatusCode != 405 {
				t.Fatalf("request %q: got %d %q, want 405", tc.trace, resp.StatusCode, body)
			}
			if allow := resp.Header.Get("Allow"); allow == "" || strings.Contains(allow, "TRACE") {
				t.Errorf("405 with Allow %q, want a list of methods without TRACE", allow)
			}
			if resp.Close {
				t.Errorf("405 closes the connection; want it kept alive")
			}
			r.write("GET " + after + " HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, body = r.response("GET")
			if resp.StatusCode != 200 || body != "he GET "+after {
				t.Fatalf("GET after the TRACE on the same connection: got %d %q", resp.StatusCode, body)
			}
			h, ok := hn.Log.headOf(after)
			if !ok {
				t.Fatalf("the node never saw %s: %s", after, hSummary(hn.Log.all()))
			}
			// The connection's session: the GET is the only request the
			// node got on it.
			if heads := sSessionHeads(hn.Log, h.SID); len(heads) != 1 {
				t.Errorf("the node got %d requests on the connection, want only the GET: %s", len(heads), hSummary(heads))
			}
			for _, m := range hn.Log.heads() {
				if m.Env["REQUEST_METHOD"] == "TRACE" || m.Env["PATH_INFO"] == "/smuggled" {
					t.Errorf("a refused TRACE (or its body) reached the node: %s", hSummary([]hMsg{m}))
				}
			}
		})
	}

	t.Run("allow-trace", func(t *testing.T) {
		r := hDial(t, p.Addr, 10*time.Second)
		r.write("TRACE /traced HTTP/1.1\r\nHost: trace.test\r\n\r\n")
		resp, body := r.response("TRACE")
		if resp.StatusCode != 200 || body != "he TRACE /traced" {
			t.Fatalf("TRACE on an allow-trace vhost: got %d %q, want the node's 200 \"he TRACE /traced\"", resp.StatusCode, body)
		}
		if h, ok := hn.Log.headOf("/traced"); !ok || h.Env["REQUEST_METHOD"] != "TRACE" {
			t.Errorf("the node saw %v for /traced, want REQUEST_METHOD TRACE", h.Env)
		}
	})
}

// sSessionHeads returns the request heads the node got for sid.
func sSessionHeads(l *hLog, sid string) []hMsg {
	var out []hMsg
	for _, m := range l.heads() {
		if m.SID == sid {
			out = append(out, m)
		}
	}
	return out
}

// TestSemanticsMethodCase: RFC 9110 §9.1 — the method token is
// case-sensitive. "get" is not GET, and "head" is not HEAD: its response
// keeps its body, and the connection stays in step.
func TestSemanticsMethodCase(t *testing.T) {
	t.Parallel()
	p, hn := hEchoProxy(t)
	r := hDial(t, p.Addr, 10*time.Second)
	for _, method := range []string{"get", "gEt", "head", "GET"} {
		uri := "/method-" + method
		r.write(method + " " + uri + " HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := r.response(method)
		if want := "he " + method + " " + uri; resp.StatusCode != 200 || body != want {
			t.Fatalf("%q request: got %d %q, want 200 %q", method, resp.StatusCode, body, want)
		}
		h, ok := hn.Log.headOf(uri)
		if !ok {
			t.Fatalf("the node never saw %s", uri)
		}
		if got := h.Env["REQUEST_METHOD"]; got != method {
			t.Errorf("REQUEST_METHOD %q, want %q as sent", got, method)
		}
	}
}

// TestSemanticsPathControlBytes: a path whose percent-decoding yields NUL,
// CR or LF would put a control byte into PATH_INFO: 400, and the node
// never sees it. Other escapes decode as before, and the query string is
// passed as it is (not decoded), %0a included.
func TestSemanticsPathControlBytes(t *testing.T) {
	t.Parallel()
	p, hn := hEchoProxy(t)

	for _, uri := range []string{"/a%00b", "/a%0d%0ab", "/%0A", "/a%0Db", "/x/%0a/y"} {
		t.Run("refused"+strings.ReplaceAll(uri, "%", "_"), func(t *testing.T) {
			req := "GET " + uri + " HTTP/1.1\r\nHost: x\r\n\r\n"
			r := hDial(t, p.Addr, 10*time.Second)
			r.write(req)
			resp, body := r.response("GET")
			if resp.StatusCode != 400 {
				t.Fatalf("request %q: got %d %q, want 400", req, resp.StatusCode, body)
			}
			// A request sent after the 400 reaches the node after a
			// forwarded one would have.
			after := "/after" + strings.ReplaceAll(uri, "%", "_")
			if resp, body := hRawGet(t, p, hHostReq(after, "x")); resp.StatusCode != 200 || body != "he GET "+after {
				t.Fatalf("GET %s after the 400: got %d %q", after, resp.StatusCode, body)
			}
			if h, ok := hn.Log.headOf(uri); ok {
				t.Errorf("request %q reached the node: %q", req, h.Env)
			}
		})
	}

	for _, tc := range []struct{ uri, path, query string }{
		{uri: "/a%20b", path: "/a b"},
		{uri: "/q?x=%0a", path: "/q", query: "x=%0a"},
		{uri: "/q2?a=%00&b=%0D%0A", path: "/q2", query: "a=%00&b=%0D%0A"},
	} {
		t.Run("passed"+strings.ReplaceAll(tc.uri, "%", "_"), func(t *testing.T) {
			resp, body := hRawGet(t, p, hHostReq(tc.uri, "x"))
			if resp.StatusCode != 200 || body != "he GET "+tc.uri {
				t.Fatalf("GET %s: got %d %q, want 200 %q", tc.uri, resp.StatusCode, body, "he GET "+tc.uri)
			}
			h, ok := hn.Log.headOf(tc.uri)
			if !ok {
				t.Fatalf("the node never saw %s", tc.uri)
			}
			if h.Env["PATH_INFO"] != tc.path || h.Env["QUERY_STRING"] != tc.query {
				t.Errorf("PATH_INFO %q QUERY_STRING %q, want %q %q", h.Env["PATH_INFO"], h.Env["QUERY_STRING"], tc.path, tc.query)
			}
		})
	}
}

// TestSemanticsChunkExtensions: RFC 9112 §7.1.1 —
// chunk-size [ chunk-ext ] CRLF, with
// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
// a name a token, a value a token or a quoted-string. A bare ";", a name
// with a space, or whitespace after the size with no extension is
// malformed: 400. Well-formed extensions are skipped and the body reaches
// the node (which echoes it back as chunks).
func TestSemanticsChunkExtensions(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", hCatchAll)
	echo := hEcho()
	quiet := map[string]bool{} // sids of /bad requests: owned by the node goroutine
	hn := hStartNode(t, p.ZMQ, "he", func(hn *hNode, n *node.Node, m hMsg) {
		// A request to /bad… gets no answer, so that the proxy's 400 is
		// the first thing its client reads.
		if m.Type == "uwsgi" && strings.HasPrefix(m.Env["PATH_INFO"], "/bad") {
			quiet[m.SID] = true
		}
		if quiet[m.SID] {
			if m.Type == "end" {
				delete(quiet, m.SID)
			}
			return
		}
		echo(hn, n, m)
	})
	waitRoutable(t, p, "", "/ready")
	const head = "POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

	for i, size := range []string{"5;", "5;bad name", "5 ", "5\t", "5;name=value ;", "5;name=\"unterminated"} {
		t.Run(fmt.Sprintf("refused-%d", i), func(t *testing.T) {
			path := fmt.Sprintf("/bad-%d", i)
			req := fmt.Sprintf(head, path) + size + "\r\nhello\r\n0\r\n\r\n"
			raw, closed, err := bSend(t, p.Addr, []byte(req), 10*time.Second)
			status, perr := bCheckProxyError(raw, true)
			if status != 400 || perr != nil || !closed {
				t.Fatalf("chunk-size line %q: got %q (closed %v, %v): status %d, %v; want 400 and a close",
					size, raw, closed, err, status, perr)
			}
			if h, ok := hn.Log.headOf(path); ok {
				for _, m := range hn.Log.of(h.SID, "body") {
					if strings.Contains(string(m.Body), "hello") {
						t.Errorf("the body of the chunk after %q reached the node", size)
					}
				}
			}
		})
	}

	for i, tc := range []struct{ chunks, body string }{
		{chunks: "5;name=value\r\nhello\r\n0\r\n\r\n", body: "hello"},
		{chunks: "5;name=\"quoted\"\r\nhello\r\n0\r\n\r\n", body: "hello"},
		{chunks: "5;name=\"a \\\" ; b\"\r\nhello\r\n0\r\n\r\n", body: "hello"},
		{chunks: "5;name\r\nhello\r\n0\r\n\r\n", body: "hello"},
		{chunks: "5;a=1;b=2\r\nhello\r\n6;c=\"x\"\r\n world\r\n0;last=yes\r\n\r\n", body: "hello world"},
	} {
		t.Run(fmt.Sprintf("accepted-%d", i), func(t *testing.T) {
			path := fmt.Sprintf("/good-%d", i)
			req := fmt.Sprintf(head, path) + tc.chunks
			r := hDial(t, p.Addr, 10*time.Second)
			r.write(req)
			resp, body := r.response("POST")
			if resp.StatusCode != 200 || body != tc.body {
				t.Fatalf("request %q: got %d %q, want the node's 200 echoing %q", req, resp.StatusCode, body, tc.body)
			}
			if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
				t.Errorf("Transfer-Encoding %v, want the node's chunked echo", resp.TransferEncoding)
			}
			h, ok := hn.Log.headOf(path)
			if !ok {
				t.Fatalf("the node never saw %s", path)
			}
			got, endsEmpty, _ := hBodyOf(hn.Log, h.SID)
			if string(got) != tc.body || !endsEmpty {
				t.Errorf("the node got body %q (ends with an empty piece: %v), want %q", got, endsEmpty, tc.body)
			}
		})
	}
}
