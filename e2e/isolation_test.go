package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// The isolation tests: what one client or node does costs only itself.
// They measure the other clients' latency while the attack runs and
// assert on the answers with generous bounds (never on speed).

// iBigHandler answers /big with size bytes of pattern 3, sent as fast as
// the node can (a node written for the original: no credits); anything
// else gets a short answer.
func iBigHandler(size int64) hHandler {
	return func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		sid := []byte(m.SID)
		if m.Env["PATH_INFO"] != "/big" {
			hRespond(n, m.SID, 200, "", "small")
			return
		}
		head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		if n.Send(sid, "headers", []byte(head)) != nil {
			return
		}
		src := hPattern(3)
		buf := make([]byte, 64<<10)
		for left := size; left > 0 && !hn.Stopping(); left -= int64(len(buf)) {
			_, _ = src.Read(buf)
			if n.Send(sid, "body", buf[:min(left, int64(len(buf)))]) != nil {
				return
			}
		}
	}
}

// iProbe does a GET every 200 ms on one keep-alive connection until stop
// is closed, and returns each answer's latency; every answer must be the
// expected one.
func iProbe(t *testing.T, addr, host string, stop <-chan struct{}) (lat []time.Duration, errs []error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, []error{err}
	}
	defer c.Close()
	br := bufio.NewReader(c)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return lat, errs
		case <-tick.C:
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		if _, err := fmt.Fprintf(c, "GET /probe/%d HTTP/1.1\r\nHost: %s\r\n\r\n", i, host); err != nil {
			return lat, append(errs, err)
		}
		resp, body, err := hReadResponse(br, "GET")
		if err != nil {
			return lat, append(errs, err)
		}
		lat = append(lat, time.Since(start))
		if resp.StatusCode != 200 {
			errs = append(errs, fmt.Errorf("probe %d: %d %q", i, resp.StatusCode, body))
		}
	}
}

// iPercentile returns the p-th percentile of ds (p in 0..100).
func iPercentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// TestIsolationSlowReaders: 20 clients that ask for 8 MB each and never
// read cost only themselves: the other clients' answers keep coming (the
// bridge never pauses for them), and each non-reader is closed as a slow
// reader once its held output passes max-pending-output.
func TestIsolationSlowReaders(t *testing.T) {
	const slow = 20
	size := int64(8 << 20)
	p := startProxy(t, "max-pending-output = 1m\n",
		"[blastbeat:big]\nnode = big\n[blastbeat:fast]\nnode = fast\n")
	hStartNode(t, p.ZMQ, "big", iBigHandler(size))
	hStartNode(t, p.ZMQ, "fast", hEcho())
	waitRoutable(t, p, "big", "/")
	waitRoutable(t, p, "fast", "/")

	stop := make(chan struct{})
	var lat []time.Duration
	var errs []error
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		lat, errs = iProbe(t, p.Addr, "fast", stop)
	}()

	var conns []net.Conn
	for i := 0; i < slow; i++ {
		c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: big\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		time.Sleep(100 * time.Millisecond) // the attack's pace, not a synchronisation
	}
	// Every non-reader is closed by the proxy, with a log line each.
	checkFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		if n := strings.Count(p.Log(), "closing a slow reader"); n < slow {
			return fmt.Errorf("%d of %d slow readers closed", n, slow)
		}
		return nil
	})
	close(stop)
	<-probed
	for _, err := range errs {
		t.Error(err)
	}
	if len(lat) < 5 {
		t.Fatalf("only %d probe answers", len(lat))
	}
	p99, worst := iPercentile(lat, 99), iPercentile(lat, 100)
	t.Logf("other client during %d non-readers of %d MB: %d answers, p50 %v, p99 %v, max %v",
		slow, size>>20, len(lat), iPercentile(lat, 50), p99, worst)
	// Generous: the goal is 50 ms; before the fix the bridge paused for
	// stall-timeout (2 s) per non-reader and probes waited seconds.
	if worst > time.Second {
		t.Errorf("a probe waited %v behind the non-reading clients", worst)
	}
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		// EOF after what the kernels held, or a reset: either way closed.
		if _, err := io.Copy(io.Discard, c); err != nil && isTimeout(err) {
			t.Errorf("a non-reader was not closed: %v", err)
		}
	}
}

