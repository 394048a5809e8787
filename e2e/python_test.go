package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// bPython is the interpreter with Debian's python3-zmq (the python3 first
// on PATH may lack zmq).
const bPython = "/usr/bin/python3"

// bNeedPythonZMQ skips the test when bPython cannot import zmq.
func bNeedPythonZMQ(t *testing.T) {
	t.Helper()
	out, err := exec.Command(bPython, "-c", "import zmq; print(zmq.zmq_version())").CombinedOutput()
	if err != nil {
		t.Skipf("SKIP: %s cannot import zmq (install Debian's python3-zmq; `make test` does): %v: %s",
			bPython, err, strings.TrimSpace(string(out)))
	}
}

// bStartPythonNode runs testdata/script with the endpoint and identity as
// arguments; the process is killed by its pid at cleanup.
func bStartPythonNode(t *testing.T, script, endpoint, identity string) *logBuffer {
	t.Helper()
	out := &logBuffer{}
	cmd := exec.Command(bPython, "-u", filepath.Join("testdata", script), endpoint, identity)
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
			t.Errorf("python node %s (pid %d) did not exit", script, pid)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("%s (pid %d) output:\n%s", script, pid, bTail(out.String(), 2000))
		}
	})
	return out
}

// bTail returns the last n bytes of s.
func bTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// bReadmeChunkBody is what readme_chunk_node.py sends for path and probe,
// de-chunked.
func bReadmeChunkBody(path, probe string) string {
	var sb strings.Builder
	for i := 1; i < 100; i++ {
		fmt.Fprintf(&sb, "i am the number %d<br/>", i)
	}
	fmt.Fprintf(&sb, "PATH_INFO=%s X_PROBE=%s", path, probe)
	return sb.String()
}

// bReadmeEndBody is what readme_end_node.py sends for path and probe.
func bReadmeEndBody(path, probe string) string {
	return "<h1>Hello World</h1><h2>Done !!!</h2><h3>Done !!!</h3><h4>Done !!!</h4>" +
		fmt.Sprintf("PATH_INFO=%s X_PROBE=%s", path, probe)
}

