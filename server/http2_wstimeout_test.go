package server

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// dataOn returns the DATA the proxy sent on stream id since the last read.
func (q *h2qClient) dataOn(id uint32) (data []byte) {
	q.readOut(func(f http2.Frame) {
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == id {
			data = append(data, d.Data()...)
		}
	})
	return data
}

// wsCloseOn returns the close code of the WebSocket close frame the proxy
// sent on stream id since the last read (0: none).
func (q *h2qClient) wsCloseOn(id uint32) (code int) {
	q.readOut(func(f http2.Frame) {
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == id {
			b := d.Data()
			if i := bytes.IndexByte(b, 0x88); i >= 0 && len(b) >= i+4 {
				code = int(b[i+2])<<8 | int(b[i+3])
			}
		}
	})
	return code
}

// TestH2WebSocketMessageTimeout: over HTTP/2 too, a client that began a
// WebSocket message and did not complete it in websocket-message-timeout
// is closed with 1008, pings meanwhile or not. Before, nothing bounded
// it over HTTP/2: what the stream held stayed for the connection's life.
func TestH2WebSocketMessageTimeout(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	q.openWS(1, "a")
	q.frames()
	h.ring.take()
	q.dataBytes(1, []byte{0x02, 0x83, 0, 0, 0, 0, 'a', 'b', 'c'}) // a first fragment
	ping := []byte{0x89, 0x80, 0, 0, 0, 0}
	now := time.Unix(0, h.s.now())
	step := h.s.opts.WebSocketMessageTimeout / 3
	for i := 0; i < 4; i++ {
		now = now.Add(step)
		h.node("n1").Seen(now.UnixNano())
		h.sweep(now)
		q.dataBytes(1, ping)
	}
	if code := q.wsCloseOn(1); code != 1008 {
		t.Fatalf("close code %d, want 1008 (message not completed in time)", code)
	}
}

// TestH2WebSocketMessageTimeoutHeldBack: a stream whose window is held
// back (another stream of the connection goes first, past
// max-read-ahead) cannot complete its message: its time counts from when
// it can, so the lead's silence does not close it too.
func TestH2WebSocketMessageTimeoutHeldBack(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.MaxReadAhead = 4096 })
	h := q.h
	q.openWS(1, "a")
	q.openWS(3, "a")
	q.frames()
	h.ring.take()
	q.dataBytes(1, wsBinaryFrame(100000)[:40000]) // the lead
	q.dataBytes(3, wsBinaryFrame(100000)[:33000]) // held back behind it
	if w := windowFor(q.frames(), 3); w != 0 {
		t.Fatalf("stream 3 got %d bytes of window: not held back", w)
	}
	timeout := h.s.opts.WebSocketMessageTimeout
	now := time.Unix(0, h.s.now())
	for _, d := range []time.Duration{timeout / 2, timeout / 2, time.Second} {
		now = now.Add(d)
		h.node("n1").Seen(now.UnixNano())
		h.sweep(now)
	}
	fs := q.frames()
	if h.c.h2.streams[1] != nil && !h.c.h2.streams[1].endSent {
		t.Fatal("the silent lead, past its deadline, was not closed")
	}
	if w := windowFor(fs, 3); w == 0 {
		t.Fatal("stream 3 did not get its window once the lead closed")
	}
	if st := h.c.h2.streams[3]; st == nil || st.endSent || st.endPending {
		t.Fatal("stream 3, held back until now, was closed with the lead")
	}
	// Now it may send: silent for the timeout, it goes too.
	now = now.Add(timeout + time.Second)
	h.node("n1").Seen(now.UnixNano())
	h.sweep(now)
	if code := q.wsCloseOn(3); code != 1008 {
		t.Fatalf("stream 3: close code %d, want 1008 once it could have completed its message", code)
	}
}

// TestH2WebSocketMessageTimeoutWhilePaused: while the connection is not
// read (what waits for a stuck node reached max-read-ahead), a stream
// holding part of a message cannot complete it: its time counts from
// when reading resumes (found by a review of the deadline). The sweeps
// come as the loop runs them, every second here, for three times the
// timeout and well within the stuck request's own (the vhost's 60 s,
// whose 504 would end the pause).
func TestH2WebSocketMessageTimeoutWhilePaused(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) {
		o.MaxReadAhead = 4096
		o.WebSocketMessageTimeout = 10 * time.Second
	})
	h := q.h
	q.openWS(3, "b")
	q.frames()
	h.ring.take()
	q.dataBytes(3, []byte{0x02, 0x83, 0, 0, 0, 0, 'a', 'b', 'c'}) // a first fragment
	h.ring.full[h.node("n1").Index] = true
	q.open(5, "POST", "a", false)
	q.data(5, 16384)
	if !h.fc.paused {
		t.Fatalf("reading did not pause: %d bytes wait, outq %d", h.c.h2.queued, len(h.c.outq))
	}
	now := time.Unix(0, h.s.now())
	for range 30 {
		now = now.Add(time.Second)
		h.node("n1").Seen(now.UnixNano())
		h.node("n2").Seen(now.UnixNano())
		h.sweep(now)
	}
	if !h.fc.paused {
		t.Fatal("the pause ended: the test no longer tests it")
	}
	if code := q.wsCloseOn(3); code != 0 {
		t.Fatalf("stream 3 closed with %d while its connection was not read", code)
	}
}

// TestH2WebSocketEndSurvivesReset: the `end` a WebSocket stream's close
// queued behind its messages for a stuck node still reaches the node
// when the client then resets the stream (the reset drops what waits).
// Found by a review: it was dropped with them, and the node kept the
// session for good.
func TestH2WebSocketEndSurvivesReset(t *testing.T) {
	// Its window closed: the proxy's close frame waits, and the stream
	// stays open for the client's reset.
	q := newH2qHarness(t, nil, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	h := q.h
	q.openWS(1, "a")
	q.frames()
	h.ring.take()
	n1 := h.node("n1").Index
	h.ring.full[n1] = true
	q.dataBytes(1, []byte{0x81, 0x82, 0, 0, 0, 0, 'h', 'i'})   // waits for n1
	q.dataBytes(1, []byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8}) // close: `end` queued behind
	_ = q.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	q.send()
	h.ring.full[n1] = false
	h.s.loops[0].retryRoom()
	var got []string
	for _, m := range h.ring.take() {
		if m.Node == n1 {
			got = append(got, m.Type)
		}
	}
	if len(got) == 0 || got[len(got)-1] != "end" {
		t.Fatalf("node n1 got %v after the reset, want its end", got)
	}

}
