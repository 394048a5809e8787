package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// TestGracefulShutdown: on SIGTERM a response in flight still completes
// (with Connection: close), idle keep-alive connections are closed, the
// node gets `end` for every session, and the proxy exits 0.
func TestGracefulShutdown(t *testing.T) {
	// A long grace: the test never needs it to run out, and a loaded run
	// may take seconds between the SIGTERM and the late response.
	p := startProxy(t, "shutdown-grace = 30\n", catchAll)
	held := make(chan string, 1)
	ends := make(chan string, 16)
	hn := hStartNode(t, p.ZMQ, "n1", func(hn *hNode, n *node.Node, m hMsg) {
		switch m.Type {
		case "uwsgi":
			if m.Env["PATH_INFO"] == "/slow" {
				held <- m.SID
				return
			}
			hRespond(n, m.SID, 200, "", "Hello, World!")
		case "end":
			ends <- m.SID
		}
	})
	waitRoutable(t, p, "", "/")

	idle, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	idleR := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(idleR, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("idle connection's first request: %v", err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}

	busy, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fmt.Fprintf(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	var sid string
	select {
	case sid = <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("the node never got /slow")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The idle keep-alive connection is closed at once.
	_ = idle.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := idleR.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection not closed on SIGTERM: read %d, %v", n, err)
	}
	// The response in flight still arrives, whole, and closes.
	hn.Do(func(n *node.Node) { hRespond(n, sid, 200, "", "late") })
	_ = busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("in-flight response lost on SIGTERM: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "late" || !resp.Close {
		t.Fatalf("got %d %q close=%v, want 200 \"late\" with Connection: close", resp.StatusCode, body, resp.Close)
	}
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return nil
		}
		return fmt.Errorf("blastbeat still running after SIGTERM")
	})
	// The proxy sent `end` before it exited, but the node may not have
	// read it yet: wait for it.
	timeout := time.After(10 * time.Second)
	for got := ""; got != sid; {
		select {
		case got = <-ends:
		case <-timeout:
			t.Fatalf("the node got no end for the in-flight session")
		}
	}
}

// TestIPv6Listener: a bind on [::1] serves like one on 127.0.0.1.
func TestIPv6Listener(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	p := startProxy(t, "bind = "+addr+"\n", catchAll)
	startGoNode(t, p.ZMQ, "n1", helloHandler)
	waitRoutable(t, p, "", "/")
	expectHello(t, "http://"+addr+"/v6")
}

// TestInterimResponse: a 1xx head from the node reaches an HTTP/1.1
// client and the final head still follows; the connection stays in step.
func TestInterimResponse(t *testing.T) {
	p := startProxy(t, "", catchAll)
	startGoNode(t, p.ZMQ, "n1", func(n *node.Node, m node.Message) {
		if m.Type != "uwsgi" {
			return
		}
		_ = n.Send(m.SID, "headers", []byte("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"))
		_ = n.Send(m.SID, "headers", []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	})
	waitRoutable(t, p, "", "/")
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for i := 0; i < 2; i++ {
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 103 ") {
			t.Fatalf("request %d: first line %q, %v; want the 103", i, line, err)
		}
		for line != "\r\n" {
			if line, err = r.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: final response %d %q", i, resp.StatusCode, body)
		}
	}
}

