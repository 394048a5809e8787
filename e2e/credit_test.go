package e2e

// Flow control end to end (PROTOCOL.md, "Flow control"): a node that says
// `credits` in its pongs gets `credit` messages and sends no more body
// bytes than they grant, so a slow client costs the proxy one window, not
// the whole response. The node is in-process (crNode, node/ library,
// SendBody); it counts what it was granted and what it sent. Every
// identifier starts with cr to stay clear of the other e2e files.

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/node"
)

const (
	// crWindow is the credit-window the proxies of these tests run with
	// (the default, written out): the first credit after each head.
	crWindow = 256 << 10
	// crConfig: the window, and a pending-output bound far below the
	// responses, which a node without credits would overrun.
	crConfig = "credit-window = 256k\nmax-pending-output = 1m\n"
	// crDeadline bounds each client exchange, so that a proxy without
	// flow control fails a test instead of hanging it.
	crDeadline = 25 * time.Second
	// crCreditWait is how long a test waits for the first credit.
	crCreditWait = 10 * time.Second
	// crPiece is the size of the node's body and chunk messages.
	crPiece = 64 << 10
	// crReadStep and crReadPause make the slow client: 64 KiB, then a
	// 16 ms pause (about 4 MB/s). The pause is the scenario, not a wait
	// for an event.
	crReadStep  = 64 << 10
	crReadPause = 16 * time.Millisecond
)

// crMaxRSSGrowth bounds the plain build's RSS growth during the slow
// transfer: one window per session, not the response (measured: about
// 7 MB, most of it the Go heap's slack). The race build's RSS is only
// logged: its runtime's shadow memory grows with every allocation, about
// 20 MB over this transfer, which a bound would make flaky.
const crMaxRSSGrowth = 16 << 20

// crJob is a response body the node sends as credit comes: size bytes of
// the pattern of seed, as typ messages of piece bytes (the last may be
// shorter); a chunked body ends with the empty chunk.
type crJob struct {
	typ     string // body, chunk or websocket-binary
	left    int64  // bytes not yet generated
	piece   int
	src     *rand.ChaCha8
	buf     []byte
	pending []byte // generated, not yet sent
	ended   bool   // the empty chunk went
}

func crNewJob(typ string, size int64, piece int, seed byte) *crJob {
	return &crJob{typ: typ, left: size, piece: piece, src: hPattern(seed), buf: make([]byte, piece)}
}

// crReq is what the node saw and did for one request head.
type crReq struct {
	SID, URI string
	// Next is the type of the sid's first message after the head (the
	// spec says: credit).
	Next    string
	Credits []int64 // every credit, in order
	Granted int64   // their sum
	Sent    int64   // body bytes sent (node.Cost of each message)
	// MaxOver is the most Sent ever was over Granted; above 0 the node
	// overran its credit.
	MaxOver int64
	Done    bool // the whole body went
}

// crServe answers a request head: the head to send (nil: none, e.g. a
// WebSocket handshake) and the body to send as credit comes (nil: none).
type crServe func(env map[string]string) (head []byte, job *crJob)

// crNode is an in-process node that speaks credits.
type crNode struct {
	stop, done chan struct{}
	mu         sync.Mutex
	reqs       []*crReq
	errs       []string // protocol faults the node saw
}

