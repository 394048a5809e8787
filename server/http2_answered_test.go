package server

import (
	"slices"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/zmqbridge"
)

// Streams the proxy answered itself (504 here) while its client keeps
// the stream open. The response's body waits for window (the client's
// initial window is 0), so the stream lives on; what the node does
// meanwhile must not touch it. Found by a review of e4b6649; each test
// failed before.

// deliver hands the proxy a message of node about the stream id.
func (q *h2qClient) deliver(node string, id uint32, typ, body string) {
	st := q.h.c.h2.streams[id]
	if st == nil {
		q.h.t.Fatalf("stream %d is closed", id)
	}
	q.h.s.handlers[0].Deliver([]byte(node), st.sid[:], []byte(typ), []byte(body), nil)
	q.h.s.handlers[0].Flush()
	q.h.settle()
}

// pastTimeout runs the sweep past the vhosts' timeout (60 s): streams
// still awaiting their node's head are answered 504.
func (q *h2qClient) pastTimeout() { q.h.sweep(time.Now().Add(2 * time.Minute)) }

// postClosedWindow opens stream 1, a POST to node n1 with n body bytes so
// far, on a client whose windows are 0: an answer of the proxy's own then
// waits for window, and the stream stays open.
func postClosedWindow(t *testing.T, n int) (*h2qClient, *h2Stream) {
	q := newH2qHarness(t, nil, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	q.open(1, "POST", "a", false)
	q.data(1, n)
	return q, q.h.c.h2.streams[1]
}

// heads counts the HEADERS frames for stream id among what the proxy
// wrote since the last call, and reports whether it reset the stream.
func (q *h2qClient) heads(id uint32) (heads int, reset bool) {
	q.readOut(func(f http2.Frame) {
		if f.Header().StreamID != id {
			return
		}
		switch f.(type) {
		case *http2.HeadersFrame:
			heads++
		case *http2.RSTStreamFrame:
			reset = true
		}
	})
	return heads, reset
}

// A WebSocket whose node answers the handshake, answered 504 by the
// proxy: the node's late 101 must not add a second head to the stream
// (before, a 200 HEADERS followed the 504's: a malformed response).
func TestH2AnsweredWebSocketIgnoresNode(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.VHosts[0].WebSocketHandshake = "node" },
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	q.openWS(1, "a")
	q.pastTimeout() // the node did not answer in time: 504
	if n, _ := q.heads(1); n != 1 {
		t.Fatalf("%d heads for the 504, want 1", n)
	}
	q.deliver("n1", 1, "headers", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	q.deliver("n1", 1, "end", "")
	if n, reset := q.heads(1); n != 0 || reset {
		t.Errorf("after the node's late 101 and end: %d more heads, reset %v; want none", n, reset)
	}
}

// After its 504 the stream keeps no retry pieces: up to retry-buffer of
// pooled buffers, per stream, for as long as the client kept it open.
func TestH2AnsweredStreamDropsRetry(t *testing.T) {
	q, st := postClosedWindow(t, 30000)
	if st.retryBytes == 0 {
		t.Fatal("no retry pieces kept for the body")
	}
	q.pastTimeout()
	if st := q.h.c.h2.streams[1]; st == nil || st.retryBytes != 0 {
		t.Errorf("after the 504 the stream keeps %d bytes to retry, want 0 (open: %v)", st.retryBytes, st != nil)
	}
}

// A send failure the bridge reports after the 504 (for the body already
// on the ring) must not reset the stream and lose the 504.
func TestH2AnsweredStreamIgnoresUndeliverable(t *testing.T) {
	q, st := postClosedWindow(t, 1000)
	h := q.h
	q.pastTimeout()
	q.heads(1)
	m := zmqbridge.Msg{Node: h.node("n1").Index, SID: st.sid, Type: "body", Tag: st.reqSeq}
	h.s.handlers[0].Undeliverable(&m, nil)
	h.settle()
	if _, reset := q.heads(1); reset || h.c.h2.streams[1] == nil {
		t.Errorf("the answered stream was reset by a late send failure")
	}
}

// Trailers with END_STREAM end a request of unknown length for the node
// (the empty body), as END_STREAM on DATA does; before, a node told
// "chunked" waited for it until the 504.
func TestH2TrailersEndTheBody(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	q.open(1, "POST", "a", false)
	q.data(1, 100)
	sid := h.c.h2.streams[1].sid
	h.ring.take()
	q.hb.Reset()
	_ = q.enc.WriteField(hpack.HeaderField{Name: "x-checksum", Value: "abc"})
	_ = q.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: q.hb.Bytes(), EndStream: true, EndHeaders: true})
	q.send()
	if got := sentFor(h, h.node("n1").Index, sid); !slices.Equal(got, []string{"body"}) {
		t.Errorf("after the trailers node n1 got %v, want [body] (the empty one that ends the body)", got)
	}
}

