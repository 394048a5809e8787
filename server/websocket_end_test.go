package server

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestWebSocketNodeEndCode: a node's `end` to a WebSocket closes it with
// the close code and reason its body carries (4001 "bye"); an empty body,
// as nodes written for the original send, or one that is no valid close
// payload (1005 may never be sent) closes with 1000 and no reason.
func TestWebSocketNodeEndCode(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       []byte
	}{
		{"code and reason", "\x0f\xa1bye", []byte{0x88, 5, 0x0f, 0xa1, 'b', 'y', 'e'}},
		{"empty", "", []byte{0x88, 2, 0x03, 0xe8}},
		{"code not sendable", "\x03\xed", []byte{0x88, 2, 0x03, 0xe8}},
		{"reason not UTF-8", "\x0f\xa1\xff", []byte{0x88, 2, 0x03, 0xe8}},
		{"one byte", "x", []byte{0x88, 2, 0x03, 0xe8}},
		// 122 bytes and a 2-byte character: cut at its start.
		{"reason past 123 bytes", "\x0f\xa1" + strings.Repeat("a", 122) + "é",
			append([]byte{0x88, 124, 0x0f, 0xa1}, strings.Repeat("a", 122)...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := wsUpgraded(t)
			h.reply("n1", "end", c.body)
			if out := h.takeOut(); !bytes.Equal(out, c.want) {
				t.Fatalf("client got %q, want %q", out, c.want)
			}
		})
	}
}

// TestH2WebSocketNodeEndCode is the same over HTTP/2.
func TestH2WebSocketNodeEndCode(t *testing.T) {
	q := newH2qHarness(t, nil)
	q.openWS(1, "a")
	q.frames()
	q.deliver("n1", 1, "end", "\x0f\xa1bye")
	data := q.dataOn(1)
	if want := []byte{0x88, 5, 0x0f, 0xa1, 'b', 'y', 'e'}; !bytes.Equal(data, want) {
		t.Fatalf("stream 1 got %q, want %q", data, want)
	}
}

// TestH2WebSocketNodeGone: a WebSocket stream whose node stops answering
// pings is closed with 1001, as over HTTP/1.1 (it was 1011 over HTTP/2).
func TestH2WebSocketNodeGone(t *testing.T) {
	q := newH2qHarness(t, nil)
	q.openWS(1, "a")
	q.frames()
	now := time.Unix(0, q.h.s.now())
	for i := 0; i < 5 && !q.h.fc.closed; i++ { // as the loop sweeps, past the node's silence
		now = now.Add(q.h.s.deadAfter)
		q.h.sweep(now)
		if code := q.wsCloseOn(1); code != 0 {
			if code != 1001 {
				t.Fatalf("close code %d, want 1001", code)
			}
			return
		}
	}
	t.Fatal("no close frame after the node went silent")
}
