package e2e

// The Python WSGI server (python/blastbeat) behind the real proxy: a Flask
// app and a Django project (testdata/wsgi) answer the same requests as
// through their frameworks' test clients (testdata/wsgi/expected.py),
// byte for byte; credits, slow views, cancellation and two proxies; and
// the package's own Python unit tests (python/tests). Every identifier
// starts with wsgi to stay clear of the other e2e files.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// wsgiHost is the Host of every request (the vhost is the catch-all).
const wsgiHost = "wsgi.test"

// wsgiNeedPython skips the test when bPython cannot import modules.
func wsgiNeedPython(t *testing.T, modules ...string) {
	t.Helper()
	code := "import " + strings.Join(modules, ", ")
	out, err := exec.Command(bPython, "-c", code).CombinedOutput()
	if err != nil {
		t.Skipf("SKIP: %s cannot %q (install Debian's python3-zmq, python3-flask, python3-django; `make test` does): %v: %s",
			bPython, code, err, strings.TrimSpace(string(out)))
	}
}

// wsgiPythonPath is PYTHONPATH for the node and the scripts: the package
// (../python, not installed) and the test apps.
func wsgiPythonPath(t testing.TB) string {
	t.Helper()
	pkg, err := filepath.Abs(filepath.Join("..", "python"))
	if err != nil {
		t.Fatal(err)
	}
	apps, err := filepath.Abs(filepath.Join("testdata", "wsgi"))
	if err != nil {
		t.Fatal(err)
	}
	return pkg + string(os.PathListSeparator) + apps
}

// wsgiHashSeed fixes Python's string hashing in the node and in
// expected.py: Werkzeug builds a 405's Allow field from a set, whose
// order would otherwise differ between two processes.
const wsgiHashSeed = "PYTHONHASHSEED=0"

// wsgiNode is a running `python3 -m blastbeat.wsgi`.
type wsgiNode struct {
	log    *logBuffer
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process is gone
}

// count returns how many times s occurs in the node's log.
func (n *wsgiNode) count(s string) int { return strings.Count(n.log.String(), s) }

// waitLog waits until the node's log holds s.
func (n *wsgiNode) waitLog(t testing.TB, s string, total time.Duration) {
	t.Helper()
	checkFor(t, total, 10*time.Millisecond, func() error {
		if !strings.Contains(n.log.String(), s) {
			return fmt.Errorf("the node never logged %q; log:\n%s", s, bTail(n.log.String(), 3000))
		}
		return nil
	})
}

// wsgiStartNode runs the package as node name connected to endpoints,
// serving app (MODULE:APP from testdata/wsgi), at log level debug. At
// cleanup it gets SIGTERM (by its pid) and must stop within 5 s; it is
// killed otherwise.
func wsgiStartNode(t *testing.T, name string, endpoints []string, app string, args ...string) *wsgiNode {
	t.Helper()
	argv := []string{"-u", "-m", "blastbeat.wsgi", "--node", name, "--log-level", "debug", "--graceful-timeout", "2"}
	for _, ep := range endpoints {
		argv = append(argv, "--connect", ep)
	}
	argv = append(argv, args...)
	argv = append(argv, app)
	n := &wsgiNode{log: &logBuffer{}}
	n.cmd = exec.Command(bPython, argv...)
	n.cmd.Env = append(os.Environ(), "PYTHONPATH="+wsgiPythonPath(t), "PYTHONDONTWRITEBYTECODE=1", wsgiHashSeed)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := n.cmd.Process.Pid
	exited := make(chan struct{})
	n.exited = exited
	go func() { _ = n.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM) // by its pid
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = n.cmd.Process.Kill()
			<-exited
			t.Errorf("the wsgi node %s (pid %d) did not stop on SIGTERM within 5s", name, pid)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("wsgi node %s (pid %d) log:\n%s", name, pid, bTail(n.log.String(), 6000))
		}
	})
	return n
}

