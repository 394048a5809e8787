package server

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/config"
)

// h2qClient writes HTTP/2 frames into the harness and reads the proxy's.
type h2qClient struct {
	h   *harness
	buf bytes.Buffer
	fr  *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
}

// newH2qHarness is a harness with vhost a on node n1 and vhost b on node
// n2, both alive, and an HTTP/2 client past its preface, which sent
// settings. Its windows are HTTP/2's own, 65535 bytes (the tests' window
// arithmetic counts in those), unless tune says otherwise.
func newH2qHarness(t *testing.T, tune func(*Options), settings ...http2.Setting) *h2qClient {
	o := testOptions()
	o.VHosts = []config.VHost{{Name: "a", Nodes: []string{"n1"}}, {Name: "b", Nodes: []string{"n2"}}}
	o.HTTP2StreamWindow, o.HTTP2ConnectionWindow = 65535, 65535
	if tune != nil {
		tune(&o)
	}
	h := newHarness(t, o)
	h.node("n2").Seen(h.s.now())
	q := newH2qClient(h, settings...)
	h.ring.take()
	h.takeOut()
	return q
}

// newH2qClient makes h's connection an HTTP/2 one: the client's preface
// and settings, sent.
func newH2qClient(h *harness, settings ...http2.Setting) *h2qClient {
	q := &h2qClient{h: h}
	q.fr = http2.NewFramer(&q.buf, nil)
	q.enc = hpack.NewEncoder(&q.hb)
	q.buf.WriteString(http2.ClientPreface)
	_ = q.fr.WriteSettings(settings...)
	q.send()
	return q
}

// send hands what was framed to the proxy.
func (q *h2qClient) send() {
	q.h.client(q.buf.String())
	q.buf.Reset()
}

// open starts stream id for host; end: it has no body.
func (q *h2qClient) open(id uint32, method, host string, end bool) {
	q.hb.Reset()
	for _, f := range [][2]string{{":method", method}, {":scheme", "http"}, {":path", "/"}, {":authority", host}} {
		_ = q.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	_ = q.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: q.hb.Bytes(), EndStream: end, EndHeaders: true})
	q.send()
}

// data sends n bytes on stream id, in frames of at most 16 KiB.
func (q *h2qClient) data(id uint32, n int) {
	for n > 0 {
		k := min(n, 16384)
		_ = q.fr.WriteData(id, false, make([]byte, k))
		n -= k
	}
	q.send()
}

// frames parses what the proxy wrote since the last call.
// Only their headers and fields stay readable: the framer reuses the
// payloads (readOut hands them over while they are valid).
func (q *h2qClient) frames() []http2.Frame {
	var out []http2.Frame
	q.readOut(func(f http2.Frame) { out = append(out, f) })
	return out
}

// readOut hands fn each frame the proxy wrote since the last call, while
// its payload is valid.
func (q *h2qClient) readOut(fn func(http2.Frame)) {
	fr := http2.NewFramer(nil, bytes.NewReader(q.h.takeOut()))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		fn(f)
	}
}

// windowFor adds up the WINDOW_UPDATEs for stream id among fs.
func windowFor(fs []http2.Frame, id uint32) (n uint32) {
	for _, f := range fs {
		if w, ok := f.(*http2.WindowUpdateFrame); ok && w.StreamID == id {
			n += w.Increment
		}
	}
	return n
}

// A stream whose node is stuck holds up only itself: the connection is
// still read, a stream for another node reaches it, the stuck stream's
// window is withheld while its body waits and given back once it went.
func TestH2StuckStreamLeavesOthers(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	n1, n2 := h.node("n1").Index, h.node("n2").Index
	q.open(1, "POST", "a", false)
	h.ring.full[n1] = true
	q.data(1, 40000) // past half a window: its WINDOW_UPDATE would be due
	if len(h.c.outq) == 0 {
		t.Fatal("stream 1's body did not wait for its stuck node")
	}
	if h.fc.paused {
		t.Fatal("the connection stopped being read for one stream's stuck node")
	}
	if w := windowFor(q.frames(), 1); w != 0 {
		t.Errorf("stream 1 got %d bytes of window while its body waits, want none", w)
	}
	q.open(3, "GET", "b", true)
	heads := 0
	for _, m := range h.ring.take() {
		if m.Node == n2 && m.Type == "uwsgi" {
			heads++
		}
	}
	if heads != 1 {
		t.Fatalf("node n2 got %d request heads, want stream 3's", heads)
	}

	h.ring.full[n1] = false
	h.s.loops[0].retryRoom()
	var body int
	for _, m := range h.ring.take() {
		if m.Node == n1 && m.Type == "body" {
			body += len(m.Body)
		}
	}
	if body != 40000 || len(h.c.outq) != 0 {
		t.Errorf("after the node moved: %d body bytes sent, %d messages wait; want 40000, 0", body, len(h.c.outq))
	}
	if w := windowFor(q.frames(), 1); w != 40000 {
		t.Errorf("stream 1 got %d bytes of window back once its body went, want 40000", w)
	}
}