// TestPythonReadmeNodes runs the original README's Python backend (ported
// to Python 3) behind the proxy: one node answers with the README's chunk
// example, the other with the Ruby example's shape (body messages, then
// end).
func TestPythonReadmeNodes(t *testing.T) {
	bNeedPythonZMQ(t)
	p := startProxy(t, "http2 = on\n", "[blastbeat:chunk.test]\nnode = pychunk\n\n[blastbeat:end.test]\nnode = pyend\n")
	bStartPythonNode(t, "readme_chunk_node.py", p.ZMQ, "pychunk")
	endOut := bStartPythonNode(t, "readme_end_node.py", p.ZMQ, "pyend")
	waitRoutable(t, p, "chunk.test", "/ready")
	waitRoutable(t, p, "end.test", "/ready")

	t.Run("chunked/net-http", func(t *testing.T) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		// Two requests on one keep-alive connection: the final empty chunk
		// must leave the connection reusable.
		var local []string
		for _, path := range []string{"/caf%C3%A9/one", "/two"} {
			req, _ := http.NewRequest("GET", p.URL(path+"?q=1"), nil)
			req.Host = "chunk.test"
			req.Header.Set("X-Probe", "probe-"+path)
			trace := &bConnTrace{}
			req = req.WithContext(trace.context(context.Background()))
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("%s: reading body: %v", path, err)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("%s: status %d", path, resp.StatusCode)
			}
			if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
				t.Errorf("%s: Transfer-Encoding %v, want [chunked]", path, resp.TransferEncoding)
			}
			if resp.Close {
				t.Errorf("%s: the proxy closes after a chunked response; want keep-alive", path)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/html" {
				t.Errorf("%s: Content-Type %q", path, ct)
			}
			decoded := strings.Replace(path, "%C3%A9", "é", 1)
			if want := bReadmeChunkBody(decoded, "probe-"+path); string(body) != want {
				t.Errorf("%s: body\n got %q\nwant %q", path, bTail(string(body), 200), bTail(want, 200))
			}
			local = append(local, trace.local)
		}
		if local[0] == "" || local[0] != local[1] {
			t.Errorf("the second request used another connection (%q, %q); want the kept-alive one", local[0], local[1])
		}
	})

	t.Run("chunked/curl", func(t *testing.T) {
		out := bCurl(t, "--raw", "-H", "Host: chunk.test", "-H", "X-Probe: curl", p.URL("/from/curl"))
		head, body, ok := strings.Cut(out, "\r\n\r\n")
		if !ok {
			t.Fatalf("no head in curl output %q", bTail(out, 300))
		}
		if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") || !strings.Contains(strings.ToLower(head), "transfer-encoding: chunked") {
			t.Errorf("head %q", head)
		}
		// --raw keeps the chunked framing: check it chunk by chunk.
		var want strings.Builder
		for i := 1; i < 100; i++ {
			c := fmt.Sprintf("i am the number %d<br/>", i)
			fmt.Fprintf(&want, "%x\r\n%s\r\n", len(c), c)
		}
		last := "PATH_INFO=/from/curl X_PROBE=curl"
		fmt.Fprintf(&want, "%x\r\n%s\r\n0\r\n\r\n", len(last), last)
		if body != want.String() {
			t.Errorf("raw chunked body\n got %q\nwant %q", bTail(body, 300), bTail(want.String(), 300))
		}
		// And decoded by curl itself.
		out = bCurl(t, "-H", "Host: chunk.test", "-H", "X-Probe: curl", p.URL("/from/curl"))
		if _, body, _ := strings.Cut(out, "\r\n\r\n"); body != bReadmeChunkBody("/from/curl", "curl") {
			t.Errorf("curl decoded body %q", bTail(body, 300))
		}
	})

	t.Run("end/net-http", func(t *testing.T) {
		req, _ := http.NewRequest("GET", p.URL("/the/end?x=y"), nil)
		req.Host = "end.test"
		req.Header.Set("X-Probe", "go")
		cl := &http.Client{Timeout: bEndWait, Transport: &http.Transport{}}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			if string(body) == bReadmeEndBody("/the/end", "go") {
				bFailEndBug(t, fmt.Sprintf("whole body read, then %v", err))
			}
			t.Fatalf("reading body: %v", err)
		}
		if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" {
			t.Fatalf("status %d proto %s", resp.StatusCode, resp.Proto)
		}
		if resp.ContentLength != -1 || len(resp.TransferEncoding) != 0 {
			t.Errorf("ContentLength %d TE %v: want a close-delimited body", resp.ContentLength, resp.TransferEncoding)
		}
		if !resp.Close {
			t.Errorf("response does not say Connection: close")
		}
		if got := resp.Header.Get("Server"); got != "tremolo.py" {
			t.Errorf("Server %q", got)
		}
		if want := bReadmeEndBody("/the/end", "go"); string(body) != want {
			t.Errorf("body\n got %q\nwant %q", body, want)
		}
	})

	t.Run("end/raw", func(t *testing.T) {
		// The whole response, then EOF: the connection is closed by the
		// proxy after `end` (the client asked for keep-alive).
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(bEndWait))
		if _, err := io.WriteString(c, "GET /raw HTTP/1.1\r\nHost: end.test\r\nX-Probe: raw\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		all, err := io.ReadAll(c)
		if err != nil {
			if strings.HasSuffix(string(all), bReadmeEndBody("/raw", "raw")) {
				bFailEndBug(t, fmt.Sprintf("whole response read, then %v", err))
			}
			t.Fatalf("reading until EOF: %v (got %q)", err, all)
		}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(all))), nil)
		if err != nil {
			t.Fatalf("%v in %q", err, all)
		}
		body, _ := io.ReadAll(resp.Body)
		if want := bReadmeEndBody("/raw", "raw"); string(body) != want {
			t.Errorf("body %q, want %q", body, want)
		}
		if !strings.Contains(string(all), "\r\nConnection: close\r\n") {
			t.Errorf("no Connection: close in %q", all)
		}
	})

	t.Run("end/curl", func(t *testing.T) {
		out, err := bCurlErr("-H", "Host: end.test", "-H", "X-Probe: curl", p.URL("/curl/end"))
		head, body, _ := strings.Cut(out, "\r\n\r\n")
		if err != nil {
			if strings.HasSuffix(body, bReadmeEndBody("/curl/end", "curl")) {
				bFailEndBug(t, fmt.Sprintf("curl got the whole body, then %v: %s", err, bTail(out, 120)))
			}
			t.Fatalf("curl: %v\n%s", err, out)
		}
		if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") {
			t.Errorf("head %q", head)
		}
		if want := bReadmeEndBody("/curl/end", "curl"); body != want {
			t.Errorf("body %q, want %q", body, want)
		}
	})

	// The same nodes serve HTTP/2 clients unchanged: chunk messages
	// become DATA frames, and `end` ends the stream (not the connection).
	t.Run("h2/curl", func(t *testing.T) {
		// One curl per request: Debian's curl 7.88 fails the second
		// request on a reused prior-knowledge connection with any server
		// ("Error in the HTTP2 framing layer"; nginx too).
		out := bCurl(t, "--http2-prior-knowledge", "-H", "Host: chunk.test", "-H", "X-Probe: h2", p.URL("/h2/chunk"))
		head, body, _ := strings.Cut(out, "\r\n\r\n")
		if !strings.HasPrefix(head, "HTTP/2 200") || body != bReadmeChunkBody("/h2/chunk", "h2") {
			t.Errorf("chunk node over h2: head %q body %q", head, bTail(body, 300))
		}
		out = bCurl(t, "--http2-prior-knowledge", "-H", "Host: end.test", "-H", "X-Probe: h2", p.URL("/h2/end"))
		head, body, _ = strings.Cut(out, "\r\n\r\n")
		if !strings.HasPrefix(head, "HTTP/2 200") || body != bReadmeEndBody("/h2/end", "h2") {
			t.Errorf("end node over h2: head %q body %q", head, body)
		}
		if !strings.Contains(strings.ToLower(head), "server: tremolo.py") {
			t.Errorf("end node over h2: head %q", head)
		}
	})

	// The README's consumer prints every message type it receives: pings
	// and requests went through the real libzmq path. It prints before it
	// answers, but its output reaches endOut through a pipe and a copying
	// goroutine: wait for it.
	for _, want := range []string{"received a message of type b'ping'", "received a message of type b'uwsgi'"} {
		checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if !strings.Contains(endOut.String(), want) {
				return fmt.Errorf("readme_end_node.py never printed %q", want)
			}
			return nil
		})
	}
}

