package server

import (
	"testing"

	"golang.org/x/net/http2"
)

// TestH2WebSocketPongsCounted: the pongs the proxy owes a client that
// reads nothing count against max-pending-output, whatever the stream's
// node speaks. Before, a credit-speaking node's WebSocket streams were
// left out of the connection's count (credit bounds the node's output,
// not the proxy's pongs): a client with its window closed could make one
// connection hold up to max-pending-output of pongs on every stream.
func TestH2WebSocketPongsCounted(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.MaxPendingOutput = 64 << 10 },
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	h := q.h
	h.node("n1").SetCredits(true)
	ping := append([]byte{0x89, 0x80 | 125, 0, 0, 0, 0}, make([]byte, 125)...)
	var pings []byte
	for len(pings) < 30<<10 { // under max-pending-output on each stream
		pings = append(pings, ping...)
	}
	for _, id := range []uint32{1, 3, 5} {
		q.openWS(id, "a")
	}
	q.frames()
	h.ring.take()
	for _, id := range []uint32{1, 3, 5} {
		q.dataBytes(id, pings)
	}
	var resets int
	q.readOut(func(f http2.Frame) {
		if r, ok := f.(*http2.RSTStreamFrame); ok && r.ErrCode == http2.ErrCodeFlowControl {
			resets++
		}
	})
	if resets == 0 {
		t.Fatalf("no stream reset with %d bytes of pongs held on the connection (max-pending-output 64k)", h.c.h2.held)
	}
}
