package server

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// openWS opens WebSocket stream id (RFC 8441) for host.
func (q *h2qClient) openWS(id uint32, host string) {
	q.hb.Reset()
	for _, f := range [][2]string{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "http"},
		{":path", "/"}, {":authority", host}, {"sec-websocket-version", "13"}} {
		_ = q.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	_ = q.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: q.hb.Bytes(), EndHeaders: true})
	q.send()
}

// dataBytes sends b on stream id, in DATA frames of at most 16 KiB.
func (q *h2qClient) dataBytes(id uint32, b []byte) {
	for len(b) > 0 {
		k := min(len(b), 16384)
		_ = q.fr.WriteData(id, false, b[:k])
		b = b[k:]
	}
	q.send()
}

// wsBinaryFrame is a masked binary frame of n payload bytes (zeros, mask 0).
func wsBinaryFrame(n int) []byte {
	b := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(b[2:10], uint64(n))
	return append(b, make([]byte, n)...)
}

// WebSocket streams of one connection hold partial frames (and
// messages) until whole. Past max-read-ahead held in all, only the
// stream holding the most gets its window back; the others wait until it
// completed its message. Before, every stream got its window as it read,
// and one connection could hold max-websocket-message on each stream.
func TestH2WebSocketHeldBudget(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(map[bool]string{false: "completed", true: "reset"}[reset], func(t *testing.T) {
			testH2WebSocketHeldBudget(t, reset)
		})
	}
}

// testH2WebSocketHeldBudget: the stream others wait for completes its
// message, or (reset) is reset by its client.
func testH2WebSocketHeldBudget(t *testing.T, reset bool) {
	q := newH2qHarness(t, func(o *Options) { o.MaxReadAhead = 4096 })
	h := q.h
	q.openWS(1, "a")
	q.openWS(3, "a")
	if h.c.h2.streams[1] == nil || h.c.h2.streams[3] == nil {
		t.Fatal("the WebSocket streams did not open")
	}
	q.frames()
	h.ring.take()
	one, three := wsBinaryFrame(100000), wsBinaryFrame(100000)
	q.dataBytes(1, one[:40000])
	if w := windowFor(q.frames(), 1); w != 32768 { // at half its window: its first two frames
		t.Fatalf("stream 1, holding the most, got %d bytes of window back, want 32768", w)
	}
	q.dataBytes(3, three[:33000])
	if w := windowFor(q.frames(), 3); w != 0 {
		t.Fatalf("stream 3 got %d bytes of window back while the connection holds %d of partial frames (max-read-ahead 4k)", w, h.c.h2.wsHeld)
	}
	if reset {
		_ = q.fr.WriteRSTStream(1, http2.ErrCodeCancel)
		q.send()
	} else {
		q.dataBytes(1, one[40000:]) // stream 1's frame is whole: it goes, and stream 3 may go on
		msgs := 0
		for _, m := range h.ring.take() {
			if m.Type == "websocket-binary" && len(m.Body) == 100000 {
				msgs++
			}
		}
		if msgs != 1 {
			t.Fatalf("%d messages reached the node, want stream 1's", msgs)
		}
	}
	if w := windowFor(q.frames(), 3); w != 33000 {
		t.Errorf("once stream 1 was done (reset: %v), stream 3 got %d bytes of window back, want 33000", reset, w)
	}
	q.dataBytes(3, three[33000:])
	if h.c.h2.wsHeld != 0 {
		t.Errorf("the connection still counts %d bytes held after both messages went", h.c.h2.wsHeld)
	}
}

// The stream let go first must be one that can complete its message: not
// one whose messages wait for a stuck node. Here stream 1 (node n1,
// stuck) holds the most, and stream 3 (node n2) still gets its window.
func TestH2WebSocketLeadCanMove(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.MaxReadAhead = 4096 })
	h := q.h
	q.openWS(1, "a")
	q.openWS(3, "b")
	q.frames()
	h.ring.take()
	h.ring.full[h.node("n1").Index] = true
	small := []byte{0x82, 0x81, 0, 0, 0, 0, 'x'} // a whole message: it waits for n1
	q.dataBytes(1, append(small, wsBinaryFrame(100000)[:40000]...))
	if st := h.c.h2.streams[1]; st == nil || st.waiting == 0 {
		t.Fatal("stream 1's message does not wait for its stuck node")
	}
	q.dataBytes(3, wsBinaryFrame(100000)[:33000])
	if w := windowFor(q.frames(), 3); w != 32768 {
		t.Errorf("stream 3 got %d bytes of window back, want 32768: held behind a stream whose node is stuck", w)
	}
}
