package server

import (
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/config"
)

// TestH2ReceiveWindows: the proxy offers http2-stream-window per stream
// (its SETTINGS) and http2-connection-window for the connection (a
// WINDOW_UPDATE at once: the connection's starts at 65535 whatever
// SETTINGS say), accepts DATA up to them, and gives each back once half
// is used. Before, both were HTTP/2's 65535: an upload ran at 64 KiB per
// round trip (1.3 MB/s at 50 ms, measured through a delaying relay,
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
	var streamWin uint32
	var connWin uint32
	q.readOut(func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
				streamWin = v
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				connWin += f.Increment
			}
		}
	})
	if int(streamWin) != def.HTTP2StreamWindow {
		t.Errorf("SETTINGS_INITIAL_WINDOW_SIZE %d, want http2-stream-window %d", streamWin, def.HTTP2StreamWindow)
	}
	if int(connWin)+65535 != def.HTTP2ConnectionWindow {
		t.Errorf("connection window %d+65535, want http2-connection-window %d", connWin, def.HTTP2ConnectionWindow)
	}
	h.ring.take()

	// An upload of a whole stream window, more than 65535, in one go.
	q.open(1, "POST", "a", false)
	n := def.HTTP2StreamWindow
	q.data(1, n)
	var reset bool
	var back uint32
	q.readOut(func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			reset = true
		case *http2.WindowUpdateFrame:
			if f.StreamID == 1 {
				back += f.Increment
			}
		}
	})
	if reset {
		t.Fatalf("a stream sending its window (%d bytes) was reset", n)
	}
	if back < uint32(n/2) {
		t.Fatalf("stream 1 got %d bytes of window back after %d, want at least half", back, n)
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
