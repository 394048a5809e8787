package server

import (
	"strings"
	"testing"
	"time"
)

// wsUpgraded is a harness whose client completed a WebSocket handshake
// (answered by the proxy).
func wsUpgraded(t *testing.T) *harness {
	h := newHarness(t, testOptions())
	h.client("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if out := string(h.takeOut()); !strings.HasPrefix(out, "HTTP/1.1 101 ") {
		t.Fatalf("handshake: %q", out)
	}
	h.ring.take()
	return h
}

// TestWebSocketHeldMessageTimeout: a client that begins a message (part
// of a frame, or the first fragments of a message) and then sends nothing
// for websocket-message-timeout is closed with 1008: what it began was
// held in memory for good before. An idle WebSocket holding nothing
// stays.
func TestWebSocketHeldMessageTimeout(t *testing.T) {
	masked := func(fin bool, op byte, payload string, total int) string {
		b0 := op
		if fin {
			b0 |= 0x80
		}
		b := []byte{b0, 0x80 | byte(total), 0, 0, 0, 0} // mask 0: payload as is
		return string(b) + payload
	}
	for name, sent := range map[string]string{
		"idle":            "",
		"part of a frame": masked(true, 1, "abc", 100),
		"fragments":       masked(false, 1, "abc", 3),
	} {
		t.Run(name, func(t *testing.T) {
			h := wsUpgraded(t)
			if sent != "" {
				h.client(sent)
			}
			t0 := time.Unix(0, h.s.now())
			late := t0.Add(h.s.opts.WebSocketMessageTimeout + time.Minute)
			h.node("n1").Seen(late.UnixNano())
			h.sweep(late)
			out := h.takeOut()
			if sent == "" {
				if h.fc.closed || len(out) > 0 {
					t.Fatalf("an idle WebSocket was closed: %q", out)
				}
				return
			}
			// A close frame with 1008 (0x03F0).
			if len(out) < 4 || out[0] != 0x88 || out[2] != 0x03 || out[3] != 0xF0 {
				t.Fatalf("client got %q, want a close frame with 1008", out)
			}
		})
	}
}

// TestWebSocketMessageTimeoutIsADeadline: websocket-message-timeout
// bounds the time to complete a message begun, not the client's silence:
// a client that began a message and then sends a ping (or a byte of it)
// now and then is closed all the same (before, each ping moved the
// deadline on, and the message was held for good). One that keeps
// completing messages is not, however long it sends.
func TestWebSocketMessageTimeoutIsADeadline(t *testing.T) {
	frame := func(fin bool, op byte, payload string, total int) string {
		b0 := op
		if fin {
			b0 |= 0x80
		}
		return string([]byte{b0, 0x80 | byte(total), 0, 0, 0, 0}) + payload
	}
	ping := frame(true, 9, "", 0)
	step := testOptions().WebSocketMessageTimeout / 3

	t.Run("pings while a message is held", func(t *testing.T) {
		h := wsUpgraded(t)
		now := time.Unix(0, h.s.now())
		h.client(frame(false, 2, "abc", 3)) // the first fragment of a message
		for i := 0; i < 4; i++ {
			now = now.Add(step)
			h.node("n1").Seen(now.UnixNano())
			h.sweep(now)
			h.client(ping)
			h.sweep(now)
		}
		out := h.takeOut()
		if i := strings.Index(string(out), "\x88"); i < 0 || len(out) < i+4 || out[i+2] != 0x03 || out[i+3] != 0xF0 {
			t.Fatalf("client got %q, want its pongs and a close frame with 1008", out)
		}
	})

	t.Run("messages completed", func(t *testing.T) {
		h := wsUpgraded(t)
		now := time.Unix(0, h.s.now())
		// Each turn completes the message begun in the one before and
		// begins another: something is always held, never for long.
		h.client(frame(true, 2, "ab", 4))
		for i := 0; i < 6; i++ {
			now = now.Add(step)
			h.node("n1").Seen(now.UnixNano())
			h.s.tick(now)
			h.client("cd" + frame(true, 2, "ab", 4))
			h.sweep(now)
		}
		if out := h.takeOut(); h.fc.closed || len(out) > 0 {
			t.Fatalf("a client completing its messages was closed: %q", out)
		}
		if got := len(h.ring.take()); got != 6 {
			t.Fatalf("the node got %d messages, want 6", got)
		}
	})
}