// The client's END_STREAM on a WebSocket ends ours: the stream closes
// with our END_STREAM, and no RST_STREAM follows it (RFC 9113 §5.1);
// also when that DATA carries the client's close frame, whose echo ends
// our half first.
func TestH2WebSocketEndStreamNoReset(t *testing.T) {
	closeFrame := []byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2} // masked close 1000
	for name, last := range map[string][]byte{"empty": nil, "close frame": closeFrame} {
		t.Run(name, func(t *testing.T) {
			q := newH2qHarness(t, nil)
			h := q.h
			q.openWS(1, "a")
			q.heads(1)
			_ = q.fr.WriteData(1, true, last)
			q.send()
			if _, reset := q.heads(1); reset {
				t.Error("RST_STREAM after the stream's END_STREAM both ways")
			}
			if h.c.h2.streams[1] != nil {
				t.Error("the stream is still open")
			}
		})
	}
}

// What follows the client's close frame in the same DATA is dropped
// while our close frame waits for window: it could never be answered.
// Before, it was kept (and counted against max-read-ahead).
func TestH2WebSocketRestAfterCloseDropped(t *testing.T) {
	q := newH2qHarness(t, nil, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	h := q.h
	q.openWS(1, "a")
	closeFrame := []byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2}
	q.dataBytes(1, append(closeFrame, wsBinaryFrame(1000)[:500]...))
	st := h.c.h2.streams[1]
	if st == nil || !st.endPending {
		t.Fatal("our close frame does not wait for window")
	}
	if len(st.wsIn) != 0 || h.c.h2.wsHeld != 0 {
		t.Errorf("after our close: %d bytes kept, %d counted; want none", len(st.wsIn), h.c.h2.wsHeld)
	}
}

// A WebSocket handshake its node refused (403) is an ordinary response:
// the frames its client sent meanwhile are no request body, and the node
// gets none of them (its environ declared no body).
func TestH2RefusedWebSocketSendsNoBody(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.VHosts[0].WebSocketHandshake = "node" },
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	h := q.h
	q.openWS(1, "a")
	sid := h.c.h2.streams[1].sid
	q.deliver("n1", 1, "headers", "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
	h.ring.take()
	_ = q.fr.WriteData(1, true, []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2})
	q.send()
	if got := sentFor(h, h.node("n1").Index, sid); len(got) != 0 {
		t.Errorf("after the refusal node n1 got %v, want nothing", got)
	}
}

// A WebSocket stream whose close frame waits for window can no longer
// complete what it holds of the client's frames: that goes, and another
// stream the budget held back gets its window.
func TestH2WebSocketClosingLeadLetsOthersGo(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.MaxReadAhead = 4096 },
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	q.openWS(1, "a")
	q.openWS(3, "a")
	q.frames()
	q.dataBytes(1, wsBinaryFrame(100000)[:40000])
	q.dataBytes(3, wsBinaryFrame(100000)[:33000])
	if w := windowFor(q.frames(), 3); w != 0 {
		t.Fatalf("stream 3 got %d bytes of window while stream 1 leads", w)
	}
	q.deliver("n1", 1, "end", "") // the node ends stream 1: its close frame waits for window
	if w := windowFor(q.frames(), 3); w != 33000 {
		t.Errorf("stream 3 got %d bytes of window once stream 1 was closing, want 33000", w)
	}
}

// Room is asked for every node with orphaned ends, not only the first's:
// a healthy node's ends may wait behind a stuck node's.
func TestOrphansAskRoomPerNode(t *testing.T) {
	h := newHarness(t, testOptions())
	l := h.s.loops[0]
	n1, n2 := h.node("n1").Index, h.node("n2").Index
	h.ring.refuse = true
	l.orphan(zmqbridge.Msg{Node: n1, Type: "end"})
	l.orphan(zmqbridge.Msg{Node: n2, Type: "end"})
	h.ring.wanted = nil
	l.retryRoom()
	if !slices.Contains(h.ring.wanted, n2) {
		t.Errorf("Room asked for nodes %v, want %d among them", h.ring.wanted, n2)
	}
}
