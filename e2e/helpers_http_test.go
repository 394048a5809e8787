package e2e

// Shared helpers of http_test.go, stream_test.go and routing_test.go. Every
// identifier starts with h to stay clear of the other e2e files.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/node"
)

// hMsg is one message a node received (pings excluded).
type hMsg struct {
	SID  string
	Type string
	Body []byte
	Env  map[string]string // decoded environ of a uwsgi message
}

// hLog records what a node received; safe for concurrent use.
type hLog struct {
	mu   sync.Mutex
	msgs []hMsg
	// Light keeps only the length of body messages (for big transfers).
	Light atomic.Bool
}

func (l *hLog) add(m node.Message) hMsg {
	hm := hMsg{SID: string(m.SID), Type: m.Type, Body: m.Body}
	if m.Type != "body" || !l.Light.Load() {
		hm.Body = append([]byte(nil), m.Body...)
	}
	if m.Type == "uwsgi" {
		hm.Env, _ = node.Environ(m.Body)
	}
	rec := hm
	if m.Type == "body" && l.Light.Load() {
		rec.Body = make([]byte, 0) // the length is lost; empty stays empty
		if len(m.Body) > 0 {
			rec.Body = []byte{'.'}
		}
	}
	l.mu.Lock()
	l.msgs = append(l.msgs, rec)
	l.mu.Unlock()
	return hm
}

// all returns a copy of every recorded message, in arrival order.
func (l *hLog) all() []hMsg {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]hMsg(nil), l.msgs...)
}

// of returns the messages of one sid (and of one type unless typ is "").
func (l *hLog) of(sid, typ string) []hMsg {
	var out []hMsg
	for _, m := range l.all() {
		if m.SID == sid && (typ == "" || m.Type == typ) {
			out = append(out, m)
		}
	}
	return out
}

// count returns how many messages of type typ arrived.
func (l *hLog) count(typ string) int {
	k := 0
	for _, m := range l.all() {
		if m.Type == typ {
			k++
		}
	}
	return k
}

// heads returns the request heads (uwsgi or headers messages).
func (l *hLog) heads() []hMsg {
	var out []hMsg
	for _, m := range l.all() {
		if m.Type == "uwsgi" || m.Type == "headers" {
			out = append(out, m)
		}
	}
	return out
}

// headOf returns the last request head whose REQUEST_URI is uri.
func (l *hLog) headOf(uri string) (hMsg, bool) {
	hs := l.heads()
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].Env["REQUEST_URI"] == uri {
			return hs[i], true
		}
	}
	return hMsg{}, false
}

// waitType waits until a message of type typ for sid was recorded.
func (l *hLog) waitType(t testing.TB, sid, typ string, total time.Duration) {
	t.Helper()
	checkFor(t, total, 5*time.Millisecond, func() error {
		if len(l.of(sid, typ)) == 0 {
			return fmt.Errorf("no %q message for sid %x; got %s", typ, sid, hSummary(l.of(sid, "")))
		}
		return nil
	})
}

// hSummary prints messages compactly for failure reports.
func hSummary(ms []hMsg) string {
	var sb strings.Builder
	for _, m := range ms {
		b := m.Body
		if m.Type == "uwsgi" {
			b = []byte(m.Env["REQUEST_METHOD"] + " " + m.Env["REQUEST_URI"])
		}
		if len(b) > 40 {
			b = append(b[:40:40], "..."...)
		}
		fmt.Fprintf(&sb, "[%x %s %q] ", m.SID, m.Type, b)
	}
	return sb.String()
}

// hHandler answers one message on the node goroutine.
type hHandler func(hn *hNode, n *node.Node, m hMsg)

