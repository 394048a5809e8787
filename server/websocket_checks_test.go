package server

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestWebSocketNodeTextNotUTF8: a node's text message that is not UTF-8
// is not sent on as a text frame (the client would have to fail the
// connection and blame the proxy, RFC 6455 §8.1): the WebSocket closes
// with 1011, and it counts as a bad message. Valid text passes.
func TestWebSocketNodeTextNotUTF8(t *testing.T) {
	h := wsUpgraded(t)
	h.reply("n1", "websocket", "héllo")
	if out := h.takeOut(); !bytes.Equal(out, append([]byte{0x81, 6}, "héllo"...)) {
		t.Fatalf("valid text: client got %q", out)
	}
	h.reply("n1", "websocket-binary", "\xff\xfe") // binary: any bytes
	if out := h.takeOut(); !bytes.Equal(out, []byte{0x82, 2, 0xff, 0xfe}) {
		t.Fatalf("binary: client got %q", out)
	}
	before := h.s.stats.BadMessage.Load()
	h.reply("n1", "websocket", "ok \xff\xfe")
	out := h.takeOut()
	if len(out) < 4 || out[0] != 0x88 || out[2] != 0x03 || out[3] != 0xF3 {
		t.Fatalf("invalid UTF-8 text: client got %q, want a close frame with 1011", out)
	}
	if !h.fc.closed {
		t.Error("the connection stayed open after the close frame")
	}
	if n := h.s.stats.BadMessage.Load() - before; n != 1 {
		t.Errorf("bad messages counted: %d, want 1", n)
	}
}

// TestH2WebSocketNodeTextNotUTF8 is the same on a WebSocket over HTTP/2.
func TestH2WebSocketNodeTextNotUTF8(t *testing.T) {
	q := newH2qHarness(t, nil)
	q.openWS(1, "a")
	q.frames()
	q.deliver("n1", 1, "websocket", "ok \xff\xfe")
	data := q.dataOn(1)
	if len(data) < 4 || data[0] != 0x88 || data[2] != 0x03 || data[3] != 0xF3 {
		t.Fatalf("invalid UTF-8 text: stream 1 got %q, want a close frame with 1011", data)
	}
	if bytes.Contains(data, []byte("ok \xff")) {
		t.Fatal("the invalid text was sent on")
	}
}

// TestWebSocketContinuationTooBigEarly: a continuation frame whose header
// takes the message past max-websocket-message fails the connection with
// 1009 at its header, before its payload is held; before, the proxy
// buffered the whole frame (up to another max-websocket-message) first.
func TestWebSocketContinuationTooBigEarly(t *testing.T) {
	o := testOptions()
	o.MaxWebSocketMessage = 1000
	h := newHarness(t, o)
	h.client("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	h.takeOut()
	// 600 bytes, no FIN (126: 16-bit length; mask 0).
	first := append([]byte{0x01, 0x80 | 126, 0x02, 0x58, 0, 0, 0, 0}, bytes.Repeat([]byte("a"), 600)...)
	h.client(string(first))
	if out := h.takeOut(); len(out) != 0 {
		t.Fatalf("after the first fragment: client got %q", out)
	}
	// A continuation of 600 more, FIN: only its header and a few bytes.
	h.client(string([]byte{0x80, 0x80 | 126, 0x02, 0x58, 0, 0, 0, 0, 'b', 'b'}))
	out := h.takeOut()
	if len(out) < 4 || out[0] != 0x88 || out[2] != 0x03 || out[3] != 0xF1 {
		t.Fatalf("continuation past max-websocket-message: client got %q, want a close frame with 1009 at once", out)
	}
}

// TestNodeHandshakeWhileDraining: a WebSocket its node accepts while the
// server stops gets its 101 and then close 1001 at once; the drain's
// close had passed it by (still awaiting its node), and it stayed open
// until shutdown-grace cut it.
func TestNodeHandshakeWhileDraining(t *testing.T) {
	o := testOptions()
	o.VHosts[0].WebSocketHandshake = "node"
	h := newHarness(t, o)
	h.client("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	h.s.draining.Store(true)
	h.reply("n1", "headers", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	out := h.takeOut()
	i := bytes.Index(out, []byte("\r\n\r\n"))
	if !bytes.HasPrefix(out, []byte("HTTP/1.1 101 ")) || i < 0 {
		t.Fatalf("client got %q, want the 101", out)
	}
	if rest := out[i+4:]; len(rest) < 4 || rest[0] != 0x88 || rest[2] != 0x03 || rest[3] != 0xE9 {
		t.Fatalf("after the 101: %q, want a close frame with 1001", rest)
	}
}

// TestH2NodeHandshakeEarlyFrames: over HTTP/2 with websocket-handshake =
// node, frames the client sends before the node accepts reach the node
// once it does, as on HTTP/1.1 (TestNodeHandshakeEarlyFrames); before,
// they were dropped, and a frame split across the acceptance was read
// from its middle. Past a message's worth the stream is reset.
func TestH2NodeHandshakeEarlyFrames(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) {
		o.VHosts[0].WebSocketHandshake = "node"
		o.MaxWebSocketMessage = 1000
	})
	q.openWS(1, "a")
	q.h.ring.take()
	frame := []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2} // masked "hi"
	q.dataBytes(1, append(frame, frame[:3]...))               // one frame and a part of the next
	if got := sentTypes(q.h); len(got) != 0 {
		t.Fatalf("before the node's 101, the node got %q", got)
	}
	q.deliver("n1", 1, "headers", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if got := sentTypes(q.h); strings.Join(got, " ") != "websocket:hi" {
		t.Fatalf("after the node's 101, the node got %q, want the early frame", got)
	}
	q.dataBytes(1, frame[3:]) // the rest of the split frame
	if got := sentTypes(q.h); strings.Join(got, " ") != "websocket:hi" {
		t.Fatalf("the frame split across the acceptance: node got %q", got)
	}

	q.openWS(3, "a")
	q.h.ring.take()
	q.frames()
	q.dataBytes(3, make([]byte, q.h.s.opts.MaxWebSocketMessage+wsHeaderPeek+1))
	if _, reset := q.heads(3); !reset {
		t.Fatal("more than a message's worth before the node's answer: stream 3 not reset")
	}
}

// TestH2NodeHandshakeEarlyFramesWindow: what a client sends on a
// WebSocket stream before its node answers is held to one window (the
// stream's WINDOW_UPDATE waits), reaches the node once it accepts, and
// the window then goes back; the proxy's own answer (504) drops it.
func TestH2NodeHandshakeEarlyFramesWindow(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.VHosts[0].WebSocketHandshake = "node" })
	q.openWS(1, "a")
	q.h.ring.take()
	q.frames()
	frame := append([]byte{0x82, 0x80 | 126, 1000 >> 8, 1000 & 0xff, 0, 0, 0, 0}, make([]byte, 1000)...) // masked, mask 0
	var early []byte
	for range 40 {
		early = append(early, frame...)
	}
	q.dataBytes(1, early)
	if w := windowFor(q.frames(), 1); w != 0 {
		t.Fatalf("stream 1 got %d bytes of window back before its node answered, want none", w)
	}
	q.deliver("n1", 1, "headers", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if got := sentTypes(q.h); len(got) != 40 {
		t.Fatalf("after the 101 the node got %d messages, want the 40 early ones", len(got))
	}
	if w := windowFor(q.frames(), 1); w == 0 {
		t.Fatal("stream 1's window did not go back once its frames were read")
	}

	q.openWS(3, "a")
	q.h.ring.take()
	q.dataBytes(3, frame[:500]) // part of a frame
	if q.h.c.h2.wsHeld == 0 {
		t.Fatal("nothing held for stream 3's early bytes")
	}
	q.pastTimeout() // the node never answers: 504
	if st := q.h.c.h2.streams[3]; st != nil && (st.wsHeld != 0 || st.wsIn != nil) || q.h.c.h2.wsHeld != 0 {
		t.Fatalf("after the 504, %d bytes held on the connection", q.h.c.h2.wsHeld)
	}
}

