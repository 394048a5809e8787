package server

import (
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestH2RetryBufferPerConnection: retry-buffer bounds what all of a
// connection's streams keep for a retry together. Before, each stream
// had its own: a client sending tiny DATA frames (a pooled buffer of at
// least 512 bytes each) on http2-max-streams uploads made the proxy hold
// a hundred times retry-buffer for one connection.
func TestH2RetryBufferPerConnection(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	budget := h.s.opts.RetryBuffer
	for id := uint32(1); id <= 9; id += 2 {
		q.open(id, "POST", "a", false)
	}
	for range 1000 {
		for id := uint32(1); id <= 9; id += 2 {
			_ = q.fr.WriteData(id, false, []byte{'x'})
		}
		q.send() // a read of five one-byte frames
	}
	held, heads := 0, 0
	for _, st := range h.c.h2.streams {
		held += st.retryBytes
		if len(st.retry) > 0 && st.retry[0].buf != nil {
			heads += cap(st.retry[0].buf.B) // each head is kept whatever the others keep
		}
	}
	if held > budget+heads || held != h.c.h2.retryHeld {
		t.Fatalf("the streams keep %d bytes for retry (counted %d), retry-buffer is %d for the connection", held, h.c.h2.retryHeld, budget)
	}
}

// TestH2CreditWindowShare: an HTTP/2 stream's credit window is its share
// of max-pending-output among http2-max-streams streams (at least 16 KiB,
// at most credit-window). Before, each had the whole credit-window: a
// client that opens every stream with its window closed had its nodes
// send 100 × 256 KiB for it, which no limit counted.
func TestH2CreditWindowShare(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	h.node("n1").SetCredits(true)
	q.open(1, "GET", "a", true)
	o := h.s.opts
	want := strconv.Itoa(min(o.CreditWindow, max(o.MaxPendingOutput/o.HTTP2MaxStreams, 16<<10)))
	var got []string
	for _, m := range h.ring.take() {
		if m.Type == "credit" {
			got = append(got, string(m.Body))
		}
	}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("credit sent %q, want one of %s (max-pending-output %d / http2-max-streams %d)", got, want, o.MaxPendingOutput, o.HTTP2MaxStreams)
	}
}

// TestH2PaddedEmptyDataCounted: DATA frames that carry no data count as
// control frames (a flood of them costs the proxy work and the client
// nothing), padded or not. Before, a PADDED frame with no data (Length 1)
// was free.
func TestH2PaddedEmptyDataCounted(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.HTTP2MaxControlFrames = 50 })
	q.open(1, "POST", "a", false)
	for range 60 {
		_ = q.fr.WriteDataPadded(1, false, nil, []byte{})
	}
	q.send()
	var goaway *http2.GoAwayFrame
	for _, f := range q.frames() {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			goaway = g
		}
	}
	if goaway == nil || goaway.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("60 padded empty DATA frames over a limit of 50: GOAWAY %v, want ENHANCE_YOUR_CALM", goaway)
	}
}

// goAwayCode returns the error code of the GOAWAY the proxy wrote since
// the last read, or -1.
func (q *h2qClient) goAwayCode() http2.ErrCode {
	code := http2.ErrCode(1<<32 - 1)
	for _, f := range q.frames() {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			code = g.ErrCode
		}
	}
	return code
}