// TestIsolationSilentConnections: connections that send nothing give
// their slot back at header-timeout (not idle-timeout), a connection over
// max-connections is refused at once, and service resumes as soon as the
// slots free.
func TestIsolationSilentConnections(t *testing.T) {
	const slots = 40
	p := startProxy(t, fmt.Sprintf("max-connections = %d\nheader-timeout = 1s\nidle-timeout = 120s\n", slots),
		"[blastbeat:*]\nnode = n\n")
	hStartNode(t, p.ZMQ, "n", hEcho())
	waitRoutable(t, p, "", "/")
	// waitRoutable's keep-alive connection may still hold a slot: it is
	// idle, so it is closed at idle-timeout only; close our side of it.
	http.DefaultClient.CloseIdleConnections()

	var silent []net.Conn
	for len(silent) < slots {
		c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	// Over the limit: refused at once (closed without a byte).
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			return nil // refused outright is fine too
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(make([]byte, 1))
		if n == 0 && err != nil && !isTimeout(err) {
			return nil
		}
		return fmt.Errorf("a connection over max-connections was served (read %d, %v)", n, err)
	})
	// The silent ones are closed at header-timeout.
	start := time.Now()
	for i, c := range silent {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
			t.Fatalf("silent connection %d still open after %v (read %d, %v)", i, time.Since(start), n, err)
		}
	}
	t.Logf("%d silent connections closed within %v of the last one opening", slots, time.Since(start))
	// Service resumes.
	checkFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get(p.URL("/after"))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	http.DefaultClient.CloseIdleConnections()
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestIsolationPipelinedBeyondReadAhead: 10,000 pipelined GETs padded to
// 1.4 MB, written at once, are all answered in order: reading pauses at
// max-read-ahead instead of resetting the connection.
func TestIsolationPipelinedBeyondReadAhead(t *testing.T) {
	const n = 10000
	p := startProxy(t, "", "[blastbeat:*]\nnode = n\n")
	hStartNode(t, p.ZMQ, "n", hEcho())
	waitRoutable(t, p, "", "/")

	pad := strings.Repeat("p", 100)
	var req strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&req, "GET /pl/%05d HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", i, pad)
	}
	if req.Len() < 1400000 {
		t.Fatalf("requests are %d bytes, want at least 1.4 MB", req.Len())
	}
	c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(120 * time.Second))
	wrote := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c, req.String()) // one write
		wrote <- err
	}()
	br := bufio.NewReaderSize(c, 64<<10)
	for i := 0; i < n; i++ {
		resp, body, err := hReadResponse(br, "GET")
		if err != nil {
			t.Fatalf("response %d: %v (log: %s)", i, err, bTail(p.Log(), 500))
		}
		if want := fmt.Sprintf("n GET /pl/%05d", i); resp.StatusCode != 200 || body != want {
			t.Fatalf("response %d: %d %q, want %q", i, resp.StatusCode, body, want)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatalf("writing the pipelined requests: %v", err)
	}
}

// iStartPython starts the original README's Python node as its own
// process (so that it can be stopped with SIGSTOP) and returns its pid.
func iStartPython(t *testing.T, script, endpoint, identity string) int {
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
		_ = syscall.Kill(pid, syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-exited
	})
	return pid
}

// TestIsolationStoppedNode: a node that is SIGSTOPped (so at its
// high-water mark, and silent) delays only its own sessions: the other
// vhost's clients go on, a session bound to it fails over to the other
// node once it misses its pings (3 × ping-freq), and a client whose body
// cannot be queued for it stops being read instead of stalling its loop.
func TestIsolationStoppedNode(t *testing.T) {
	bNeedPythonZMQ(t)
	p := startProxy(t, "zmq-hwm = 8\nworkers = 1\n",
		"[blastbeat:a]\nnode = pa\nnode = ga\n[blastbeat:b]\nnode = gb\n")
	pid := iStartPython(t, "readme_chunk_node.py", p.ZMQ, "pa")
	hStartNode(t, p.ZMQ, "ga", hEcho())
	hStartNode(t, p.ZMQ, "gb", hEcho())
	waitRoutable(t, p, "b", "/")

	// Keep-alive connections bound to the Python node (its answers are
	// the README's chunks), found by trying new connections.
	boundToPython := func() *hRaw {
		var bound *hRaw
		checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			r := hDial(t, p.Addr, 60*time.Second)
			r.write("GET /who HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, body := r.response("GET")
			if resp.StatusCode == 200 && strings.Contains(body, "i am the number 1<br/>") {
				bound = r
				return nil
			}
			return fmt.Errorf("served by %q", body) // r stays open: pa stays least loaded
		})
		return bound
	}
	bound, up := boundToPython(), boundToPython()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var lat []time.Duration
	var errs []error
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		lat, errs = iProbe(t, p.Addr, "b", stop)
	}()

	// A big upload on a session of the stopped node: more than its
	// high-water mark and TCP buffers hold, so its messages wait and its
	// client stops being read (the loop is shared with everyone:
	// workers=1). Once the node is found dead, the upload, too big to
	// retry elsewhere, is answered 502 (or its connection closed).
	upDone := make(chan string, 1)
	go func() {
		const size = 32 << 20
		fmt.Fprintf(up.c, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := up.c.Write(chunk); err != nil {
				break // closed by the proxy after its answer
			}
		}
		resp, _, err := hReadResponse(up.br, "POST")
		if err != nil {
			upDone <- err.Error()
			return
		}
		upDone <- resp.Status
	}()

	// The session bound to the stopped node fails over to ga.
	start := time.Now()
	bound.write("GET /again HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := bound.response("GET")
	failover := time.Since(start)
	if resp.StatusCode != 200 || body != "ga GET /again" {
		t.Fatalf("after SIGSTOP: %d %q, want ga's answer", resp.StatusCode, body)
	}
	t.Logf("a SIGSTOPped node's session failed over in %v (ping-freq 1s, dead after 3s)", failover)
	if failover > 6*time.Second {
		t.Errorf("failover took %v, want about 3 × ping-freq", failover)
	}
	select {
	case st := <-upDone:
		t.Logf("the upload towards the stopped node ended: %s", st)
	case <-time.After(30 * time.Second):
		t.Errorf("the upload towards the stopped node never got an answer")
	}
	close(stop)
	<-probed
	for _, err := range errs {
		t.Error(err)
	}
	t.Logf("vhost b during the stop: %d answers, p99 %v, max %v", len(lat), iPercentile(lat, 99), iPercentile(lat, 100))
	if worst := iPercentile(lat, 100); worst > time.Second {
		t.Errorf("vhost b waited %v behind the stopped node", worst)
	}
}