// A client that sends past a withheld window breaks flow control: the
// stream is reset FLOW_CONTROL_ERROR, and what it held is dropped.
func TestH2WithheldWindowEnforced(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	q.open(1, "POST", "a", false)
	h.ring.full[h.node("n1").Index] = true
	q.data(1, 65535)
	if fs := q.frames(); windowFor(fs, 1) != 0 {
		t.Fatalf("stream 1 got window while its body waits")
	}
	q.data(1, 1)
	var reset *http2.RSTStreamFrame
	fs := q.frames()
	for _, f := range fs {
		if r, ok := f.(*http2.RSTStreamFrame); ok && r.StreamID == 1 {
			reset = r
		}
	}
	if reset == nil || reset.ErrCode != http2.ErrCodeFlowControl {
		t.Fatalf("one byte past the window: reset %v, want RST_STREAM FLOW_CONTROL_ERROR", reset)
	}
	if w := windowFor(fs, 1); w != 0 {
		t.Errorf("a WINDOW_UPDATE of %d followed the stream's RST_STREAM (RFC 9113 §5.1: the client must treat it as an error)", w)
	}
	for _, m := range h.c.outq {
		if m.Type == "body" {
			t.Fatalf("the reset stream's body still waits in outq")
		}
	}
}

// What waits for stuck nodes is bounded per connection by max-read-ahead:
// past it, reading pauses; it resumes once the messages went.
func TestH2QueuedInputCapped(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.MaxReadAhead = 64 << 10 })
	h := q.h
	h.ring.full[h.node("n1").Index] = true
	for id := uint32(1); id <= 7; id += 2 {
		q.open(id, "POST", "a", false)
		q.data(id, 16384)
		if h.fc.paused {
			if id < 7 {
				t.Fatalf("paused after stream %d, before 64 KiB waited", id)
			}
			break
		}
	}
	if !h.fc.paused {
		t.Fatalf("reading did not pause with %d bytes waiting (max-read-ahead 64k)", h.c.h2.queued)
	}
	h.ring.full[h.node("n1").Index] = false
	h.s.loops[0].retryRoom()
	if h.fc.paused || len(h.c.outq) != 0 {
		t.Fatalf("after the node moved: paused %v, %d messages wait", h.fc.paused, len(h.c.outq))
	}
}

// A message that waits for the ring itself (the bridge is behind) still
// pauses reading at once, as on HTTP/1.1.
func TestH2RingFullPauses(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	h.ring.refuse = true
	q.open(1, "GET", "b", true)
	if len(h.c.outq) == 0 || !h.fc.paused {
		t.Fatalf("ring full: %d messages wait, paused %v; want reading paused", len(h.c.outq), h.fc.paused)
	}
	h.ring.refuse = false
	h.s.loops[0].retryRoom()
	if h.fc.paused || len(h.c.outq) != 0 {
		t.Fatalf("after room: paused %v, %d messages wait", h.fc.paused, len(h.c.outq))
	}
}

// sentFor returns the types of the messages node n got about sid since the
// last take.
func sentFor(h *harness, node int, sid [16]byte) []string {
	var types []string
	for _, m := range h.ring.take() {
		if m.Node == node && m.SID == sid {
			types = append(types, m.Type)
		}
	}
	return types
}

