package node_test

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/node"
)

// dialAll connects one node with identity to every stub; its receives
// time out after stubTimeout.
func dialAll(t *testing.T, identity string, stubs ...*stub) *node.Node {
	t.Helper()
	eps := make([]string, len(stubs))
	for i, s := range stubs {
		eps[i] = s.ep
	}
	n, err := node.Dial(identity, eps...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.SetRecvTimeout(stubTimeout); err != nil {
		t.Fatal(err)
	}
	if got := len(n.Sockets()); got != len(stubs) {
		t.Fatalf("%d sockets for %d endpoints", got, len(stubs))
	}
	if n.Socket() != n.Sockets()[0] {
		t.Fatal("Socket() is not the first endpoint's socket")
	}
	return n
}

// recvAll has the node receive k messages and returns them by sid.
func recvAll(t *testing.T, n *node.Node, k int) map[string]node.Message {
	t.Helper()
	got := map[string]node.Message{}
	for range k {
		m, err := n.Recv()
		if err != nil {
			t.Fatalf("Recv after %d of %d: %v", len(got), k, err)
		}
		got[string(m.SID)] = m
	}
	return got
}

func send(t *testing.T, n *node.Node, sid, typ, body string, want error) {
	t.Helper()
	if err := n.Send([]byte(sid), typ, []byte(body)); !errors.Is(err, want) {
		t.Fatalf("Send(%q, %s) = %v, want %v", sid, typ, err, want)
	}
}

// TestMultiProxyReplies: requests from two proxies come through one
// Recv, and every reply goes back to the proxy its session came from,
// interleaved as a busy node would write them.
func TestMultiProxyReplies(t *testing.T) {
	a, b := startStub(t), startStub(t)
	n := dialAll(t, "both", a, b)
	const per = 50
	for i := range per {
		a.send("both", fmt.Sprintf("a%02d", i), "uwsgi", head)
		b.send("both", fmt.Sprintf("b%02d", i), "headers", "GET / HTTP/1.1\r\n\r\n")
	}
	got := recvAll(t, n, 2*per)
	for i := range per {
		for _, sid := range []string{fmt.Sprintf("a%02d", i), fmt.Sprintf("b%02d", i)} {
			if _, ok := got[sid]; !ok {
				t.Fatalf("no message for %s", sid)
			}
			send(t, n, sid, "headers", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"+sid, nil)
		}
	}
	if k := n.RoutedSessions(); k != 2*per {
		t.Fatalf("RoutedSessions = %d, want %d", k, 2*per)
	}
	// Each proxy gets exactly its own replies, in order: one that went to
	// the other socket would show up in the wrong sequence.
	for i := range per {
		sid := fmt.Sprintf("a%02d", i)
		a.expect(frame{"both", sid, "headers", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n" + sid})
		sid = fmt.Sprintf("b%02d", i)
		b.expect(frame{"both", sid, "headers", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n" + sid})
	}
}

// TestMultiProxyPing: each proxy's ping is answered on its own socket,
// with the credits token once enabled, and never reaches the caller.
func TestMultiProxyPing(t *testing.T) {
	for _, credits := range []bool{false, true} {
		t.Run(fmt.Sprintf("credits=%v", credits), func(t *testing.T) {
			a, b := startStub(t), startStub(t)
			n := dialAll(t, "pinged", a, b)
			pong := ""
			if credits {
				n.EnableCredits()
				pong = node.CreditsFeature
			}
			a.send("pinged", "", "ping", "")
			a.send("pinged", "", "ping", "")
			b.send("pinged", "", "ping", "")
			a.send("pinged", "a1", "uwsgi", head)
			b.send("pinged", "b1", "uwsgi", head)
			got := recvAll(t, n, 2)
			if got["a1"].Type != "uwsgi" || got["b1"].Type != "uwsgi" {
				t.Fatalf("Recv returned %v", got)
			}
			a.expect(frame{"pinged", "", "pong", pong})
			a.expect(frame{"pinged", "", "pong", pong})
			b.expect(frame{"pinged", "", "pong", pong})
			// Nothing more came to either: the next message of each is the
			// reply sent now.
			send(t, n, "a1", "end", "", nil)
			send(t, n, "b1", "end", "", nil)
			a.expect(frame{"pinged", "a1", "end", ""})
			b.expect(frame{"pinged", "b1", "end", ""})
		})
	}
}

// TestMultiProxyEnd: the proxy's `end` and the node's own remove the
// session from the table; a sid never seen, or ended, is refused.
func TestMultiProxyEnd(t *testing.T) {
	a, b := startStub(t), startStub(t)
	n := dialAll(t, "ender", a, b)
	n.EnableCredits()
	send(t, n, "nobody", "headers", "HTTP/1.1 204 No Content\r\n\r\n", node.ErrUnknownSession)
	if sent, err := n.SendBody([]byte("nobody"), "body", nil); sent != 0 || !errors.Is(err, node.ErrUnknownSession) {
		t.Fatalf("SendBody of an unknown sid: %d, %v", sent, err)
	}
	a.send("ender", "a1", "uwsgi", head)
	a.send("ender", "a1", "body", "x") // more of a1: still one entry
	b.send("ender", "b1", "uwsgi", head)
	recvAll(t, n, 3)
	if k := n.RoutedSessions(); k != 2 {
		t.Fatalf("RoutedSessions = %d, want 2", k)
	}

	a.send("ender", "a1", "end", "")
	if m := recvType(t, n, "a1", "end"); len(m.Body) != 0 {
		t.Fatalf("end body %q", m.Body)
	}
	if k := n.RoutedSessions(); k != 1 {
		t.Fatalf("RoutedSessions after the proxy's end = %d, want 1", k)
	}
	send(t, n, "a1", "body", "late", node.ErrUnknownSession)
	wantCredit(t, n, "a1", 0)

	send(t, n, "b1", "end", "", nil)
	if k := n.RoutedSessions(); k != 0 {
		t.Fatalf("RoutedSessions after the node's end = %d, want 0", k)
	}
	send(t, n, "b1", "body", "late", node.ErrUnknownSession)
	b.expect(frame{"ender", "b1", "end", ""})

	// A late message of an ended session enters it again until its end.
	b.send("ender", "b1", "body", "late")
	b.send("ender", "b1", "end", "")
	recvType(t, n, "b1", "body")
	recvType(t, n, "b1", "end")
	if k := n.RoutedSessions(); k != 0 {
		t.Fatalf("RoutedSessions = %d, want 0", k)
	}
}

// TestMultiProxyMaxSessions: sessions that never end cannot grow the
// table past its bound, and one in use is kept while idle ones go.
func TestMultiProxyMaxSessions(t *testing.T) {
	a, b := startStub(t), startStub(t)
	n := dialAll(t, "bounded", a, b)
	const limit = 8
	n.SetMaxSessions(limit)
	a.send("bounded", "live", "uwsgi", head)
	recvType(t, n, "live", "uwsgi")
	for i := range 40 {
		sid := fmt.Sprintf("lost%02d", i)
		b.send("bounded", sid, "uwsgi", head) // its proxy dies: no end ever
		recvType(t, n, sid, "uwsgi")
		if k := n.RoutedSessions(); k > limit {
			t.Fatalf("RoutedSessions = %d after %d sessions, over %d", k, i+1, limit)
		}
		if i%2 == 0 {
			send(t, n, "live", "websocket", sid, nil) // in use: kept
			a.expect(frame{"bounded", "live", "websocket", sid})
		}
	}
	send(t, n, "lost00", "body", "x", node.ErrUnknownSession)
	send(t, n, "lost39", "body", "x", nil)
	b.expect(frame{"bounded", "lost39", "body", "x"})
}

// TestMultiProxyRecvTimeout: with nothing from any proxy, Recv gives up
// after the receive timeout with zmq's EAGAIN, as with one socket.
func TestMultiProxyRecvTimeout(t *testing.T) {
	a, b := startStub(t), startStub(t)
	n := dialAll(t, "idle", a, b)
	const wait = 50 * time.Millisecond
	if err := n.SetRecvTimeout(wait); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := n.Recv()
	if zmq.AsErrno(err) != zmq.Errno(syscall.EAGAIN) {
		t.Fatalf("Recv: %v, want EAGAIN", err)
	}
	if d := time.Since(start); d < wait {
		t.Fatalf("Recv gave up after %v, before %v", d, wait)
	}
	// A ping alone is answered, and Recv still times out.
	b.send("idle", "", "ping", "")
	if _, err := n.Recv(); zmq.AsErrno(err) != zmq.Errno(syscall.EAGAIN) {
		t.Fatalf("Recv: %v, want EAGAIN", err)
	}
	b.expect(frame{"idle", "", "pong", ""})
}

// TestSingleEndpointSendsAnySID: with one endpoint there is no table, and
// a caller that receives on Socket() itself can still Send any sid.
func TestSingleEndpointSendsAnySID(t *testing.T) {
	s := startStub(t)
	n := s.dial("single")
	send(t, n, "never-seen", "body", "x", nil)
	s.expect(frame{"single", "never-seen", "body", "x"})
	if k := n.RoutedSessions(); k != 0 {
		t.Fatalf("RoutedSessions = %d with one endpoint", k)
	}
}

func TestDialDuplicateEndpoint(t *testing.T) {
	s := startStub(t)
	if n, err := node.Dial("dup", s.ep, s.ep); err == nil {
		n.Close()
		t.Fatal("Dial with an endpoint twice succeeded")
	}
}
