package server

import (
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

// TestLeavingMovesClientsOff: during shutdown-delay (Server.Leaving) an
// HTTP/1.1 response says Connection: close and its connection closes
// after it, and an HTTP/2 connection gets GOAWAY NO_ERROR, its open
// stream still answered (one opened during the delay gets it with its
// first stream): clients move to new connections, which a
// balancer that dropped the proxy sends elsewhere, instead of keeping
// ones the stop will close under them.
func TestLeavingMovesClientsOff(t *testing.T) {
	h := newHarness(t, testOptions())
	h.s.Leaving()
	h.settle()
	h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if out := string(h.takeOut()); !strings.Contains(out, "\r\nConnection: close\r\n") || !(h.fc.closed || h.c.closeAfter) {
		t.Fatalf("HTTP/1.1 during shutdown-delay: %q, closing %v", out, h.fc.closed || h.c.closeAfter)
	}

	q := newH2qHarness(t, nil)
	q.open(1, "GET", "a", true)
	q.h.s.Leaving()
	q.h.settle()
	if code := q.goAwayCode(); code != http2.ErrCodeNo {
		t.Fatalf("HTTP/2 during shutdown-delay: GOAWAY %v, want NO_ERROR", code)
	}
	q.deliver("n1", 1, "headers", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if s := q.status(1); s != "200" {
		t.Fatalf("the stream open at the GOAWAY: status %q, want 200", s)
	}

	// A connection opened during the delay: GOAWAY with its first
	// stream, which is served.
	h = newHarness(t, testOptions())
	h.s.Leaving()
	h.settle()
	q = newH2qClient(h) // an HTTP/2 connection from now on
	q.open(1, "GET", "x", true)
	var last uint32
	var code http2.ErrCode = 1<<32 - 1
	q.readOut(func(f http2.Frame) {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			last, code = g.LastStreamID, g.ErrCode
		}
	})
	if code != http2.ErrCodeNo || last != 1 {
		t.Fatalf("a connection opened during shutdown-delay: GOAWAY %v (last stream %d), want NO_ERROR with 1", code, last)
	}
	q.deliver("n1", 1, "headers", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if s := q.status(1); s != "200" {
		t.Fatalf("its first stream: status %q, want 200", s)
	}
}
