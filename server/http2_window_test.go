package server

import (
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/config"
)

// TestH2ReceiveWindows: the proxy gives the connection
// http2-connection-window at once (a WINDOW_UPDATE: the connection's
// window starts at 65535 whatever SETTINGS say), and a stream whose
// request body goes to a node http2-stream-window (a WINDOW_UPDATE after
// its HEADERS); it accepts DATA up to them and gives each back once half
// is used. A WebSocket stream, and one without a body, keep HTTP/2's
// 65535. Before, every window was 65535: an upload ran at 64 KiB per
// round trip (1.27 MB/s at 50 ms, measured through a delaying relay,
// against 155 MB/s over HTTP/1.1).
func TestH2ReceiveWindows(t *testing.T) {
	o := testOptions()
	o.VHosts = []config.VHost{{Name: "a", Nodes: []string{"n1"}}}
	def := config.Defaults()
	if def.HTTP2StreamWindow <= 65535 || def.HTTP2ConnectionWindow <= 65535 {
		t.Fatalf("default windows %d, %d: no more than HTTP/2's own", def.HTTP2StreamWindow, def.HTTP2ConnectionWindow)
	}
	h := newHarness(t, o)
	q := &h2qClient{h: h}
	q.fr = http2.NewFramer(&q.buf, nil)
	q.enc = hpack.NewEncoder(&q.hb)
	q.buf.WriteString(http2.ClientPreface)
	_ = q.fr.WriteSettings()
	q.send()
	var connWin uint32
	q.readOut(func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
				t.Errorf("SETTINGS_INITIAL_WINDOW_SIZE %d: WebSocket streams would get it too", v)
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				connWin += f.Increment
			}
		}
	})
	if int(connWin)+65535 != def.HTTP2ConnectionWindow {
		t.Errorf("connection window %d+65535, want http2-connection-window %d", connWin, def.HTTP2ConnectionWindow)
	}
	h.ring.take()

	q.open(1, "GET", "a", true) // no body: no window
	q.openWS(3, "a")            // a WebSocket: HTTP/2's own
	fs := q.frames()
	if w1, w3 := windowFor(fs, 1), windowFor(fs, 3); w1 != 0 || w3 != 0 {
		t.Fatalf("a GET got %d bytes of window, a WebSocket %d: want none", w1, w3)
	}
	h.ring.take()
	// The POST's window: announced after its HEADERS; one stream window
	// in one go, more than 65535.
	q.open(7, "POST", "a", false)
	if w := windowFor(q.frames(), 7); int(w)+65535 != def.HTTP2StreamWindow {
		t.Fatalf("the POST stream got %d+65535 bytes of window, want http2-stream-window %d", w, def.HTTP2StreamWindow)
	}
	h.ring.take()
	n := def.HTTP2StreamWindow
	q.data(7, n)
	var reset bool
	var back uint32
	q.readOut(func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			reset = true
		case *http2.WindowUpdateFrame:
			if f.StreamID == 7 {
				back += f.Increment
			}
		}
	})
	if reset {
		t.Fatalf("a stream sending its window (%d bytes) was reset", n)
	}
	if back < uint32(n/2) {
		t.Fatalf("stream 7 got %d bytes of window back after %d, want at least half", back, n)
	}
	got := 0
	for _, m := range h.ring.take() {
		if m.Type == "body" {
			got += len(m.Body)
		}
	}
	if got != n {
		t.Fatalf("the node got %d body bytes, want %d", got, n)
	}
}

// TestH2StuckStreamWindowLeavesOthers: with the default windows, a
// stream whose node is stuck may fill its whole window (the proxy holds
// it), and the connection is still read: its other streams go on
// (http2-stream-window is at most half of max-read-ahead).
func TestH2StuckStreamWindowLeavesOthers(t *testing.T) {
	def := config.Defaults()
	q := newH2qHarness(t, func(o *Options) {
		o.HTTP2StreamWindow, o.HTTP2ConnectionWindow = def.HTTP2StreamWindow, def.HTTP2ConnectionWindow
	})
	h := q.h
	h.ring.full[h.node("n1").Index] = true
	q.open(1, "POST", "a", false)
	q.data(1, def.HTTP2StreamWindow)
	if h.fc.paused {
		t.Fatalf("one stuck stream's window (%d bytes) stopped the connection (max-read-ahead %d)", def.HTTP2StreamWindow, def.MaxReadAhead)
	}
	h.ring.take()
	q.open(3, "GET", "b", true)
	var types []string
	for _, m := range h.ring.take() {
		if m.Node == h.node("n2").Index {
			types = append(types, m.Type)
		}
	}
	if len(types) == 0 || types[0] != "uwsgi" {
		t.Fatalf("the other stream's node got %v, want its request", types)
	}
}
