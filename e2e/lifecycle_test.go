package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
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
	p := startProxy(t, "shutdown-grace = 5\n", catchAll)
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
	got := map[string]bool{}
	for len(ends) > 0 {
		got[<-ends] = true
	}
	if !got[sid] {
		t.Errorf("the node got no end for the in-flight session")
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
	resp, err := http.Get("http://" + addr + "/v6")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Hello, World!" {
		t.Fatalf("over IPv6: %d %q", resp.StatusCode, body)
	}
}