// wsgiCase is one request of expected.py and the test client's answer.
type wsgiCase struct {
	Name    string      `json:"name"`
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	Headers [][2]string `json:"headers"`
	BodyB64 string      `json:"body_b64"`
	Pattern int         `json:"pattern"` // the body is wsgiPattern(Pattern)
	Chunked bool        `json:"chunked"` // sent with Transfer-Encoding: chunked
	Expect  bool        `json:"expect"`  // sent with Expect: 100-continue
	Want    struct {
		Status  string      `json:"status"`
		Headers [][2]string `json:"headers"`
		BodyB64 string      `json:"body_b64"`
	} `json:"want"`
}

func (c *wsgiCase) body(t testing.TB) []byte {
	if c.Pattern > 0 {
		return wsgiPattern(c.Pattern)
	}
	if c.BodyB64 == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(c.BodyB64)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *wsgiCase) wantBody(t testing.TB) []byte {
	b, err := base64.StdEncoding.DecodeString(c.Want.BodyB64)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wsgiPattern is expected.py's pattern(n).
func wsgiPattern(n int) []byte {
	var block [251]byte
	for i := range block {
		block[i] = byte((i*31 + 7) % 251)
	}
	out := make([]byte, n)
	for i := 0; i < n; i += len(block) {
		copy(out[i:], block[:])
	}
	return out
}

var (
	wsgiExpectedOnce sync.Once
	wsgiExpectedData map[string][]wsgiCase
	wsgiExpectedErr  error
)

// wsgiExpected runs expected.py once for every test that needs it.
func wsgiExpected(t *testing.T, app string) []wsgiCase {
	t.Helper()
	wsgiExpectedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bPython, filepath.Join("testdata", "wsgi", "expected.py"))
		cmd.Env = append(os.Environ(), "PYTHONPATH="+wsgiPythonPath(t), "PYTHONDONTWRITEBYTECODE=1", wsgiHashSeed)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			wsgiExpectedErr = fmt.Errorf("expected.py: %v\n%s", err, stderr.String())
			return
		}
		wsgiExpectedErr = json.Unmarshal(out, &wsgiExpectedData)
	})
	if wsgiExpectedErr != nil {
		t.Fatal(wsgiExpectedErr)
	}
	cases := wsgiExpectedData[app]
	if len(cases) == 0 {
		t.Fatalf("expected.py gave no cases for %s", app)
	}
	return cases
}

// wsgiIgnored are the response fields left out of the comparison with
// the test client, which talks to the app directly:
//   - Date: the proxy adds one when the node's head has none (RFC 9110
//     §6.6.1; PROTOCOL.md "Extensions"); the apps set none.
//   - Server: not set by these apps; a server may add its own.
//   - Connection, Keep-Alive: hop-by-hop; the proxy drops the node's and
//     adds its own Connection.
//   - Transfer-Encoding: framing, chosen by the server (chunked for a
//     body of unknown length on HTTP/1.1); net/http reports it in
//     Response.TransferEncoding, checked separately.
//
// Values are compared without leading and trailing whitespace: HTTP field
// values do not include it (RFC 9110 §5.5), and Django's Set-Cookie values
// start with a space that no HTTP parser keeps.
var wsgiIgnored = map[string]bool{"Date": true, "Server": true, "Connection": true, "Keep-Alive": true, "Transfer-Encoding": true}

// wsgiFields turns a header list into canonical name → values, without
// the ignored fields.
func wsgiFields(h http.Header) map[string][]string {
	out := map[string][]string{}
	for k, vs := range h {
		k = http.CanonicalHeaderKey(k)
		if wsgiIgnored[k] {
			continue
		}
		for _, v := range vs {
			out[k] = append(out[k], strings.TrimSpace(v))
		}
	}
	return out
}

func wsgiHeaderList(list [][2]string) http.Header {
	h := http.Header{}
	for _, kv := range list {
		h.Add(kv[0], kv[1])
	}
	return h
}

func wsgiFormat(m map[string][]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "\n  %s: %q", k, m[k])
	}
	return sb.String()
}

