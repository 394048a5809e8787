package server

import (
	"strings"
	"testing"
)

// sentTypes lists the types and bodies of what went to the nodes since
// the last take, as "type:body".
func sentTypes(h *harness) []string {
	var out []string
	for _, m := range h.ring.take() {
		out = append(out, m.Type+":"+string(m.Body))
	}
	return out
}

// TestCloseResponseKeepsForwardingBody: a response that closes the
// connection after it (an HTTP/1.0 client, or Connection: close) may
// begin before the request body ends; the rest of the body still goes to
// the node, which may need it to finish. Before, nothing more of the body
// was parsed once the head was sent: node and client waited for each
// other.
func TestCloseResponseKeepsForwardingBody(t *testing.T) {
	for _, req := range []string{
		"POST /up HTTP/1.0\r\nContent-Length: 10\r\n\r\nabc",
		"POST /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\nabc",
	} {
		t.Run(strings.Fields(req)[2], func(t *testing.T) {
			h := newHarness(t, testOptions())
			h.client(req)
			if got := sentTypes(h); len(got) != 2 || got[1] != "body:abc" {
				t.Fatalf("node got %q, want the head and body:abc", got)
			}
			h.reply("n1", "headers", "HTTP/1.1 200 OK\r\n\r\n")
			if out := string(h.takeOut()); !strings.HasPrefix(out, "HTTP/1.") {
				t.Fatalf("client got %q, want the response head", out)
			}
			h.client("defg")
			h.client("hij")
			if got := sentTypes(h); strings.Join(got, " ") != "body:defg body:hij" {
				t.Fatalf("after the response head, the node got %q, want the rest of the body", got)
			}
			h.reply("n1", "body", "done")
			h.reply("n1", "end", "")
			if out := string(h.takeOut()); out != "done" {
				t.Fatalf("client got %q, want done", out)
			}
			if !h.fc.closed {
				t.Fatal("the connection stays open after a response that closes it")
			}
		})
	}
}

// TestHeadAnswersHaveNoBody: the proxy's own answers to HEAD requests
// (404, 503, 405 …) are heads alone, Content-Length kept; a GET after
// them on the same connection gets its body. Before, the HEAD answers
// carried their bodies, which a client reads as the start of the next
// response.
func TestHeadAnswersHaveNoBody(t *testing.T) {
	o := testOptions()
	o.VHosts[0].Name = "a"
	o.VHosts = append(o.VHosts, o.VHosts[0])
	o.VHosts[1].Name, o.VHosts[1].Nodes = "b", []string{"n2"} // n2 is not alive
	h := newHarness(t, o)
	h.client("HEAD / HTTP/1.1\r\nHost: zzz\r\n\r\n" +
		"HEAD / HTTP/1.1\r\nHost: b\r\n\r\n" +
		"GET / HTTP/1.1\r\nHost: zzz\r\n\r\n")
	out := string(h.takeOut())
	parts := strings.SplitAfter(out, "\r\n\r\n")
	if len(parts) != 4 || !strings.HasPrefix(parts[0], "HTTP/1.1 404 ") || !strings.HasPrefix(parts[1], "HTTP/1.1 503 ") ||
		!strings.HasPrefix(parts[2], "HTTP/1.1 404 ") || parts[3] != "no virtual host for this Host\n" {
		t.Fatalf("got %q: want a 404 head, a 503 head, then a 404 with its body", out)
	}
	if !strings.Contains(parts[0], "Content-Length: 30\r\n") {
		t.Errorf("the HEAD answer lost its Content-Length: %q", parts[0])
	}
}

// TestDrainingClosesAfterResponse: a keep-alive response in flight when
// the shutdown begins closes its connection once it is complete. Before,
// its head had said keep-alive and the connection idled until
// shutdown-grace ended.
func TestDrainingClosesAfterResponse(t *testing.T) {
	h := newHarness(t, testOptions())
	h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
	h.s.draining.Store(true)
	h.s.loops[0].closeIdle() // what Shutdown runs on each loop
	h.settle()
	if h.fc.closed {
		t.Fatal("closed with the response in flight")
	}
	h.reply("n1", "body", "done")
	if out := string(h.takeOut()); !strings.HasSuffix(out, "done") {
		t.Fatalf("client got %q", out)
	}
	if !h.fc.closed {
		t.Fatal("the connection stays open after its response, while draining")
	}
}