// bCurl runs curl -sS -i with args and returns its output (head and body).
func bCurl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := bCurlErr(args...)
	if err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
	return out
}

// bCurlErr runs curl -sS -i with args (at most bEndWait) and returns its
// stdout and error.
func bCurlErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bEndWait+5*time.Second)
	defer cancel()
	all := append([]string{"-sS", "-i", "--max-time", fmt.Sprint(int(bEndWait / time.Second)), "--noproxy", "*"}, args...)
	cmd := exec.CommandContext(ctx, "curl", all...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), err
}

// bEndWait bounds the wait for a response the proxy must close.
const bEndWait = 5 * time.Second

// bFailEndBug fails a test that got its whole close-delimited response
// but no close (a node's `end` arriving on its own once left the
// connection open; TestEndAloneClosesConnection pins it down).
func bFailEndBug(t *testing.T, detail string) {
	t.Helper()
	t.Fatalf("the proxy did not close the connection after the node's `end`: %s", detail)
}

// bConnTrace records the local address of the connection a request used.
type bConnTrace struct{ local string }

func (c *bConnTrace) context(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { c.local = i.Conn.LocalAddr().String() },
	})
}

// TestEndAloneClosesConnection pins down what the README's Ruby example
// (and readme_end_node.py) rely on: a node's `end`, or the final empty
// `chunk` of a response de-chunked for an HTTP/1.0 client, must close the
// connection even when it arrives after the rest of the response was
// already written to the client (a separate batch on the proxy's side).
// The node holds the final message back until the client has read the
// body, so that is always the case here.
func TestEndAloneClosesConnection(t *testing.T) {
	p := startProxy(t, "", "[blastbeat:*]\nnode = shape\n")
	release := make(chan struct{}, 1)
	startGoNode(t, p.ZMQ, "shape", func(n *node.Node, m node.Message) {
		if m.Type != "uwsgi" {
			return
		}
		env, _ := node.Environ(m.Body)
		var last, lastBody string
		switch env["PATH_INFO"] {
		case "/end":
			_ = n.Send(m.SID, "headers", []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"))
			_ = n.Send(m.SID, "body", []byte("first"))
			last = "end"
		case "/chunk":
			_ = n.Send(m.SID, "headers", []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"))
			_ = n.Send(m.SID, "chunk", []byte("first"))
			last = "chunk"
		default:
			helloHandler(n, m)
			return
		}
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		_ = n.Send(m.SID, last, []byte(lastBody))
	})
	waitRoutable(t, p, "", "/ready")

	for _, tc := range []struct{ name, req, node string }{
		{"end", "GET /end HTTP/1.1\r\nHost: x\r\n\r\n",
			`[sid, headers, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"], [sid, body, "first"], then after the client read "first": [sid, end, ""]`},
		{"http10-final-empty-chunk", "GET /chunk HTTP/1.0\r\nHost: x\r\n\r\n",
			`[sid, headers, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"], [sid, chunk, "first"], then after the client read "first": [sid, chunk, ""]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", p.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * bEndWait))
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || !resp.Close || resp.ContentLength != -1 || len(resp.TransferEncoding) != 0 {
				t.Fatalf("status %d close %v length %d TE %v; want a close-delimited 200",
					resp.StatusCode, resp.Close, resp.ContentLength, resp.TransferEncoding)
			}
			first := make([]byte, 5)
			if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first" {
				t.Fatalf("body %q, %v", first, err)
			}
			release <- struct{}{}
			_ = c.SetReadDeadline(time.Now().Add(bEndWait))
			rest, err := io.ReadAll(resp.Body)
			switch {
			case err == nil && len(rest) == 0:
				// EOF: the proxy closed the connection.
			case len(rest) > 0:
				t.Fatalf("extra bytes after the body: %q", rest)
			default:
				t.Fatalf("request %q; node sent %s; want the connection closed after the close-delimited body, "+
					"got no EOF within %v (%v)", tc.req, tc.node, bEndWait, err)
			}
		})
	}
}
