package server

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A request's response deadline (`timeout`) counts from the last byte of
// its body that went to the node (bodyDeadline): an upload longer than
// timeout is not cut with a 504, and one whose client stops sending is
// answered 408, not 504.

func TestSlowUploadNotCut(t *testing.T) {
	h := newHarness(t, testOptions())
	t0 := time.Now()
	h.client("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc")
	for i, at := range []time.Duration{50 * time.Second, 100 * time.Second} {
		h.node("n1").Seen(t0.Add(at).UnixNano()) // alive: it pongs
		h.sweep(t0.Add(at))
		if out := h.takeOut(); len(out) > 0 {
			t.Fatalf("at %v, with the body still coming: %q", at, out)
		}
		h.client([]string{"def", "gh"}[i])
	}
	// The client stalls with one byte to go: 408, not the node's fault.
	h.node("n1").Seen(t0.Add(200 * time.Second).UnixNano())
	h.sweep(t0.Add(200 * time.Second))
	if out := string(h.takeOut()); !strings.HasPrefix(out, "HTTP/1.1 408 ") {
		t.Fatalf("a stalled body got %q, want a 408", out)
	}
	if !h.fc.closed {
		t.Fatal("the connection stays open after the 408")
	}
}

func TestUploadedRequestStill504(t *testing.T) {
	h := newHarness(t, testOptions())
	t0 := time.Now()
	h.client("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	h.sweep(t0.Add(2 * time.Minute))
	if out := string(h.takeOut()); !strings.HasPrefix(out, "HTTP/1.1 504 ") {
		t.Fatalf("a whole request unanswered got %q, want a 504", out)
	}
}

// TestAnsweredBodyStallClosed: a request answered before its body ended
// (here by its node, keeping the connection alive) whose client then
// sends nothing for idle-timeout gives its connection back. Before, it
// stayed open for as long as the client kept it.
func TestAnsweredBodyStallClosed(t *testing.T) {
	h := newHarness(t, testOptions())
	t0 := time.Now()
	h.client("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
	h.reply("n1", "headers", "HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno")
	if out := string(h.takeOut()); !strings.HasPrefix(out, "HTTP/1.1 401 ") {
		t.Fatalf("client got %q, want the 401", out)
	}
	h.sweep(t0.Add(h.s.opts.IdleTimeout / 2))
	if h.fc.closed {
		t.Fatal("closed before idle-timeout")
	}
	h.sweep(t0.Add(h.s.opts.IdleTimeout + time.Minute))
	if !h.fc.closed {
		t.Fatal("a body stalled after its answer keeps the connection past idle-timeout")
	}
}

// status returns the :status of the first HEADERS for stream id among
// what the proxy wrote since the last call ("" if none).
func (q *h2qClient) status(id uint32) (status string) {
	dec := hpack.NewDecoder(4096, nil)
	q.readOut(func(f http2.Frame) {
		if hf, ok := f.(*http2.HeadersFrame); ok && hf.StreamID == id && status == "" {
			fields, err := dec.DecodeFull(hf.HeaderBlockFragment())
			if err != nil {
				q.h.t.Fatalf("HPACK: %v", err)
			}
			for _, fl := range fields {
				if fl.Name == ":status" {
					status = fl.Value
				}
			}
		}
	})
	return status
}

func TestH2SlowUploadNotCut(t *testing.T) {
	q := newH2qHarness(t, nil)
	t0 := time.Now()
	q.open(1, "POST", "a", false)
	for _, at := range []time.Duration{50 * time.Second, 100 * time.Second} {
		q.data(1, 100)
		q.h.node("n1").Seen(t0.Add(at).UnixNano())
		q.h.sweep(t0.Add(at))
		if s := q.status(1); s != "" {
			t.Fatalf("at %v, with the body still coming: %s", at, s)
		}
	}
	q.h.node("n1").Seen(t0.Add(300 * time.Second).UnixNano())
	q.h.sweep(t0.Add(300 * time.Second))
	if s := q.status(1); s != "408" {
		t.Fatalf("a stalled body got %q, want 408", s)
	}
}

// TestBodyEndPushesDeadline: the request's last byte counts, also when
// it carries no data (a chunked body's last chunk, an HTTP/2 END_STREAM
// on an empty DATA frame): timeout runs from it. Before, the deadline
// stayed at the last data piece's: a 504 right after the request ended.
func TestBodyEndPushesDeadline(t *testing.T) {
	h := newHarness(t, testOptions())
	t0 := time.Now()
	h.client("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
	h.node("n1").Seen(t0.Add(50 * time.Second).UnixNano())
	h.sweep(t0.Add(50 * time.Second))
	h.client("0\r\n\r\n")
	h.node("n1").Seen(t0.Add(100 * time.Second).UnixNano())
	h.sweep(t0.Add(100 * time.Second))
	if out := h.takeOut(); len(out) > 0 {
		t.Fatalf("50 s after the request's end: %q", out)
	}
	h.node("n1").Seen(t0.Add(200 * time.Second).UnixNano())
	h.sweep(t0.Add(200 * time.Second))
	if out := string(h.takeOut()); !strings.HasPrefix(out, "HTTP/1.1 504 ") {
		t.Fatalf("a whole request unanswered got %q, want a 504", out)
	}

	q := newH2qHarness(t, nil)
	t0 = time.Now()
	q.open(1, "POST", "a", false)
	q.data(1, 100)
	q.h.node("n1").Seen(t0.Add(50 * time.Second).UnixNano())
	q.h.sweep(t0.Add(50 * time.Second))
	_ = q.fr.WriteData(1, true, nil)
	q.send()
	q.h.node("n1").Seen(t0.Add(100 * time.Second).UnixNano())
	q.h.sweep(t0.Add(100 * time.Second))
	if s := q.status(1); s != "" {
		t.Fatalf("HTTP/2, 50 s after END_STREAM: %s", s)
	}
	q.h.node("n1").Seen(t0.Add(200 * time.Second).UnixNano())
	q.h.sweep(t0.Add(200 * time.Second))
	if s := q.status(1); s != "504" {
		t.Fatalf("HTTP/2, a whole request unanswered: %q, want 504", s)
	}
}

// TestDiscardedBodyBounded: the body of a request the proxy answered
// itself (here a 404) is read and dropped up to the global max-body;
// past it the connection closes after the answer. Before, it was read
// for as long as the client sent.
func TestDiscardedBodyBounded(t *testing.T) {
	o := testOptions()
	o.MaxBody = 100
	o.VHosts[0].Name = "a"
	h := newHarness(t, o)
	h.client("POST / HTTP/1.1\r\nHost: zzz\r\nTransfer-Encoding: chunked\r\n\r\n")
	if out := string(h.takeOut()); !strings.HasPrefix(out, "HTTP/1.1 404 ") {
		t.Fatalf("got %q, want the 404", out)
	}
	h.client("50\r\n" + strings.Repeat("x", 0x50) + "\r\n")
	if h.c.closeAfter {
		t.Fatal("closing under max-body")
	}
	h.client("50\r\n" + strings.Repeat("x", 0x50) + "\r\n")
	if !h.c.closeAfter {
		t.Fatal("a dropped body past max-body keeps the connection")
	}
}
