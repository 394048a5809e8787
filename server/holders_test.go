package server

import (
	"testing"

	"golang.org/x/net/http2"
)

// An HTTP/2 connection whose streams hold output (waiting for window)
// counts among the connections holding output, which
// max-pending-output-total's fair share divides by; before, only output
// held in the transport counted, and the share came out too large.
func TestH2StreamsHoldingCountAsHolder(t *testing.T) {
	q := newH2qHarness(t, nil, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	h := q.h
	q.open(1, "GET", "b", true)
	q.deliver("n2", 1, "headers", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	if h.c.h2.held == 0 || h.c.pendingOut != 0 {
		t.Fatalf("held %d by the stream, %d by the transport; want the stream's only", h.c.h2.held, h.c.pendingOut)
	}
	if n := h.s.holders.Load(); n != 1 {
		t.Errorf("holders = %d while a stream holds output, want 1", n)
	}
	_ = q.fr.WriteWindowUpdate(1, 100)
	q.send()
	if n := h.s.holders.Load(); h.c.h2.held != 0 || n != 0 {
		t.Errorf("after the window opened: held %d, holders %d; want 0, 0", h.c.h2.held, n)
	}
}