// hNode is an in-process node like goNode that also records everything
// it receives and runs functions on its goroutine (Do), so a test can
// make it send at a moment of its choosing.
type hNode struct {
	Name string
	Log  *hLog
	do   chan func(*node.Node)
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// hStartNode connects a node with identity to endpoint; every message is
// recorded, then handed to h (which may be nil).
func hStartNode(t testing.TB, endpoint, identity string, h hHandler) *hNode {
	t.Helper()
	n, err := node.Dial(identity, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return hRunNode(t, n, identity, h)
}

// hRunNode is hStartNode for a node already dialled (its socket set up
// by the test).
func hRunNode(t testing.TB, n *node.Node, identity string, h hHandler) *hNode {
	t.Helper()
	// A node never blocks forever on a proxy that went away.
	if err := n.Socket().SetSndtimeo(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	hn := &hNode{Name: identity, Log: &hLog{}, do: make(chan func(*node.Node)),
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(hn.done)
		defer n.Close()
		sock := n.Socket()
		poller := zmq.NewPoller()
		poller.Add(sock, zmq.POLLIN)
		for {
			select {
			case <-hn.stop:
				return
			case fn := <-hn.do:
				fn(n)
				continue
			default:
			}
			polled, err := poller.Poll(5 * time.Millisecond)
			if err != nil || len(polled) == 0 {
				continue
			}
			// Drain what is queued without ever blocking: node.Recv would
			// wait on past a ping for the next message, deaf to Stop.
			for k := 0; k < 1000; k++ {
				parts, err := sock.RecvMessageBytes(zmq.DONTWAIT)
				if err != nil {
					break
				}
				if len(parts) != 3 {
					continue
				}
				m := node.Message{SID: parts[0], Type: string(parts[1]), Body: parts[2]}
				if m.Type == "ping" {
					_ = n.Send(m.SID, "pong", nil)
					continue
				}
				hm := hn.Log.add(m)
				if h != nil {
					h(hn, n, hm)
				}
				if hn.Stopping() {
					return
				}
			}
		}
	}()
	t.Cleanup(hn.Stop)
	return hn
}

// Do runs fn on the node goroutine and waits for it.
func (hn *hNode) Do(fn func(n *node.Node)) {
	ran := make(chan struct{})
	select {
	case hn.do <- func(n *node.Node) { fn(n); close(ran) }:
		<-ran
	case <-hn.done:
	}
}

// Stop ends the node and closes its socket.
func (hn *hNode) Stop() {
	hn.once.Do(func() { close(hn.stop) })
	<-hn.done
}

// Stopping reports whether Stop was called (for long sends).
func (hn *hNode) Stopping() bool {
	select {
	case <-hn.stop:
		return true
	default:
		return false
	}
}

// hRespond sends a whole response: a head with Content-Length, then body
// in a separate body message (when not empty).
func hRespond(n *node.Node, sid string, status int, extra, body string) {
	head := fmt.Sprintf("HTTP/1.1 %d %s\r\n%sContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n",
		status, http.StatusText(status), extra, len(body))
	_ = n.Send([]byte(sid), "headers", []byte(head))
	if body != "" {
		_ = n.Send([]byte(sid), "body", []byte(body))
	}
}

// hEcho is the workhorse node behaviour:
//   - a request with a Content-Length body gets a head with the same
//     Content-Length and X-Node, then every body piece back as it arrives;
//   - a chunked request gets a chunked head, every piece back as a chunk,
//     and the final empty body as the final empty chunk;
//   - any other request gets "<node> <METHOD> <REQUEST_URI>".
//
// Requests in format=headers are answered as "<node> headers".
func hEcho() hHandler {
	chunked := map[string]bool{} // sid → the request in flight is chunked
	return func(hn *hNode, n *node.Node, m hMsg) {
		sid := []byte(m.SID)
		switch m.Type {
		case "uwsgi":
			env := m.Env
			te := strings.ToLower(env["HTTP_TRANSFER_ENCODING"])
			switch {
			case strings.Contains(te, "chunked"):
				chunked[m.SID] = true
				_ = n.Send(sid, "headers", []byte("HTTP/1.1 200 OK\r\nX-Node: "+hn.Name+"\r\nTransfer-Encoding: chunked\r\n\r\n"))
			case env["CONTENT_LENGTH"] != "":
				chunked[m.SID] = false
				_ = n.Send(sid, "headers", []byte("HTTP/1.1 200 OK\r\nX-Node: "+hn.Name+"\r\nContent-Length: "+env["CONTENT_LENGTH"]+"\r\n\r\n"))
			default:
				hRespond(n, m.SID, 200, "X-Node: "+hn.Name+"\r\n", hn.Name+" "+env["REQUEST_METHOD"]+" "+env["REQUEST_URI"])
			}
		case "headers":
			hRespond(n, m.SID, 200, "X-Node: "+hn.Name+"\r\n", hn.Name+" headers")
		case "body":
			if chunked[m.SID] {
				_ = n.Send(sid, "chunk", m.Body)
				if len(m.Body) == 0 {
					delete(chunked, m.SID)
				}
			} else if len(m.Body) > 0 {
				_ = n.Send(sid, "body", m.Body)
			}
		case "end":
			delete(chunked, m.SID)
		}
	}
}

// hClient returns a client with its own transport, closed at cleanup.
func hClient(t testing.TB) (*http.Client, *http.Transport) {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}, tr
}

// hDo sends a request and returns the response with its whole body.
func hDo(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

// hRaw is a raw client connection.
type hRaw struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

// hDial opens a raw connection with a deadline for the whole exchange.
func hDial(t testing.TB, addr string, total time.Duration) *hRaw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(total))
	return &hRaw{t: t, c: c, br: bufio.NewReaderSize(c, 64<<10)}
}

func (r *hRaw) write(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// response reads one response to a request of method, with its body.
func (r *hRaw) response(method string) (*http.Response, string) {
	r.t.Helper()
	resp, body, err := hReadResponse(r.br, method)
	if err != nil {
		r.t.Fatalf("reading response: %v (body so far %q)", err, body)
	}
	return resp, body
}

// hReadResponse reads one response and its whole body from br.
func hReadResponse(br *bufio.Reader, method string) (*http.Response, string, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// closed reports whether the server closed the connection (EOF, with no
// more bytes) within the connection's deadline.
func (r *hRaw) closed() (bool, string) {
	rest, err := io.ReadAll(r.br)
	if err != nil {
		return false, string(rest) // a timeout: still open
	}
	return true, string(rest)
}

// hRSS returns the resident set size of pid in bytes.
func hRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// hSampleRSS samples pid's RSS every interval until the returned stop is
// called; stop returns the largest sample and the number of samples.
func hSampleRSS(pid int, every time.Duration) (stop func() (max int64, samples int)) {
	quit := make(chan struct{})
	var mu sync.Mutex
	var maxRSS int64
	n := 0
	sample := func() {
		if v, err := hRSS(pid); err == nil {
			mu.Lock()
			if v > maxRSS {
				maxRSS = v
			}
			n++
			mu.Unlock()
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			sample()
			select {
			case <-quit:
				return
			case <-tk.C:
			}
		}
	}()
	return func() (int64, int) {
		close(quit)
		<-done
		sample()
		mu.Lock()
		defer mu.Unlock()
		return maxRSS, n
	}
}

// hPattern is a deterministic, non-repeating byte stream (ChaCha8 with a
// fixed seed): writer and checker build their own and compare.
func hPattern(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// hVerify reads exactly total bytes from r and checks every byte against
// the pattern of seed, reporting the first bad offset.
func hVerify(r io.Reader, seed byte, total int64) error {
	want := hPattern(seed)
	got := make([]byte, 256<<10)
	exp := make([]byte, len(got))
	var off int64
	for off < total {
		k := int64(len(got))
		if total-off < k {
			k = total - off
		}
		n, err := io.ReadFull(r, got[:k])
		_, _ = want.Read(exp[:n])
		if !bytes.Equal(got[:n], exp[:n]) {
			for i := 0; i < n; i++ {
				if got[i] != exp[i] {
					return fmt.Errorf("byte %d differs: got %#x, want %#x", off+int64(i), got[i], exp[i])
				}
			}
		}
		off += int64(n)
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", off, total, err)
		}
	}
	return nil
}

// hPlain is a blastbeat binary built without the race detector: its RSS
// is the product's (the race runtime's shadow memory grows with every
// allocation and would be measured too).
var hPlain struct {
	once sync.Once
	path string
	err  error
}

// hPlainBinary returns the binary without the race detector, building it
// once beside the race one when the tests run with -race.
func hPlainBinary(t testing.TB) string {
	t.Helper()
	if !raceEnabled {
		return binary
	}
	hPlain.once.Do(func() {
		path := filepath.Join(filepath.Dir(binary), "blastbeat-norace")
		out, err := exec.Command("go", "build", "-o", path, "../cmd/blastbeat").CombinedOutput()
		if err != nil {
			hPlain.err = fmt.Errorf("building %s: %v\n%s", path, err, out)
		}
		hPlain.path = path
	})
	if hPlain.err != nil {
		t.Fatal(hPlain.err)
	}
	return hPlain.path
}

// hStartProxyWith is startProxy running another build of blastbeat. Only
// for tests that are not parallel: it swaps the global binary while the
// process starts.
func hStartProxyWith(t testing.TB, bin, extra, vhosts string) *proxy {
	t.Helper()
	saved := binary
	binary = bin
	defer func() { binary = saved }()
	return startProxy(t, extra, vhosts)
}