// wsgiDo sends c through the proxy with cl and returns the response and
// its body. Over HTTP/2 (h2) the 100 Continue is not required: Go's
// HTTP/2 client sends the body without waiting for it.
func wsgiDo(t *testing.T, cl *http.Client, p *proxy, c *wsgiCase, h2 bool) (*http.Response, []byte) {
	t.Helper()
	body := c.body(t)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(c.Method, p.URL(c.Path), rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = wsgiHost
	for _, kv := range c.Headers {
		req.Header.Add(kv[0], kv[1])
	}
	if c.Chunked {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
	}
	got100 := false
	if c.Expect {
		req.Header.Set("Expect", "100-continue")
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			Got100Continue: func() { got100 = true },
		}))
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.Method, c.Path, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", c.Method, c.Path, err)
	}
	if c.Expect && !got100 && !h2 {
		t.Errorf("%s %s with Expect: 100-continue: no 100 Continue before the final response", c.Method, c.Path)
	}
	return resp, got
}

// wsgiCompare sends every case through p, one request after the other
// on one keep-alive HTTP/1.1 connection (h2: on one h2c connection, a
// stream each), and compares each response with the test client's.
func wsgiCompare(t *testing.T, p *proxy, cases []wsgiCase, h2 bool) {
	var cl *http.Client
	if h2 {
		cl = h2cClient(t, p.Addr)
	} else {
		tr := &http.Transport{DisableCompression: true, ExpectContinueTimeout: 10 * time.Second}
		defer tr.CloseIdleConnections()
		cl = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for i := range cases {
		c := &cases[i]
		t.Run(c.Name, func(t *testing.T) {
			resp, got := wsgiDo(t, cl, p, c, h2)
			wantStatus := c.Want.Status
			if h2 {
				// HTTP/2 has no reason phrase: net/http fills in its own.
				code, _, _ := strings.Cut(wantStatus, " ")
				n, _ := strconv.Atoi(code)
				wantStatus = code + " " + http.StatusText(n)
				if resp.ProtoMajor != 2 {
					t.Errorf("protocol %s, want HTTP/2", resp.Proto)
				}
			}
			if resp.Status != wantStatus {
				t.Errorf("status %q, test client %q", resp.Status, wantStatus)
			}
			gotH, wantH := wsgiFields(resp.Header), wsgiFields(wsgiHeaderList(c.Want.Headers))
			if resp.StatusCode == 204 {
				// RFC 9110 §8.6: no Content-Length on a 204; the proxy
				// drops the one Django sends.
				if _, ok := gotH["Content-Length"]; ok && !h2 {
					t.Errorf("a 204 with Content-Length %q", gotH["Content-Length"])
				}
				delete(wantH, "Content-Length")
				delete(gotH, "Content-Length") // (Go's HTTP/2 client may add its own)
			}
			if wsgiFormat(gotH) != wsgiFormat(wantH) {
				t.Errorf("header fields differ (ignoring %v)\n got:%s\nwant:%s", wsgiIgnored, wsgiFormat(gotH), wsgiFormat(wantH))
			}
			want := c.wantBody(t)
			if !bytes.Equal(got, want) {
				t.Errorf("body (%d bytes) differs from the test client's (%d bytes)\n got %q\nwant %q",
					len(got), len(want), bTail(string(got), 300), bTail(string(want), 300))
			}
			// Framing: a body of unknown length goes chunked on HTTP/1.1.
			_, hasLength := wantH["Content-Length"]
			code := resp.StatusCode
			bodyless := c.Method == "HEAD" || code == 204 || code == 304
			if !h2 && !hasLength && !bodyless && (len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked") {
				t.Errorf("no Content-Length from the app and Transfer-Encoding %v; want chunked", resp.TransferEncoding)
			}
			if resp.Close {
				t.Errorf("the proxy closes the connection after this response; want keep-alive")
			}
		})
	}
}

// wsgiCheckCleanLog fails when the node logged an error.
func wsgiCheckCleanLog(t *testing.T, n *wsgiNode) {
	t.Helper()
	log := n.log.String()
	for _, bad := range []string{"Traceback", " ERROR ", " CRITICAL "} {
		if strings.Contains(log, bad) {
			t.Errorf("the node logged %q:\n%s", bad, bTail(log, 4000))
			return
		}
	}
}

// wsgiProxy starts a proxy whose catch-all vhost lists node.
func wsgiProxy(t *testing.T, extra, node string) *proxy {
	return startProxy(t, extra, "[blastbeat:*]\nnode = "+node+"\n")
}

// TestWSGIPythonUnit runs the package's unit tests (python/tests).
func TestWSGIPythonUnit(t *testing.T) {
	t.Parallel()
	wsgiNeedPython(t, "zmq")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bPython, "-m", "unittest", "discover", "-s", filepath.Join("..", "python", "tests"), "-t", filepath.Join("..", "python"))
	cmd.Env = append(os.Environ(), "PYTHONPATH="+wsgiPythonPath(t), "PYTHONDONTWRITEBYTECODE=1", wsgiHashSeed)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python unit tests: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "\nOK") {
		t.Fatalf("python unit tests did not say OK:\n%s", out)
	}
	t.Logf("%s", bTail(string(out), 300))
}

