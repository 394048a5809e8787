package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// TestShutdownStopsAccepting: on SIGTERM the proxy closes its listeners at
// once, so that a new connection is refused (not accepted and then reset)
// while a response in flight is still being waited for; that response
// then completes, whole and with Connection: close, and the proxy exits 0
// (startProxy's cleanup checks the exit status).
func TestShutdownStopsAccepting(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "shutdown-grace = 30\n", catchAll)
	held := make(chan string, 1)
	hn := hStartNode(t, p.ZMQ, "n1", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		if m.Env["PATH_INFO"] == "/slow" {
			held <- m.SID // answered by the test, through hn.Do
			return
		}
		hRespond(n, m.SID, 200, "", "Hello, World!")
	})
	waitRoutable(t, p, "", "/")
	busy, sid := slowRequest(t, p, held)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections: accepted (and closed by us) until the listeners
	// are gone, then refused.
	const refuseWithin = 5 * time.Second
	start := time.Now()
	checkFor(t, refuseWithin, 10*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("a new connection to %s is still accepted after SIGTERM", p.Addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "connection refused") {
			return fmt.Errorf("dial after SIGTERM: %v, want connection refused", err)
		}
		return nil
	})
	t.Logf("new connections refused %v after SIGTERM", time.Since(start).Round(time.Millisecond))

	// The /slow response is still pending: its connection is open and
	// silent.
	_ = busy.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var ne net.Error
	if n, err := busy.Read(make([]byte, 1)); n > 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("the in-flight connection is not pending while connections are refused: read %d, %v", n, err)
	}

	// Released, it completes whole and closes.
	hn.Do(func(n *node.Node) { hRespond(n, sid, 200, "", "late answer") })
	_ = busy.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(busy)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("in-flight response lost after SIGTERM: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(body) != "late answer" || !resp.Close {
		t.Fatalf("got %d %q (%v) close=%v, want 200 \"late answer\" with Connection: close",
			resp.StatusCode, body, err, resp.Close)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Errorf("after the response: %q, %v; want EOF", rest, err)
	}

	waitProxyExit(t, p)
}

// TestSignalsWhileStopping: while the proxy waits for a response in
// flight after SIGTERM, a SIGHUP (config management reloading) is logged
// and ignored, and a second SIGTERM stops it at once, well before
// shutdown-grace; it exits 0 either way (the cleanup checks). Before, the
// signals were released when the stop began: the SIGHUP killed it.
func TestSignalsWhileStopping(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "shutdown-grace = 60\n", catchAll)
	held := make(chan string, 1)
	hStartNode(t, p.ZMQ, "n1", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type == "uwsgi" && m.Env["PATH_INFO"] == "/slow" {
			held <- m.SID // never answered
			return
		}
		if m.Type == "uwsgi" {
			hRespond(n, m.SID, 200, "", "Hello, World!")
		}
	})
	waitRoutable(t, p, "", "/")
	slowRequest(t, p, held)
	logged := func(what string) {
		t.Helper()
		checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
			if !strings.Contains(p.Log(), what) {
				return fmt.Errorf("no %q in the log", what)
			}
			return nil
		})
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logged(`msg=stopping signal=terminated`)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logged(`msg="signal ignored while stopping" signal=hangup`)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitProxyExit(t, p) // within 20 s: shutdown-grace (60 s) was cut
}

// slowRequest sends GET /slow on a new connection (closed at cleanup)
// and waits until the node has it: its handler sends the sid on held.
func slowRequest(t *testing.T, p *proxy, held <-chan string) (net.Conn, string) {
	t.Helper()
	busy, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	if _, err := io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case sid := <-held:
		return busy, sid
	case <-time.After(10 * time.Second):
		t.Fatal("the node never got /slow")
	}
	return nil, ""
}