// TestNodeHandshakeEarlyFrames: with websocket-handshake = node, frames
// the client sent right behind its handshake go to the node once the
// node's 101 came, as they do when the proxy answers the handshake.
// Before, they waited for the client's next packet.
func TestNodeHandshakeEarlyFrames(t *testing.T) {
	o := testOptions()
	o.VHosts[0].WebSocketHandshake = "node"
	h := newHarness(t, o)
	frame := string([]byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}) // masked "hi"
	h.client("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" + frame)
	sentTypes(h)
	h.reply("n1", "headers", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if got := sentTypes(h); strings.Join(got, " ") != "websocket:hi" {
		t.Fatalf("after the node's 101, the node got %q, want the early frame", got)
	}
}

// TestAnsweredBodyErrorNoSecondAnswer: a request body found malformed
// (or over max-body) after its response was complete gets no second
// answer: the connection closes after the first. Before, a 400 followed
// the node's 200, unasked.
func TestAnsweredBodyErrorNoSecondAnswer(t *testing.T) {
	h := newHarness(t, testOptions())
	h.client("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if out := string(h.takeOut()); !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Fatalf("client got %q, want the 200", out)
	}
	h.client("zz\r\n")
	if out := h.takeOut(); len(out) > 0 {
		t.Fatalf("after the answer, the client got %q", out)
	}
	if !h.fc.closed {
		t.Fatal("the connection stays open after a malformed body")
	}
}

// TestVHostMaxBodyAboveGlobal: a vhost's max-body above the global one
// holds (before, the parser's global limit answered 413 first), and the
// global one still holds for a vhost that sets none.
func TestVHostMaxBodyAboveGlobal(t *testing.T) {
	o := testOptions()
	o.MaxBody = 100
	o.VHosts[0].Name, o.VHosts[0].MaxBody = "big", 1000
	o.VHosts = append(o.VHosts, o.VHosts[0])
	o.VHosts[1].Name, o.VHosts[1].MaxBody = "small", 0
	for _, tt := range []struct {
		host string
		ok   bool
	}{{"big", true}, {"small", false}} {
		h := newHarness(t, o)
		h.client("POST / HTTP/1.1\r\nHost: " + tt.host + "\r\nContent-Length: 500\r\n\r\n" + strings.Repeat("x", 500))
		out := string(h.takeOut())
		if got := !strings.HasPrefix(out, "HTTP/1.1 413 "); got != tt.ok {
			t.Errorf("%s: 500 bytes answered %q", tt.host, out)
		}
	}
}

// TestHTTP10KeepAliveAnswers: the proxy's own answer to an HTTP/1.0
// client that asked to keep the connection says Connection: keep-alive,
// and the connection stays (HTTP/1.0 closes without it).
func TestHTTP10KeepAliveAnswers(t *testing.T) {
	o := testOptions()
	o.VHosts[0].Name = "a"
	h := newHarness(t, o)
	h.client("GET / HTTP/1.0\r\nHost: zzz\r\nConnection: keep-alive\r\n\r\n")
	out := string(h.takeOut())
	if !strings.HasPrefix(out, "HTTP/1.1 404 ") || !strings.Contains(out, "\r\nConnection: keep-alive\r\n") || h.fc.closed {
		t.Fatalf("got %q (closed %v), want a 404 with Connection: keep-alive", out, h.fc.closed)
	}
	h.client("GET / HTTP/1.0\r\nHost: zzz\r\n\r\n")
	if out := string(h.takeOut()); strings.Contains(out, "keep-alive") || !h.fc.closed {
		t.Fatalf("without keep-alive: %q (closed %v)", out, h.fc.closed)
	}
}
