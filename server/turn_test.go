package server

import "testing"

// TestTurnWakesBridgeOnce: within a turn of the loop (gnet's OnTurnStart
// to OnTurnEnd) messages go on the ring without waking the bridge, which
// is woken once at the turn's end; a turn that queued nothing wakes
// nobody; outside a turn a message wakes the bridge as it is queued.
func TestTurnWakesBridgeOnce(t *testing.T) {
	h := newHarness(t, testOptions())
	hd := (*handler)(h.s)
	el := h.fc.el

	hd.OnTurnStart(el)
	h.client("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n")
	h.client("abc")
	if got := len(h.ring.take()); got != 2 {
		t.Fatalf("%d messages on the ring, want the head and the body", got)
	}
	if h.ring.deferred != 2 || h.ring.kicks != 0 {
		t.Fatalf("within the turn: %d deferred, %d kicks; want 2, 0", h.ring.deferred, h.ring.kicks)
	}
	hd.OnTurnEnd(el)
	if h.ring.kicks != 1 {
		t.Fatalf("at the turn's end: %d kicks, want 1", h.ring.kicks)
	}
	hd.OnTurnStart(el)
	hd.OnTurnEnd(el)
	if h.ring.kicks != 1 {
		t.Fatalf("a turn that queued nothing kicked the bridge (%d kicks)", h.ring.kicks)
	}

	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	h.client("GET /b HTTP/1.1\r\nHost: x\r\n\r\n") // outside a turn
	if got := len(h.ring.take()); got != 1 || h.ring.deferred != 2 || h.ring.kicks != 1 {
		t.Fatalf("outside a turn: %d sent, %d deferred, %d kicks; want 1 sent at once (TrySend)", got, h.ring.deferred, h.ring.kicks)
	}
}