// TestWSGIFlask compares a Flask app behind the proxy with Werkzeug's
// test client.
func TestWSGIFlask(t *testing.T) {
	t.Parallel()
	wsgiNeedPython(t, "zmq", "flask")
	cases := wsgiExpected(t, "flask")
	p := wsgiProxy(t, "", "flask1")
	n := wsgiStartNode(t, "flask1", []string{p.ZMQ}, "flask_app:app")
	waitRoutable(t, p, wsgiHost, "/hello")
	wsgiCompare(t, p, cases, false)

	// HTTP/1.0: no chunked coding; the body is delimited by the close.
	t.Run("stream/http1.0", func(t *testing.T) {
		var want []byte
		for i := range cases {
			if cases[i].Name == "stream" {
				want = cases[i].wantBody(t)
			}
		}
		raw := rawExchange(t, p.Addr, "GET /stream HTTP/1.0\r\nHost: "+wsgiHost+"\r\n\r\n", 10*time.Second)
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
		if err != nil {
			t.Fatalf("%v in %q", err, raw)
		}
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(resp.TransferEncoding) != 0 || resp.ContentLength != -1 || !bytes.Equal(got, want) {
			t.Errorf("status %d TE %v length %d body %q; want a close-delimited 200 with %q",
				resp.StatusCode, resp.TransferEncoding, resp.ContentLength, got, want)
		}
	})
	wsgiCheckCleanLog(t, n)
}

// TestWSGIDjango compares a Django project behind the proxy with Django's
// RequestFactory and WSGI handler.
func TestWSGIDjango(t *testing.T) {
	t.Parallel()
	wsgiNeedPython(t, "zmq", "django", "flask")
	cases := wsgiExpected(t, "django")
	p := wsgiProxy(t, "", "django1")
	n := wsgiStartNode(t, "django1", []string{p.ZMQ}, "djproject.wsgi:application")
	waitRoutable(t, p, wsgiHost, "/query")
	wsgiCompare(t, p, cases, false)
	wsgiCheckCleanLog(t, n)
}

// TestWSGIFlaskHTTP2 is TestWSGIFlask over h2c (experimental HTTP/2 in
// the proxy): the same environ, one stream per request, a body of unknown
// length for the chunked upload, DATA frames for the streamed response.
func TestWSGIFlaskHTTP2(t *testing.T) {
	t.Parallel()
	wsgiNeedPython(t, "zmq", "flask")
	cases := wsgiExpected(t, "flask")
	p := wsgiProxy(t, "http2 = on\n", "flaskh2")
	n := wsgiStartNode(t, "flaskh2", []string{p.ZMQ}, "flask_app:app")
	waitRoutable(t, p, wsgiHost, "/hello")
	wsgiCompare(t, p, cases, true)
	wsgiCheckCleanLog(t, n)
}

// wsgiSlowRead sends GET path on a raw connection with a small receive
// buffer and reads the whole chunked response slowly (step bytes, then
// pause); it returns the de-chunked body, or an error if the proxy cut
// the connection.
func wsgiSlowRead(p *proxy, path string, step int, pause time.Duration) ([]byte, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", p.Addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: "+wsgiHost+"\r\n\r\n"); err != nil {
		return nil, err
	}
	slow := &wsgiSlowReader{r: c, step: step, pause: pause}
	resp, err := http.ReadResponse(bufio.NewReaderSize(slow, step), nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}

