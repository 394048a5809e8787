package server

import (
	"strings"
	"testing"
)

// TestNoCreditAfterNodeEnd: a node's `end` ends its session's credit
// (PROTOCOL.md): while the client drains the rest of a response the
// node ended, no `credit` goes to the node. Before, a close-delimited
// response the node ended got grants as its client read it (found by a
// review).
func TestNoCreditAfterNodeEnd(t *testing.T) {
	h := newHarness(t, testOptions())
	h.node("n1").SetCredits(true)
	h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	h.ring.take()
	w := h.s.opts.CreditWindow
	h.fc.outbound = w                                   // the client reads nothing yet
	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\n\r\n") // close-delimited
	h.reply("n1", "body", strings.Repeat("x", w*3/4))
	h.reply("n1", "end", "")
	h.ring.take()
	h.fc.outbound = 0 // it read everything
	(*handler)(h.s).OnOutboundDrained(h.fc, 0)
	h.settle()
	for _, m := range h.ring.take() {
		if m.Type == "credit" {
			t.Fatalf("credit %q granted after the node's end", m.Body)
		}
	}
}

// TestNoReplyToClosingConn: a reply for a connection the proxy is closing
// (gnet closes it at its next turn: closeNow) is dropped, not written
// past the check that closed it (a slow reader over its cap).
func TestNoReplyToClosingConn(t *testing.T) {
	h := newHarness(t, testOptions())
	h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	h.ring.take()
	h.c.closeNow()
	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
	if out := h.takeOut(); len(out) > 0 {
		t.Fatalf("a closing connection was written %q", out)
	}
}
