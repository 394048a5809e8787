package server

import (
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// response-idle-timeout: a node that began a response and then sends
// nothing more of it for that long, while nothing holds it up, ends the
// response: the HTTP/1.x connection closes, the HTTP/2 stream is reset,
// the node gets `end`. Before, the client waited for as long as it
// would, holding its connection (or stream) and the node's session.

func TestResponseIdleTimeout(t *testing.T) {
	h := newHarness(t, testOptions())
	limit := h.s.opts.ResponseIdleTimeout
	t0 := time.Now()
	h.client("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	h.reply("n1", "chunk", "first") // the count starts at the node's last message
	h.ring.take()
	at := func(d time.Duration) {
		h.node("n1").Seen(t0.Add(d).UnixNano()) // alive: it pongs
		h.sweep(t0.Add(d))
	}
	at(limit / 2)
	if h.fc.closed {
		t.Fatal("closed before response-idle-timeout")
	}

	// The node has no credit left (the client is behind, it waits for
	// the proxy's grant): not its silence; the count starts over.
	h.c.creditOn, h.c.credit = true, 0
	at(2 * limit)
	if h.fc.closed {
		t.Fatal("closed while the node had no credit to send with")
	}
	h.c.credit = 1 << 10
	at(2*limit + limit/2)
	if h.fc.closed {
		t.Fatal("closed before response-idle-timeout counted from the end of the wait for credit")
	}
	at(3*limit + time.Second)
	if !h.fc.closed {
		t.Fatal("a response its node stopped sending keeps the connection past response-idle-timeout")
	}
	if got := sentTypes(h); !slices.Contains(got, "end:") {
		t.Errorf("node got %q, want an end", got)
	}
	if out := string(h.takeOut()); strings.HasSuffix(out, "0\r\n\r\n") {
		t.Errorf("the cut response ended cleanly: %q", out)
	}
}

func TestH2ResponseIdleTimeout(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	limit := h.s.opts.ResponseIdleTimeout
	t0 := time.Now()
	q.open(1, "GET", "a", true)
	q.deliver("n1", 1, "headers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	q.deliver("n1", 1, "chunk", "first")
	if heads, reset := q.heads(1); heads != 1 || reset {
		t.Fatalf("heads %d, reset %v", heads, reset)
	}
	sid := h.c.h2.streams[1].sid
	h.ring.take()
	h.node("n1").Seen(t0.Add(limit / 2).UnixNano())
	h.sweep(t0.Add(limit / 2))
	if _, reset := q.heads(1); reset {
		t.Fatal("reset before response-idle-timeout")
	}
	h.node("n1").Seen(t0.Add(limit + time.Minute).UnixNano())
	h.sweep(t0.Add(limit + time.Minute))
	if _, reset := q.heads(1); !reset {
		t.Fatal("a response its node stopped sending was not reset at response-idle-timeout")
	}
	if got := sentFor(h, h.node("n1").Index, sid); !slices.Contains(got, "end") {
		t.Errorf("node got %v, want an end", got)
	}
}

// clientAt sends b from the client in a loop turn whose clock reads at,
// as gnet's OnTurnStart and OnTurnEnd bracket each OnTraffic.
func (h *harness) clientAt(at time.Time, b string) {
	hd := (*handler)(h.s)
	hd.OnTurnStart(h.fc.el)
	h.s.loops[0].turnClock = at.UnixNano()
	h.client(b)
	hd.OnTurnEnd(h.fc.el)
}

// TestResponseIdleUploadNotCut: a node that answered early and reads the
// body before it sends more is not silent while the body comes: each
// piece pushes response-idle-timeout on. A body that stops coming, with
// the node silent too, ends it.
func TestResponseIdleUploadNotCut(t *testing.T) {
	h := newHarness(t, testOptions())
	limit := h.s.opts.ResponseIdleTimeout
	t0 := time.Now()
	h.clientAt(t0, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	at := func(d time.Duration) {
		h.node("n1").Seen(t0.Add(d).UnixNano())
		h.sweep(t0.Add(d))
	}
	h.clientAt(t0.Add(limit-time.Minute), "def")
	at(limit + time.Minute)
	if h.fc.closed {
		t.Fatal("cut while the client uploaded the body the node reads")
	}
	at(2*limit + time.Second)
	if !h.fc.closed {
		t.Fatal("a body and a response both stalled keep the connection past response-idle-timeout")
	}
}

// TestH2ResponseIdleProxyAnswer: a stream the proxy answered itself (no
// vhost, no node) whose answer waits for window is no node's response:
// the sweep leaves it (to stall-timeout). Before the check, the sweep
// read its nil vhost and the loop panicked.
func TestH2ResponseIdleProxyAnswer(t *testing.T) {
	q := newH2qHarness(t, nil, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	h := q.h
	q.open(1, "GET", "unknown.test", true) // 404, its body held by the window
	if st := h.c.h2.streams[1]; st == nil || st.phase != phStreaming || st.vhost != nil {
		t.Fatalf("stream 1: %+v, want the 404 in progress", st)
	}
	h.sweep(time.Now().Add(time.Second)) // before stall-timeout
	if h.c.h2.streams[1] == nil {
		t.Fatal("the proxy's own answer was ended as a node's silent response")
	}
}
