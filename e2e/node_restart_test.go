package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// TestNodeRestartFailsItsSessions: when another process answers for a
// node's name (its pongs' instance token changed: a restart), the
// sessions bound to the old process are lost to the node, and the proxy
// ends them at once: a response half sent closes its connection, a
// request still awaiting its head is answered 502 (no other node to fail
// over to). Before, the first hung until the client gave up, the second
// until timeout (504).
func TestNodeRestartFailsItsSessions(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "timeout = 50\n", catchAll)
	held := make(chan string, 1)
	old := hStartNode(t, p.ZMQ, "n1", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		switch m.Env["PATH_INFO"] {
		case "/stream":
			_ = n.Send([]byte(m.SID), "headers", []byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart"))
		case "/slow":
			held <- m.SID
		default:
			hRespond(n, m.SID, 200, "", "old")
		}
	})
	waitRoutable(t, p, "", "/")
	pong := func(hn *hNode) {
		hn.Do(func(n *node.Node) { _ = n.Send([]byte("0123456789abcdef"), "pong", n.PongBody()) })
	}
	pong(old)

	streaming, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer streaming.Close()
	_ = streaming.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(streaming, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	sr := bufio.NewReader(streaming)
	resp, err := http.ReadResponse(sr, nil)
	if err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, part); err != nil || string(part) != "part" {
		t.Fatalf("the first part: %q, %v", part, err)
	}
	waiting, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	_ = waiting.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(waiting, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the node never got /slow")
	}

	// The node restarts: a new process under the same name.
	old.Stop()
	fresh := hStartNode(t, p.ZMQ, "n1", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type == "uwsgi" {
			hRespond(n, m.SID, 200, "", "new")
		}
	})
	pong(fresh)

	if rest, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("the half-sent response: %q, %v; want its connection closed", rest, err)
	}
	r2, err := http.ReadResponse(bufio.NewReader(waiting), nil)
	if err != nil {
		t.Fatalf("the waiting request: %v", err)
	}
	r2.Body.Close()
	if r2.StatusCode != 502 {
		t.Errorf("the waiting request got %d, want 502", r2.StatusCode)
	}
	waitRoutable(t, p, "", "/")
	if code, body, err := mpGet(http.DefaultClient, p.URL("/after")); err != nil || code != 200 || body != "new" {
		t.Errorf("after the restart: %d %q %v", code, body, err)
	}
}