// wsgiSlowReader reads at most step bytes at a time, pausing before each
// read: a client that drains its connection slowly. The pause is the
// scenario (a slow reader), not a wait for an event.
type wsgiSlowReader struct {
	r     io.Reader
	step  int
	pause time.Duration
}

func (s *wsgiSlowReader) Read(b []byte) (int, error) {
	time.Sleep(s.pause)
	if len(b) > s.step {
		b = b[:s.step]
	}
	return s.r.Read(b)
}

// TestWSGICredits: the node sends no more than its credit, so a slow
// client of a large streamed response costs the proxy one window: with
// max-pending-output far below the response, the proxy never has to cut
// the client. Without credits (the control) it does.
func TestWSGICredits(t *testing.T) {
	t.Parallel()
	wsgiNeedPython(t, "zmq", "flask")
	const (
		size  = 8 << 20
		piece = 64 << 10
		extra = "credit-window = 64k\nmax-pending-output = 1m\n"
	)
	want := sha256.Sum256(wsgiPattern(size))
	run := func(t *testing.T, name string, args ...string) (*proxy, *wsgiNode, []byte, error) {
		p := wsgiProxy(t, extra, name)
		n := wsgiStartNode(t, name, []string{p.ZMQ}, "flask_app:app", args...)
		waitRoutable(t, p, wsgiHost, "/hello")
		body, err := wsgiSlowRead(p, fmt.Sprintf("/big?size=%d&piece=%d&key=k", size, piece), 32<<10, 2*time.Millisecond)
		return p, n, body, err
	}

	t.Run("credits", func(t *testing.T) {
		t.Parallel()
		p, n, body, err := run(t, "credit1")
		if err != nil {
			t.Fatalf("slow read: %v (got %d bytes); proxy log:\n%s", err, len(body), bTail(p.Log(), 2000))
		}
		if got := sha256.Sum256(body); got != want || len(body) != size {
			t.Fatalf("body of %d bytes, sha256 %x; want %d bytes, %x", len(body), got, size, want)
		}
		if strings.Contains(p.Log(), "closing a slow reader") {
			t.Errorf("the proxy cut the slow reader: the node sent past its credit\n%s", p.Log())
		}
		// The node's own account: it waited for credit (the client paced
		// it) and was granted at least the response, window by window.
		n.waitLog(t, "done GET /big?size=", 10*time.Second)
		line := ""
		for _, l := range strings.Split(n.log.String(), "\n") {
			if strings.Contains(l, "done GET /big?size=") {
				line = l
			}
		}
		var sent, granted, waits int
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			x, _ := strconv.Atoi(v)
			switch k {
			case "sent":
				sent = x
			case "granted":
				granted = x
			case "credit_waits":
				waits = x
			}
		}
		if sent != size || granted < size || waits == 0 {
			t.Errorf("node: sent %d granted %d credit_waits %d; want sent %d, granted >= sent, waits > 0 (%s)", sent, granted, waits, size, line)
		}
	})

	t.Run("control-without-credits", func(t *testing.T) {
		t.Parallel()
		p, _, body, err := run(t, "credit0", "--no-credits")
		if err == nil && len(body) == size {
			t.Skipf("the client kept up with a node without credits; the control proves nothing on this machine")
		}
		checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if !strings.Contains(p.Log(), "closing a slow reader") {
				return fmt.Errorf("the proxy did not log closing a slow reader")
			}
			return nil
		})
	})
}