// An `end` the proxy queued for a stuck node when it answered a stream
// itself (504 here) still reaches the node after the stream closed:
// closing it normally, or aborting it (the client's RST_STREAM), must
// not drop it. (Review of 878e4d2: the node never learnt the session
// was over.)
func TestH2QueuedEndSurvivesClose(t *testing.T) {
	for _, abort := range []bool{false, true} {
		t.Run(map[bool]string{false: "closed", true: "reset"}[abort], func(t *testing.T) {
			q := newH2qHarness(t, nil)
			h := q.h
			n1 := h.node("n1").Index
			q.open(1, "POST", "a", false) // the head reaches n1
			sid := h.c.h2.streams[1].sid
			h.ring.take()
			h.ring.full[n1] = true
			q.data(1, 1000) // waits for n1
			q.pastTimeout() // 504
			// What waited is of no use now: dropped, the `end` with the
			// loop, so that answered streams do not fill outq.
			if len(h.c.outq) != 0 {
				t.Errorf("after the 504, %d messages of the answered stream still wait with the connection", len(h.c.outq))
			}
			if !abort {
				_ = q.fr.WriteData(1, true, nil) // the client ends its half: the stream closes normally
			} else {
				_ = q.fr.WriteRSTStream(1, http2.ErrCodeCancel)
			}
			q.send()
			if h.c.h2.streams[1] != nil {
				t.Fatal("stream 1 is still open")
			}
			h.ring.full[n1] = false
			h.s.loops[0].retryRoom()
			got := sentFor(h, n1, sid)
			if len(got) == 0 || got[len(got)-1] != "end" {
				t.Errorf("node n1 got %v for the stream, want its `end` last", got)
			}
		})
	}
}

// The `end`s of streams closed while their node is stuck do not wait in
// the connection's outq (they would fill it, and pause the connection,
// with nothing of theirs left to send): they wait with the loop, and all
// reach the node once it moves. The connection sits once in roomWait.
func TestH2EndsOfClosedStreamsLeaveOutq(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.MaxReadAhead = 4096 })
	h := q.h
	n1 := h.node("n1").Index
	const streams = 50
	for id := uint32(1); id < 2*streams; id += 2 {
		q.open(id, "GET", "a", true)
	}
	h.ring.take()
	h.ring.full[n1] = true
	for id := uint32(1); id < 2*streams; id += 2 {
		_ = q.fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	q.send()
	if len(h.c.outq) != 0 || h.fc.paused {
		t.Fatalf("after %d resets: %d messages wait with the connection, paused %v; want none, reading", streams, len(h.c.outq), h.fc.paused)
	}
	// A stream's body waits, is dropped with its reset, and a second
	// one waits: the connection is listed once.
	q.open(101, "POST", "a", false)
	q.data(101, 100)
	_ = q.fr.WriteRSTStream(101, http2.ErrCodeCancel)
	q.send()
	q.open(103, "POST", "a", false)
	q.data(103, 100)
	if n := len(h.s.loops[0].roomWait); n != 1 {
		t.Errorf("the connection is listed %d times in roomWait, want 1", n)
	}
	h.ring.full[n1] = false
	h.s.loops[0].retryRoom()
	ends := 0
	for _, m := range h.ring.take() {
		if m.Node == n1 && m.Type == "end" {
			ends++
		}
	}
	if ends != streams+1 {
		t.Errorf("node n1 got %d ends, want %d", ends, streams+1)
	}
}

// A WebSocket over HTTP/2 closed in good order (the client's close
// frame) while its messages wait for a stuck node keeps them: they reach
// the node before its `end`, as on HTTP/1.1.
func TestH2WebSocketCloseKeepsQueued(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	n1 := h.node("n1").Index
	q.hb.Reset()
	for _, f := range [][2]string{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "http"},
		{":path", "/"}, {":authority", "a"}, {"sec-websocket-version", "13"}} {
		_ = q.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	_ = q.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: q.hb.Bytes(), EndHeaders: true})
	q.send()
	st := h.c.h2.streams[1]
	if st == nil || !st.ws {
		t.Fatal("the extended CONNECT did not open a WebSocket stream")
	}
	sid := st.sid
	h.ring.take()
	h.ring.full[n1] = true
	text := []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2} // masked "hi"
	close := []byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2}
	_ = q.fr.WriteData(1, false, text)
	_ = q.fr.WriteData(1, false, close)
	q.send()
	h.ring.full[n1] = false
	h.s.loops[0].retryRoom()
	got := sentFor(h, n1, sid)
	if len(got) != 2 || got[0] != "websocket" || got[1] != "end" {
		t.Errorf("node n1 got %v after the close, want [websocket end]", got)
	}
}