// crStartNode connects a credit-speaking node with identity to endpoint;
// serve answers each request head. It runs until the test ends.
func crStartNode(t *testing.T, endpoint, identity string, serve crServe) *crNode {
	t.Helper()
	n, err := node.Dial(identity, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	n.EnableCredits()
	// Recv gives up every 20 ms (EAGAIN) so that the loop sees stop; a
	// send never blocks forever on a proxy that went away.
	if err := errors.Join(n.Socket().SetRcvtimeo(20*time.Millisecond), n.Socket().SetSndtimeo(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	c := &crNode{stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop(n, serve)
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() { close(c.stop) })
		<-c.done
	})
	return c
}

// loop is the node goroutine: it owns n and the jobs.
func (c *crNode) loop(n *node.Node, serve crServe) {
	defer close(c.done)
	defer n.Close()
	jobs := map[string]*crJob{}
	cur := map[string]*crReq{}
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		m, err := n.Recv()
		if zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN) {
			continue
		}
		if err != nil && !errors.Is(err, node.ErrBadCredit) {
			if !errors.Is(err, node.ErrBadMessage) {
				c.fault("recv: %v", err)
				return
			}
			continue
		}
		sid := string(m.SID)
		c.mu.Lock()
		if r := cur[sid]; r != nil && r.Next == "" && m.Type != "uwsgi" && m.Type != "headers" {
			r.Next = m.Type
		}
		c.mu.Unlock()
		switch m.Type {
		case "uwsgi", "headers":
			env, _ := node.Environ(m.Body)
			if m.Type == "headers" {
				env = map[string]string{"REQUEST_URI": crRequestURI(m.Body)}
			}
			r := &crReq{SID: sid, URI: env["REQUEST_URI"]}
			c.mu.Lock()
			c.reqs = append(c.reqs, r)
			c.mu.Unlock()
			cur[sid] = r
			head, job := serve(env)
			delete(jobs, sid)
			if head != nil && n.Send(m.SID, "headers", head) != nil {
				c.fault("%s: sending the head failed", r.URI)
			}
			if job != nil {
				jobs[sid] = job
				c.pump(n, m.SID, r, job) // nothing goes before the first credit
			}
		case "credit":
			r := cur[sid]
			if err != nil || r == nil {
				c.fault("credit %q for sid %x: %v (request known: %v)", m.Body, m.SID, err, r != nil)
				continue
			}
			k, _ := node.ParseCredit(m.Body)
			c.mu.Lock()
			r.Credits = append(r.Credits, k)
			r.Granted += k
			c.mu.Unlock()
			if job := jobs[sid]; job != nil && c.pump(n, m.SID, r, job) {
				delete(jobs, sid)
			}
		case "end":
			delete(jobs, sid)
			delete(cur, sid)
		}
	}
}

// pump sends what the sid's credit allows of job and reports whether the
// whole body went. It counts the bytes itself rather than trust SendBody.
func (c *crNode) pump(n *node.Node, sid []byte, r *crReq, job *crJob) bool {
	for {
		if len(job.pending) == 0 {
			if job.left == 0 {
				if job.typ == "chunk" && !job.ended {
					if _, err := n.SendBody(sid, "chunk", nil); err != nil {
						c.fault("%s: the final chunk: %v", r.URI, err)
					}
					job.ended = true
				}
				c.mu.Lock()
				r.Done = true
				c.mu.Unlock()
				return true
			}
			k := min(job.left, int64(job.piece))
			job.pending = job.buf[:k]
			_, _ = job.src.Read(job.pending)
			job.left -= k
		}
		sent, err := n.SendBody(sid, job.typ, job.pending)
		job.pending = job.pending[sent:]
		c.mu.Lock()
		r.Sent += int64(sent)
		r.MaxOver = max(r.MaxOver, r.Sent-r.Granted)
		c.mu.Unlock()
		if errors.Is(err, node.ErrNoCredit) {
			return false
		}
		if err != nil {
			c.fault("%s: SendBody: %v", r.URI, err)
			return true
		}
	}
}

func (c *crNode) fault(format string, args ...any) {
	c.mu.Lock()
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// requests returns copies of the requests whose URI is uri, in order.
func (c *crNode) requests(uri string) []crReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []crReq
	for _, r := range c.reqs {
		if r.URI == uri {
			cp := *r
			cp.Credits = append([]int64(nil), r.Credits...)
			out = append(out, cp)
		}
	}
	return out
}

