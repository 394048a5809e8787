package server

import (
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestWebSocketRetryCloses: a node's `retry` to a WebSocket the proxy
// accepted (node.Serve sends it while it stops, and forgets the session)
// closes it with 1013, try again later, and the node gets `end`. Before,
// it was counted and dropped: the client's messages went to a node that
// no longer knew the session until that node was declared dead.
func TestWebSocketRetryCloses(t *testing.T) {
	h := wsUpgraded(t)
	h.reply("n1", "retry", "")
	out := h.takeOut()
	if len(out) < 4 || out[0] != 0x88 || int(out[2])<<8|int(out[3]) != 1013 {
		t.Fatalf("client got %q, want a close frame with 1013", out)
	}
	if got := sentTypes(h); len(got) != 1 || got[0] != "end:" {
		t.Fatalf("the node got %v, want [end:]", got)
	}

	q := newH2qHarness(t, nil)
	q.openWS(1, "a")
	q.frames()
	q.h.ring.take()
	q.deliver("n1", 1, "retry", "")
	if code := q.wsCloseOn(1); code != 1013 {
		t.Fatalf("HTTP/2: close code %d, want 1013", code)
	}

	// The node decides the handshake: its `retry` is an answer too
	// (before, the stream waited for the vhost's timeout, then 504).
	q = newH2qHarness(t, func(o *Options) { o.VHosts[0].WebSocketHandshake = "node" })
	q.openWS(1, "a")
	q.frames()
	q.h.ring.take()
	q.deliver("n1", 1, "retry", "")
	var status string
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	q.readOut(func(f http2.Frame) {
		if hf, ok := f.(*http2.HeadersFrame); ok && hf.StreamID == 1 {
			_, _ = dec.Write(hf.HeaderBlockFragment())
		}
	})
	if status != "502" {
		t.Fatalf("HTTP/2, node handshake: status %q after the node's retry, want 502", status)
	}
}

// TestWebSocketClientCloseEndsAtOnce: the client's close frame tells the
// node `end` at once, as the proxy's own close does, even while the
// answering close frame cannot reach a client that does not read (before,
// `end` waited for the connection's or the stream's close: up to
// stall-timeout and lingering-time).
func TestWebSocketClientCloseEndsAtOnce(t *testing.T) {
	closeFrame := []byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8} // 1000, masked with 0
	h := wsUpgraded(t)
	h.fc.outbound = 1 << 20 // it reads nothing
	h.client(string(closeFrame))
	if got := sentTypes(h); len(got) != 1 || got[0] != "end:" {
		t.Fatalf("after the client's close the node got %v, want [end:]", got)
	}

	q := newH2qHarness(t, nil, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	q.openWS(1, "a")
	q.frames()
	q.h.ring.take()
	q.dataBytes(1, closeFrame)
	if st := q.h.c.h2.streams[1]; st == nil || !st.endPending {
		t.Fatal("the answering close frame did not wait for window")
	}
	if got := sentTypes(q.h); len(got) != 1 || got[0] != "end:" {
		t.Fatalf("HTTP/2: after the client's close the node got %v, want [end:]", got)
	}
}