// TestH2AbandonedRequests: a connection may reset a burst of
// http2-max-streams requests its node is working on, and a quarter of
// that a sweep after; past it, it gets GOAWAY ENHANCE_YOUR_CALM ("Rapid
// Reset", CVE-2023-44487). Before, only the resets' rate counted
// (http2-max-resets a sweep): one connection kept its nodes busy with
// 800 requests a second that nobody awaited, for good.
func TestH2AbandonedRequests(t *testing.T) {
	q := newH2qHarness(t, nil)
	max := q.h.s.opts.HTTP2MaxStreams
	id := uint32(1)
	abandon := func(n int) {
		for range n {
			q.open(id, "GET", "a", true)
			_ = q.fr.WriteRSTStream(id, http2.ErrCodeCancel)
			q.send()
			id += 2
		}
	}
	abandon(max)
	if code := q.goAwayCode(); code != 1<<32-1 {
		t.Fatalf("GOAWAY %v after a burst of http2-max-streams", code)
	}
	q.h.sweep(time.Now())
	abandon(max / 4) // the sweep's allowance
	if code := q.goAwayCode(); code != 1<<32-1 {
		t.Fatalf("GOAWAY %v within a sweep's allowance", code)
	}
	abandon(1)
	if code := q.goAwayCode(); code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("one past the allowance: GOAWAY %v, want ENHANCE_YOUR_CALM", code)
	}

	// Streams the proxy resets for the client's errors count alike (here
	// a PRIORITY that makes the stream depend on itself).
	q = newH2qHarness(t, nil)
	for i := range uint32(max + 1) {
		q.open(2*i+1, "GET", "a", true)
		_ = q.fr.WritePriority(2*i+1, http2.PriorityParam{StreamDep: 2*i + 1})
		q.send()
	}
	if code := q.goAwayCode(); code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("%d requests reset for the client's errors: GOAWAY %v, want ENHANCE_YOUR_CALM", max+1, code)
	}
}

// TestCreditOverdraftRepaid: a node that sent one WebSocket message over
// its credit (node/credit.go lets it, rather than split a message) gets
// the overdraft back with the next grant: before, a grant only topped up
// from zero, and the node, owing what it overdrew, waited for credit for
// good.
func TestCreditOverdraftRepaid(t *testing.T) {
	h := newHarness(t, testOptions())
	h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	h.ring.take()
	w := int64(h.s.opts.CreditWindow)
	h.c.creditOn, h.c.credit = true, -16000
	h.c.maybeGrant()
	var got []string
	for _, m := range h.ring.take() {
		if m.Type == "credit" {
			got = append(got, string(m.Body))
		}
	}
	if want := strconv.FormatInt(w+16000, 10); len(got) != 1 || got[0] != want {
		t.Fatalf("grant %q after an overdraft of 16000, want %s", got, want)
	}

	q := newH2qHarness(t, nil)
	q.h.node("n1").SetCredits(true)
	q.open(1, "GET", "a", true)
	q.h.ring.take()
	st := q.h.c.h2.streams[1]
	st.credit = -16000
	q.h.c.h2MaybeGrant(st)
	got = got[:0]
	for _, m := range q.h.ring.take() {
		if m.Type == "credit" {
			got = append(got, string(m.Body))
		}
	}
	if want := strconv.FormatInt(q.h.c.h2CreditWindow()+16000, 10); len(got) != 1 || got[0] != want {
		t.Fatalf("HTTP/2: grant %q after an overdraft of 16000, want %s", got, want)
	}
}

// TestH2AbandonedWebSockets: WebSocket streams the proxy accepts
// (websocket-handshake = proxy) that the client closes before their node
// sent anything, by END_STREAM or RST_STREAM, count as abandoned
// requests do: past the budget the connection gets ENHANCE_YOUR_CALM.
// Before, the 200 put them past phAwaitHead and neither way counted: a
// client opened and closed node sessions at its line rate. One the node
// answered is not abandoned.
func TestH2AbandonedWebSockets(t *testing.T) {
	for _, how := range []string{"END_STREAM", "RST_STREAM"} {
		t.Run(how, func(t *testing.T) {
			q := newH2qHarness(t, nil)
			max := q.h.s.opts.HTTP2MaxStreams
			for i := range uint32(max + 1) {
				id := 2*i + 1
				q.openWS(id, "a")
				if how == "END_STREAM" {
					_ = q.fr.WriteData(id, true, nil)
				} else {
					_ = q.fr.WriteRSTStream(id, http2.ErrCodeCancel)
				}
				q.send()
			}
			if code := q.goAwayCode(); code != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("%d WebSockets closed before their node spoke: GOAWAY %v, want ENHANCE_YOUR_CALM", max+1, code)
			}
		})
	}
	q := newH2qHarness(t, nil)
	max := q.h.s.opts.HTTP2MaxStreams
	for i := range uint32(max + 1) {
		id := 2*i + 1
		q.openWS(id, "a")
		q.deliver("n1", id, "websocket", "hello")
		_ = q.fr.WriteData(id, true, nil)
		q.send()
	}
	if code := q.goAwayCode(); code != 1<<32-1 {
		t.Fatalf("WebSockets their node answered: GOAWAY %v", code)
	}
}