// TestRepliesToAnUnusedLoop: replies for well-formed sids that no
// connection of the loop holds (e.g. sessions from before a restart) are
// dropped and counted as Stale, and do not eat the bridge's read-ahead
// budget: the proxy goes on serving. (The loop has seen at most
// startProxy's probe connection, long closed: depending on whether gnet
// opened it before the burst is read, the replies are dropped in
// Deliver, the loop having no event loop yet, or in the loop's drain,
// the sid matching no connection; both count one Stale per reply.)
func TestRepliesToAnUnusedLoop(t *testing.T) {
	// The burst comes from a node of its own, so that the serving node's
	// liveness is not mixed up with it.
	p := startProxy(t, "workers = 1\n", "[blastbeat:*]\nnode = n1\n\n[blastbeat:early.test]\nnode = early\n")
	stale := make([]byte, 16)
	stale[6], stale[8] = 0x40, 0x80 // UUID-v4 shape, loop 0, slot 0
	const burst = 48                // × 64 KiB = 3 MiB: over the bridge's 1 MiB read-ahead budget
	// A node sends the burst before any client has connected, then serves
	// early.test.
	early := hStartNode(t, p.ZMQ, "early", hNameHandler)
	early.Do(func(n *node.Node) {
		piece := make([]byte, 64<<10)
		for i := 0; i < burst; i++ {
			if err := n.Send(stale, "body", piece); err != nil {
				t.Errorf("sending stale reply %d: %v", i, err)
				return
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	// Every answer of early comes after the burst on its pipe: once one is
	// here, the proxy has read (and dropped) the whole burst. Were the
	// dropped bytes still charged to the budget, the bridge would have
	// stopped reading and this request would time out.
	waitRoutable(t, p, "early.test", "/ready")
	if resp, body := hRawGet(t, p, hHostReq("/after-burst", "early.test")); resp.StatusCode != 200 || body != "early /after-burst" {
		t.Fatalf("early.test after the burst: got %d %q", resp.StatusCode, body)
	}
	startGoNode(t, p.ZMQ, "n1", helloHandler)
	waitRoutable(t, p, "", "/")
	for i := 0; i < 3; i++ {
		expectHello(t, p.URL("/after-stale"))
	}
	stats := bStopStats(t, p)
	t.Logf("proxy stats: %s", stats)
	// At least: any other reply to a closed session counts too.
	if got := bStat(stats, "Stale"); got < burst {
		t.Errorf("Stale = %d, want at least the %d replies of the burst: %s", got, burst, stats)
	}
}

// TestVHostMaxBodyChunked: a vhost's max-body also bounds a chunked body,
// whose length the head does not declare.
func TestVHostMaxBodyChunked(t *testing.T) {
	p := startProxy(t, "", "[blastbeat:*]\nnode = n1\nmax-body = 1000\n")
	startGoNode(t, p.ZMQ, "n1", func(n *node.Node, m node.Message) {
		if m.Type == "uwsgi" {
			env, _ := node.Environ(m.Body)
			if env["REQUEST_METHOD"] == "GET" {
				helloHandler(n, m)
			}
		}
	})
	waitRoutable(t, p, "", "/")
	chunk := strings.Repeat("x", 600)
	req := "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		fmt.Sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", len(chunk), chunk, len(chunk), chunk)
	raw := rawExchange(t, p.Addr, req, 5*time.Second)
	if !strings.HasPrefix(raw, "HTTP/1.1 413 ") {
		t.Fatalf("chunked body over the vhost's max-body: got %q, want 413", raw)
	}
}

// TestSignalDuringConfigLoad: a SIGTERM that comes while the config is
// still being read (here from a FIFO nobody has written yet) is caught
// and stops the proxy gracefully once it has started. Before, the
// signals were caught only after the load: the SIGTERM killed the
// process outright, and as PID 1 in a container, where an uncaught
// SIGTERM is ignored, it was lost.
func TestSignalDuringConfigLoad(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "blastbeat.ini")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	log := &logBuffer{}
	cmd := exec.Command(binary, fifo)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
	}()
	// Opening the FIFO to write returns once blastbeat has opened it to
	// read its config: it is in the load.
	opened := make(chan *os.File, 1)
	go func() {
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			opened <- w
		}
	}()
	var w *os.File
	select {
	case w = <-opened:
	case err := <-exited:
		t.Fatalf("blastbeat exited before reading its config: %v\n%s", err, log.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("blastbeat never opened its config\n%s", log.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	zmq := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	_, _ = fmt.Fprintf(w, "[blastbeat]\nbind = %s\nzmq = %s\n\n[blastbeat:*]\nnode = n\n", addr, zmq) // EPIPE if it died
	w.Close()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("blastbeat ended with %v, want a graceful stop (exit 0)\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("blastbeat still running 30 s after the SIGTERM\n%s", log.String())
	}
	if !strings.Contains(log.String(), "blastbeat stopped") {
		t.Errorf("no graceful stop in the log:\n%s", log.String())
	}
}
