package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// deafFor holds the bridges from reading (node-read-ahead full, as when
// the loops lag) while the clock runs for d in sweeps, then lets them
// read again; it returns the time they read again.
func (h *harness) deafFor(from time.Time, d time.Duration) time.Time {
	h.t.Helper()
	bh := h.s.handlers[0]
	over := int64(h.s.opts.NodeReadAhead) + 1
	h.s.inboxed.Add(over)
	if !bh.Paused() {
		h.t.Fatal("the bridges read past node-read-ahead")
	}
	now := from
	for end := from.Add(d); now.Before(end); {
		now = now.Add(sweepEvery * 4)
		h.sweep(now)
	}
	h.s.inboxed.Add(-over)
	if bh.Paused() {
		h.t.Fatal("the bridges still do not read")
	}
	return now
}

// TestDeafNotDead: while the bridges read nothing from nodes because the
// loops have not applied what they read (node-read-ahead), a node's
// silence is not counted: its request does not fail after 3 × ping-freq
// of it (before, every node looked dead: every request and session of
// every loop failed when one loop lagged), and the node's late answer is
// delivered.
func TestDeafNotDead(t *testing.T) {
	h := newHarness(t, testOptions())
	start := time.Unix(0, h.s.now())
	h.node("n1").Seen(start.UnixNano())
	h.client("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	h.ring.take()
	back := h.deafFor(start, 2*h.s.deadAfter)
	h.sweep(back.Add(sweepEvery))
	if out := h.takeOut(); len(out) != 0 {
		t.Fatalf("the request was answered for silence the proxy could not hear: %q", out)
	}
	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if out := string(h.takeOut()); !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Fatalf("the node's late answer: client got %q", out)
	}
}

// TestDeafSilenceCountsWhileReading: the silence a node had before the
// bridges stopped reading counts on from where it stood once they read
// again: silent half of dead-after before a pause, the node is dead half
// of dead-after after it, not at once and not never.
func TestDeafSilenceCountsWhileReading(t *testing.T) {
	h := newHarness(t, testOptions())
	start := time.Unix(0, h.s.now())
	h.node("n1").Seen(start.Add(-h.s.deadAfter / 2).UnixNano())
	h.client("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	h.ring.take()
	back := h.deafFor(start, 2*h.s.deadAfter)
	now := back
	for end := back.Add(h.s.deadAfter/2 - 2*sweepEvery); now.Before(end); {
		now = now.Add(sweepEvery)
		h.sweep(now)
	}
	if out := h.takeOut(); len(out) != 0 {
		t.Fatalf("dead before dead-after of silence the proxy heard: %q", out)
	}
	for end := back.Add(h.s.deadAfter/2 + 2*sweepEvery); now.Before(end); {
		now = now.Add(sweepEvery)
		h.sweep(now)
	}
	if out := string(h.takeOut()); !strings.HasPrefix(out, "HTTP/1.1 502 ") {
		t.Fatalf("silent for dead-after on the heard clock: client got %q, want 502", out)
	}
	if ls := h.node("n1").Traffic().LastSeen; ls != start.Add(-h.s.deadAfter/2).UnixNano() {
		t.Errorf("last_seen %d moved: it is when the node spoke", ls)
	}
}

// TestDeafWebSocket: a WebSocket session is not closed for its node's
// silence while the bridges could not read (it was, with 1001).
func TestDeafWebSocket(t *testing.T) {
	h := wsUpgraded(t)
	start := time.Unix(0, h.s.now())
	h.node("n1").Seen(start.UnixNano())
	back := h.deafFor(start, 2*h.s.deadAfter)
	h.sweep(back.Add(sweepEvery))
	if out := h.takeOut(); len(out) != 0 || h.fc.closed {
		t.Fatalf("closed for silence the proxy could not hear: %q", out)
	}
	h.reply("n1", "websocket", "late")
	if out := string(h.takeOut()); out != "\x81\x04late" {
		t.Fatalf("the node's late message: client got %q", out)
	}
}

// TestH2DeafNotDead: the same for a request and a WebSocket over HTTP/2.
func TestH2DeafNotDead(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	start := time.Unix(0, h.s.now())
	h.node("n1").Seen(start.UnixNano())
	q.openWS(1, "a")
	q.open(3, "GET", "a", true)
	q.frames()
	back := h.deafFor(start, 2*h.s.deadAfter)
	h.sweep(back.Add(sweepEvery))
	if code := q.wsCloseOn(1); code != 0 || h.fc.closed {
		t.Fatalf("closed (%d) for silence the proxy could not hear", code)
	}
	q.deliver("n1", 3, "headers", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if st := q.status(3); st != "200" {
		t.Fatalf("the request's late answer: status %q, want 200", st)
	}
}

// TestDeafLogged: a pause past dead-after is logged once, and its end.
func TestDeafLogged(t *testing.T) {
	var logs bytes.Buffer
	o := testOptions()
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	h := newHarness(t, o)
	var w deafPause
	start := time.Unix(0, h.s.now())
	h.s.inboxed.Add(int64(h.s.opts.NodeReadAhead) + 1)
	h.s.handlers[0].Paused()
	h.s.watchDeaf(&w, start.Add(h.s.deadAfter/2).UnixNano())
	if logs.Len() != 0 {
		t.Fatalf("logged a short pause: %s", logs.String())
	}
	h.s.watchDeaf(&w, start.Add(h.s.deadAfter+time.Second).UnixNano())
	h.s.watchDeaf(&w, start.Add(h.s.deadAfter+2*time.Second).UnixNano())
	if n := strings.Count(logs.String(), "have not applied node replies"); n != 1 {
		t.Fatalf("warned %d times, want once: %s", n, logs.String())
	}
	h.s.inboxed.Add(-int64(h.s.opts.NodeReadAhead) - 1)
	h.s.handlers[0].Paused()
	h.s.watchDeaf(&w, start.Add(h.s.deadAfter+3*time.Second).UnixNano())
	if !strings.Contains(logs.String(), "reading from nodes again") {
		t.Fatalf("the end of the pause was not logged: %s", logs.String())
	}
}