// wsgiGet is a GET through p with a fresh connection; it returns the
// status and body.
func wsgiGet(p *proxy, path string) (int, string, error) {
	req, _ := http.NewRequest("GET", p.URL(path), nil)
	req.Host = wsgiHost
	cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

type wsgiResult struct {
	code int
	body string
	err  error
}

func wsgiGetAsync(p *proxy, path string) chan wsgiResult {
	ch := make(chan wsgiResult, 1)
	go func() {
		code, body, err := wsgiGet(p, path)
		ch <- wsgiResult{code, body, err}
	}()
	return ch
}

// TestWSGISlowView: a view sleeping in one worker does not delay another
// request; with every worker asleep, the IO thread still answers pings
// (the proxy keeps the node alive for many ping periods, so a request
// that comes meanwhile is queued, not refused with 503).
func TestWSGISlowView(t *testing.T) {
	t.Parallel()
	wsgiNeedPython(t, "zmq", "flask")
	dir := t.TempDir()
	p := wsgiProxy(t, "", "slow1") // ping-freq = 1 (startProxy)
	n := wsgiStartNode(t, "slow1", []string{p.ZMQ}, "flask_app:app", "--threads", "2")
	waitRoutable(t, p, wsgiHost, "/hello")
	release := func(key string) {
		if err := os.WriteFile(filepath.Join(dir, key), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	slowPath := func(key string) string { return "/slow?key=" + key + "&file=" + filepath.Join(dir, key) }
	defer release("a")
	defer release("b")

	slowA := wsgiGetAsync(p, slowPath("a"))
	n.waitLog(t, "slow a started", 10*time.Second)
	start := time.Now()
	if code, body, err := wsgiGet(p, "/hello"); err != nil || code != 200 || body != "hello" {
		t.Fatalf("/hello beside a slow view: %d %q %v", code, body, err)
	}
	select {
	case r := <-slowA:
		t.Fatalf("the slow view returned before it was released: %+v", r)
	default:
	}
	t.Logf("/hello answered in %v beside a sleeping view", time.Since(start))

	// Both workers asleep: pings must still be answered.
	slowB := wsgiGetAsync(p, slowPath("b"))
	n.waitLog(t, "slow b started", 10*time.Second)
	pings := n.count("ping from")
	// 4 pings, 1 s apart: over 3 × ping-freq, after which a silent node
	// is dead.
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if k := n.count("ping from") - pings; k < 4 {
			return fmt.Errorf("%d pings answered while every worker sleeps", k)
		}
		return nil
	})
	// The node is alive: this request is routed to it and waits for a
	// worker (a node the proxy took for dead would get it a 503 at once,
	// and that would be its answer below).
	if strings.Contains(n.log.String(), "slow a done") || strings.Contains(n.log.String(), "slow b done") {
		t.Fatalf("a slow view ended before it was released")
	}
	queued := wsgiGetAsync(p, "/hello?queued=1")
	n.waitLog(t, "request GET /hello?queued=1", 10*time.Second)
	release("a")
	release("b")
	for name, ch := range map[string]chan wsgiResult{"slow a": slowA, "slow b": slowB, "queued /hello": queued} {
		select {
		case r := <-ch:
			if r.err != nil || r.code != 200 {
				t.Errorf("%s: %d %q %v", name, r.code, r.body, r.err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no answer", name)
		}
	}
}

// TestWSGIStopSendsQueuedBack: at a graceful stop (SIGTERM) a request
// still waiting for a worker goes back to the proxy with `retry`, and
// another node answers it at once, while the stopping node still lets its
// running view finish. Before, it stayed queued: it ran after the sockets
// closed, or the proxy failed it over only once it found the node dead.
func TestWSGIStopSendsQueuedBack(t *testing.T) {
	t.Parallel()
	wsgiNeedPython(t, "zmq", "flask")
	dir := t.TempDir()
	p := startProxy(t, "", "[blastbeat:*]\nnode = q1\nnode = q2\n")
	n1 := wsgiStartNode(t, "q1", []string{p.ZMQ}, "flask_app:app", "--threads", "1", "--graceful-timeout", "10")
	waitRoutable(t, p, wsgiHost, "/hello")
	file := filepath.Join(dir, "a")
	defer os.WriteFile(file, nil, 0o644)
	slow := wsgiGetAsync(p, "/slow?key=a&file="+file)
	n1.waitLog(t, "slow a started", 10*time.Second) // q1's one worker is busy
	queued := wsgiGetAsync(p, "/hello?queued=1")
	n1.waitLog(t, "request GET /hello?queued=1", 10*time.Second) // queued on q1 (q2 not up)
	n2 := wsgiStartNode(t, "q2", []string{p.ZMQ}, "flask_app:app", "--threads", "4")
	waitLog(t, p, `msg="node up" node=q2`)
	// Two slow views on q2 (q1 holds two sessions: fewer go to it): after
	// q1's queued request leaves, q1 has the fewest sessions.
	var slowQ2 []chan wsgiResult
	for _, key := range []string{"b", "c"} {
		f := filepath.Join(dir, key)
		defer os.WriteFile(f, nil, 0o644)
		slowQ2 = append(slowQ2, wsgiGetAsync(p, "/slow?key="+key+"&file="+f))
		n2.waitLog(t, "slow "+key+" started", 10*time.Second)
	}
	if err := n1.cmd.Process.Signal(syscall.SIGTERM); err != nil { // by its pid
		t.Fatal(err)
	}
	select {
	case r := <-queued:
		if r.err != nil || r.code != 200 || r.body != "hello" {
			t.Fatalf("the queued request: %d %q %v", r.code, r.body, r.err)
		}
	case <-n1.exited:
		t.Fatalf("q1 exited before the queued request was answered; q1 log:\n%s", bTail(n1.log.String(), 3000))
	case <-time.After(20 * time.Second):
		t.Fatal("the queued request: no answer")
	}
	select {
	case <-n1.exited:
		t.Fatal("q1 exited before its running view was released")
	default:
	}
	if !strings.Contains(n2.log.String(), "GET /hello?queued=1") {
		t.Errorf("q2 did not serve the queued request; q2 log:\n%s", bTail(n2.log.String(), 3000))
	}
	// q1's pongs say it drains (sent before the retry, on the same
	// socket): a new request goes to q2 alone, though q1 has the fewest
	// sessions (one, against q2's two); before, q1 got it and sent it
	// back.
	if code, body, err := wsgiGet(p, "/hello?after=1"); err != nil || code != 200 || body != "hello" {
		t.Fatalf("a request during q1's drain: %d %q %v", code, body, err)
	}
	if strings.Contains(n1.log.String(), "request GET /hello?after=1 sent back") {
		t.Errorf("the draining q1 was given a new request; q1 log:\n%s", bTail(n1.log.String(), 3000))
	}
	_ = os.WriteFile(file, nil, 0o644)
	if r := <-slow; r.err != nil || r.code != 200 {
		t.Errorf("the running view during the stop: %d %q %v", r.code, r.body, r.err)
	}
	for _, key := range []string{"b", "c"} {
		_ = os.WriteFile(filepath.Join(dir, key), nil, 0o644)
	}
	for _, ch := range slowQ2 {
		if r := <-ch; r.err != nil || r.code != 200 {
			t.Errorf("a slow view on q2: %d %q %v", r.code, r.body, r.err)
		}
	}
}

// TestWSGICancel: the proxy's `end` (client gone) cancels the request:
// a streaming response's iterable is closed at its next yield, and a
// view reading the body gets an error instead of waiting for ever.
func TestWSGICancel(t *testing.T) {
	t.Parallel()
	wsgiNeedPython(t, "zmq", "flask")
	p := wsgiProxy(t, "", "cancel1")
	n := wsgiStartNode(t, "cancel1", []string{p.ZMQ}, "flask_app:app")
	waitRoutable(t, p, wsgiHost, "/hello")

	t.Run("streaming", func(t *testing.T) {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, "GET /forever?key=f HTTP/1.1\r\nHost: "+wsgiHost+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 100<<10)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		n.waitLog(t, "forever f closed after", 10*time.Second)
		n.waitLog(t, "done GET /forever?key=f", 10*time.Second)
		for _, l := range strings.Split(n.log.String(), "\n") {
			if strings.Contains(l, "done GET /forever?key=f") && !strings.HasSuffix(l, " cancelled") {
				t.Errorf("the request was not cancelled by the proxy's end: %s", l)
			}
		}
	})

	t.Run("upload", func(t *testing.T) {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		head := "POST /uploadcancel?key=u HTTP/1.1\r\nHost: " + wsgiHost + "\r\nContent-Length: 1000000\r\n\r\n"
		if _, err := io.WriteString(c, head+strings.Repeat("z", 1000)); err != nil {
			t.Fatal(err)
		}
		n.waitLog(t, "uploadcancel u reading", 10*time.Second)
		c.Close()
		n.waitLog(t, "uploadcancel u input error after", 10*time.Second)
		if !strings.Contains(n.log.String(), "ClientDisconnected") {
			t.Errorf("the view's read did not raise ClientDisconnected")
		}
	})
}

// TestWSGITwoProxies: one node connected to two proxies answers
// concurrent requests through both, each reply on its own proxy and
// connection.
func TestWSGITwoProxies(t *testing.T) {
	t.Parallel()
	wsgiNeedPython(t, "zmq", "flask")
	pa := wsgiProxy(t, "", "duo")
	pb := wsgiProxy(t, "", "duo")
	wsgiStartNode(t, "duo", []string{pa.ZMQ, pb.ZMQ}, "flask_app:app", "--threads", "4")
	waitRoutable(t, pa, wsgiHost, "/hello")
	waitRoutable(t, pb, wsgiHost, "/hello")
	const clients, each = 8, 12
	start := time.Now()
	defer func() { t.Logf("%d requests in %v", clients*each, time.Since(start)) }()
	proxies := []*proxy{pa, pb}
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	served := make([]int, len(proxies))
	var mu sync.Mutex
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			for i := 0; i < each; i++ {
				pi := (g + i) % 2
				token := fmt.Sprintf("g%d-i%d-p%d", g, i, pi)
				var body []byte
				method := "GET"
				if i%3 == 1 {
					method = "POST"
					body = wsgiPattern(1 + (g*7919+i*104729)%150000)
				}
				req, _ := http.NewRequest(method, proxies[pi].URL("/echo?token="+token), bytes.NewReader(body))
				req.Host = wsgiHost
				req.Header.Set("X-Token", token)
				resp, err := cl.Do(req)
				if err != nil {
					errs <- fmt.Errorf("%s: %v", token, err)
					continue
				}
				raw, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				var got struct {
					Token, Header, Sha256 string
					Size                  int
				}
				if err == nil {
					err = json.Unmarshal(raw, &got)
				}
				sum := sha256.Sum256(body)
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: %v (%q)", token, err, raw)
				case resp.StatusCode != 200 || got.Token != token || got.Header != token ||
					got.Size != len(body) || got.Sha256 != hex.EncodeToString(sum[:]):
					errs <- fmt.Errorf("%s: status %d, answer %+v for a body of %d bytes", token, resp.StatusCode, got, len(body))
				default:
					mu.Lock()
					served[pi]++
					mu.Unlock()
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if served[0]+served[1] != clients*each || served[0] == 0 || served[1] == 0 {
		t.Errorf("answered through the proxies: %v; want %d in all, through both", served, clients*each)
	}
}

// TestWSGIMaxBuffer: a request body the application does not read (here
// the only worker is busy, so the request waits in the queue) is held
// up to --max-buffer; past it the session ends (the client gets 502)
// instead of the node holding the whole body in memory.
func TestWSGIMaxBuffer(t *testing.T) {
	t.Parallel()
	wsgiNeedPython(t, "zmq", "flask")
	dir := t.TempDir()
	p := wsgiProxy(t, "", "maxbuf1")
	n := wsgiStartNode(t, "maxbuf1", []string{p.ZMQ}, "flask_app:app", "--threads", "1", "--max-buffer", "100000")
	waitRoutable(t, p, wsgiHost, "/hello")
	key := filepath.Join(dir, "a")
	defer os.WriteFile(key, nil, 0o644)
	slow := wsgiGetAsync(p, "/slow?key=a&file="+key)
	n.waitLog(t, "slow a started", 10*time.Second)

	req, _ := http.NewRequest("POST", p.URL("/upload"), bytes.NewReader(wsgiPattern(1<<20)))
	req.Host = wsgiHost
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("a 1 MiB body held unread past --max-buffer: %d, want 502", resp.StatusCode)
	}
	n.waitLog(t, "more than 100000 bytes of request body unread", 10*time.Second)
	if err := os.WriteFile(key, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := <-slow; r.err != nil || r.code != 200 {
		t.Errorf("the slow view: %+v", r)
	}
}