// TestWebSocketProxyCloseEndsSessionAtOnce: a WebSocket the proxy closes
// (here for a client's protocol violation) ends its node session at once,
// not when the connection, lingering for the client's close frame, is
// gone (up to lingering-time later); the node hears `end` once.
func TestWebSocketProxyCloseEndsSessionAtOnce(t *testing.T) {
	h := wsUpgraded(t)
	h.fc.outbound = 1 << 20                        // a client slow to read: the close frame waits
	h.client(string([]byte{0x81, 0x02, 'h', 'i'})) // unmasked: 1002
	if out := h.takeOut(); len(out) < 4 || out[0] != 0x88 || out[3] != 0xEA {
		t.Fatalf("client got %q, want a close frame with 1002", out)
	}
	if h.fc.closed {
		t.Fatal("closed while its output waits: the test shows nothing")
	}
	if got := sentTypes(h); strings.Join(got, " ") != "end:" {
		t.Fatalf("after the proxy's close frame the node got %q, want its end at once", got)
	}
	h.fc.outbound = 0
	h.sweep(time.Now().Add(time.Hour)) // stall-timeout or lingering over: the connection goes
	if !h.fc.closed {
		t.Fatal("the connection never closed")
	}
	if got := sentTypes(h); len(got) != 0 {
		t.Fatalf("at the connection's close the node got %q more, want nothing", got)
	}
}

// TestH2NodeHandshakeWindowAfterAccept: a stream whose early bytes took
// its whole window before its node answered (a frame bigger than the
// window, partly sent) gets its window back once the node accepts, even
// when what it holds did not change size; it stayed closed, and the frame
// could never complete.
func TestH2NodeHandshakeWindowAfterAccept(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.VHosts[0].WebSocketHandshake = "node" })
	q.openWS(1, "a")
	q.h.ring.take()
	q.frames()
	// A 100,000-byte binary frame (64-bit length, masked, mask 0): its
	// first 65,535 bytes fill the stream's window.
	head := []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x01, 0x86, 0xA0, 0, 0, 0, 0}
	early := append(head, make([]byte, 65535-len(head))...)
	for len(early) > 0 { // in DATA frames of 8 KiB, a read each
		k := min(len(early), 8192)
		_ = q.fr.WriteData(1, false, early[:k])
		q.send()
		early = early[k:]
	}
	if w := windowFor(q.frames(), 1); w != 0 {
		t.Fatalf("window given back before the node answered: %d", w)
	}
	q.deliver("n1", 1, "headers", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if w := windowFor(q.frames(), 1); w == 0 {
		t.Fatal("after the node's 101, stream 1's window stayed closed: its frame can never complete")
	}
}