// faults returns the protocol faults the node saw.
func (c *crNode) faults() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// waitCredit waits until the k-th request for uri (from 1) got its first
// credit. Without one, the proxy does not grant credits: it fails at
// once with what the node saw, rather than let the client wait for a
// body that will never come.
func (c *crNode) waitCredit(t *testing.T, uri string, k int) crReq {
	t.Helper()
	var r crReq
	deadline := time.Now().Add(crCreditWait)
	for {
		rs := c.requests(uri)
		if len(rs) >= k {
			if r = rs[k-1]; len(r.Credits) > 0 {
				return r
			}
		}
		if time.Now().After(deadline) {
			if len(rs) < k {
				t.Fatalf("the node saw %d requests for %s within %v, want %d", len(rs), uri, crCreditWait, k)
			}
			t.Fatalf("no credit message for %s (request %d) within %v of its head (next message: %q): "+
				"the proxy does not grant credits to a node whose pong says %q", uri, k, crCreditWait, r.Next, node.CreditsFeature)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitDone waits until the node has recorded the whole body of the k-th
// request for uri (from 1) as sent, and returns it: the client can read
// the last bytes before the node's goroutine counts them.
func (c *crNode) waitDone(t *testing.T, uri string, k int) crReq {
	t.Helper()
	deadline := time.Now().Add(crCreditWait)
	for {
		rs := c.requests(uri)
		if len(rs) >= k && rs[k-1].Done {
			return rs[k-1]
		}
		if time.Now().After(deadline) {
			if len(rs) < k {
				t.Fatalf("the node saw %d requests for %s, want %d", len(rs), uri, k)
			}
			return rs[k-1] // check reports what it sent
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// check asserts the flow control of one finished request: a credit came
// first after the head and granted the window, the whole body went, and
// never more than was granted.
func (r crReq) check(t *testing.T, size int64) {
	t.Helper()
	if r.Next != "credit" {
		t.Errorf("%s: the first message after the head was %q, want credit", r.URI, r.Next)
	}
	if len(r.Credits) == 0 || r.Credits[0] != crWindow {
		t.Errorf("%s: first credit %v, want the window %d", r.URI, r.Credits[:min(len(r.Credits), 1)], crWindow)
	}
	if !r.Done || r.Sent != size {
		t.Errorf("%s: the node sent %d of %d body bytes (done: %v), granted %d", r.URI, r.Sent, size, r.Done, r.Granted)
	}
	if r.MaxOver > 0 {
		t.Errorf("%s: the node sent %d bytes more than it was granted", r.URI, r.MaxOver)
	}
	t.Logf("%s: %d credit messages granted %d bytes for %d sent (first %v)", r.URI, len(r.Credits), r.Granted, r.Sent, r.Credits[:min(len(r.Credits), 1)])
}

// crRequestURI is the target of a raw request head (format = headers).
func crRequestURI(head []byte) string {
	line, _, _ := strings.Cut(string(head), "\r\n")
	if f := strings.Fields(line); len(f) == 3 {
		return f[1]
	}
	return ""
}

// crServeFiles is the node of these tests:
//
//	/ready            200, empty body (costs no credit)
//	/big?size=N&seed=S     N bytes of pattern S, Content-Length, 64 KiB body messages
//	/chunked?size=N&seed=S N bytes of pattern S as 64 KiB chunk messages and the empty chunk
//	/ws…              (WebSocket) 2000 binary messages of 8 KiB, pattern 4
func crServeFiles(env map[string]string) ([]byte, *crJob) {
	if strings.EqualFold(env["HTTP_UPGRADE"], "websocket") {
		return nil, crNewJob("websocket-binary", crWSCount*crWSSize, crWSSize, crWSSeed)
	}
	path, query, _ := strings.Cut(env["REQUEST_URI"], "?")
	q := map[string]int64{}
	for kv := range strings.SplitSeq(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		q[k], _ = strconv.ParseInt(v, 10, 64)
	}
	switch path {
	case "/big":
		head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", q["size"])
		return []byte(head), crNewJob("body", q["size"], crPiece, byte(q["seed"]))
	case "/chunked":
		head := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
		return []byte(head), crNewJob("chunk", q["size"], crPiece, byte(q["seed"]))
	default:
		return []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), nil
	}
}

const (
	crWSCount = 2000
	crWSSize  = 8 << 10
	crWSSeed  = 4
)

// crSlowReader reads step bytes, then pauses, like a client on a slow
// link.
type crSlowReader struct {
	r           io.Reader
	step, taken int
	pause       time.Duration
}

func (s *crSlowReader) Read(p []byte) (int, error) {
	if s.taken == s.step {
		time.Sleep(s.pause)
		s.taken = 0
	}
	n, err := s.r.Read(p[:min(len(p), s.step-s.taken)])
	s.taken += n
	return n, err
}

// crSetup starts a proxy with crConfig and the credit-speaking node, and
// waits until it routes.
func crSetup(t *testing.T) (*proxy, *crNode) {
	t.Helper()
	return crSetupOn(t, startProxy(t, crConfig, crVHosts))
}

const crVHosts = "[blastbeat:*]\nnode = cr\n"

// crSetupOn starts the node for proxy p and waits until p routes to it.
func crSetupOn(t *testing.T, p *proxy) (*proxy, *crNode) {
	t.Helper()
	c := crStartNode(t, p.ZMQ, "cr", crServeFiles)
	waitRoutable(t, p, "", "/ready")
	t.Cleanup(func() {
		for _, f := range c.faults() {
			t.Errorf("node: %s", f)
		}
	})
	return p, c
}

// crSlowDownload has a slow client fetch uri over one connection, checks
// every byte of pattern seed, then checks the connection still serves a
// request. It returns the node's record of the request.
func crSlowDownload(t *testing.T, p *proxy, c *crNode, uri string, size int64, seed byte, chunked bool) crReq {
	t.Helper()
	r := hDial(t, p.Addr, crDeadline)
	r.write("GET " + uri + " HTTP/1.1\r\nHost: x\r\n\r\n")
	c.waitCredit(t, uri, 1)
	resp, err := http.ReadResponse(r.br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("%s: reading the head: %v", uri, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d", uri, resp.StatusCode)
	}
	if chunked != (resp.ContentLength == -1) || chunked != (len(resp.TransferEncoding) == 1) {
		t.Fatalf("%s: Content-Length %d, Transfer-Encoding %v", uri, resp.ContentLength, resp.TransferEncoding)
	}
	slow := &crSlowReader{r: resp.Body, step: crReadStep, pause: crReadPause}
	if err := hVerify(slow, seed, size); err != nil {
		t.Fatalf("%s: %v (the proxy closed the connection early, or the body is wrong; log:\n%s)", uri, err, p.Log())
	}
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("%s: %d bytes past the body (%v)", uri, len(rest), err)
	}
	resp.Body.Close()
	r.write("GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := r.response("GET"); resp.StatusCode != 200 {
		t.Fatalf("after %s: status %d", uri, resp.StatusCode)
	}
	rs := c.requests(uri)
	rs[0].check(t, size)
	return rs[0]
}

// TestCreditSlowDownload: 20 MB to a client that reads about 4 MB/s,
// with max-pending-output = 1m. The node keeps within its credit, so the
// proxy holds one window and never closes the client; every byte
// arrives; the proxy's RSS stays flat. Not parallel: with -race it runs
// on the race build (every byte checked, RSS logged) and on the plain
// one (RSS asserted), which hStartProxyWith swaps in.
func TestCreditSlowDownload(t *testing.T) {
	for _, b := range hBuilds(t) {
		t.Run(b.name, func(t *testing.T) { crSlowDownloadRSS(t, b) })
	}
}

func crSlowDownloadRSS(t *testing.T, b hBuild) {
	const size = 20 << 20
	p, c := crSetupOn(t, hStartProxyWith(t, b.bin, crConfig, crVHosts))
	base := hBaseline(t, p.Pid())
	stop := hSampleRSS(p.Pid(), 50*time.Millisecond)
	start := time.Now()
	crSlowDownload(t, p, c, "/big?size="+strconv.Itoa(size)+"&seed=3", size, 3, false)
	elapsed := time.Since(start)
	maxRSS, samples := stop()
	growth := maxRSS - base
	t.Logf("slow download of %d MB (%s build) in %v; proxy RSS %.1f MB before, max %.1f MB: growth %.1f MB (%d samples)",
		size>>20, b.name, elapsed.Round(time.Millisecond), float64(base)/(1<<20), float64(maxRSS)/(1<<20), float64(growth)/(1<<20), samples)
	if b.checkRSS && growth >= crMaxRSSGrowth {
		t.Errorf("proxy RSS grew by %.1f MB during a slow download under credits (limit %d MB)", float64(growth)/(1<<20), crMaxRSSGrowth>>20)
	}
}

// TestCreditChunked: a chunked response of `chunk` messages under
// credits, to a slow client; the empty chunk still ends it.
func TestCreditChunked(t *testing.T) {
	t.Parallel()
	const size = 5 << 20
	p, c := crSetup(t)
	crSlowDownload(t, p, c, "/chunked?size="+strconv.Itoa(size)+"&seed=7", size, 7, true)
}

// TestCreditWebSocket: 2000 messages of 8 KiB from the node to a client
// that reads slowly arrive whole and in order, within the node's credit.
func TestCreditWebSocket(t *testing.T) {
	t.Parallel()
	p, c := crSetup(t)
	conn, _ := wDial(t, p, "/ws-credit", ws.Dialer{})
	_ = conn.SetDeadline(time.Now().Add(crDeadline))
	c.waitCredit(t, "/ws-credit", 1)
	want := hPattern(crWSSeed)
	exp := make([]byte, crWSSize)
	for i := range crWSCount {
		if i%(crReadStep/crWSSize) == 0 {
			time.Sleep(crReadPause)
		}
		got, op, err := wsutil.ReadServerData(conn)
		if err != nil {
			t.Fatalf("message %d of %d: %v", i, crWSCount, err)
		}
		_, _ = want.Read(exp)
		if op != ws.OpBinary || string(got) != string(exp) {
			t.Fatalf("message %d: %v of %d bytes, not the one expected (%d bytes of pattern %d)", i, op, len(got), crWSSize, crWSSeed)
		}
	}
	done := c.waitDone(t, "/ws-credit", 1)
	if rs := c.requests("/ws-credit"); len(rs) != 1 {
		t.Fatalf("the node saw %d handshakes", len(rs))
	}
	done.check(t, crWSCount*crWSSize)
}

// TestCreditKeepAlive: two requests on one keep-alive connection (one
// sid): each head is followed by a credit that grants a fresh window,
// and each response, larger than the window, goes within its credit.
func TestCreditKeepAlive(t *testing.T) {
	t.Parallel()
	const size = 1 << 20
	p, c := crSetup(t)
	r := hDial(t, p.Addr, crDeadline)
	var got []crReq
	for i, seed := range []byte{5, 6} {
		uri := fmt.Sprintf("/big?size=%d&seed=%d", size, seed)
		r.write("GET " + uri + " HTTP/1.1\r\nHost: x\r\n\r\n")
		c.waitCredit(t, uri, 1)
		resp, err := http.ReadResponse(r.br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if resp.StatusCode != 200 || resp.ContentLength != size {
			t.Fatalf("request %d: %d with Content-Length %d", i+1, resp.StatusCode, resp.ContentLength)
		}
		if err := hVerify(resp.Body, seed, size); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		resp.Body.Close()
		done := c.waitDone(t, uri, 1)
		if rs := c.requests(uri); len(rs) != 1 {
			t.Fatalf("request %d: the node saw %d heads", i+1, len(rs))
		}
		done.check(t, size)
		if len(done.Credits) < 2 {
			t.Errorf("request %d: one credit for %d bytes over a window of %d", i+1, size, crWindow)
		}
		got = append(got, done)
	}
	if got[0].SID != got[1].SID {
		t.Errorf("one connection, two sids %x %x", got[0].SID, got[1].SID)
	}
}

// TestCreditWindowOverCap: a credit-window wider than max-pending-output
// counts as max-pending-output. Here 2m against 1m: a slow client gets
// every byte of 5 MB. Before, the node could send a whole window ahead,
// and the client, holding more than its cap unread, was closed as a slow
// reader.
func TestCreditWindowOverCap(t *testing.T) {
	t.Parallel()
	const size = 5 << 20
	p, c := crSetupOn(t, startProxy(t, "credit-window = 2m\nmax-pending-output = 1m\n", crVHosts))
	r := hDial(t, p.Addr, crDeadline)
	r.write("GET /big?size=" + strconv.Itoa(size) + "&seed=9 HTTP/1.1\r\nHost: x\r\n\r\n")
	if first := c.waitCredit(t, "/big?size="+strconv.Itoa(size)+"&seed=9", 1).Credits[0]; first != 1<<20 {
		t.Errorf("first credit %d, want max-pending-output (1m), not the 2m configured", first)
	}
	resp, err := http.ReadResponse(r.br, &http.Request{Method: "GET"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("head: %v %v", resp, err)
	}
	slow := &crSlowReader{r: resp.Body, step: crReadStep, pause: crReadPause}
	if err := hVerify(slow, 9, size); err != nil {
		t.Fatalf("%v (log:\n%s)", err, p.Log())
	}
}
