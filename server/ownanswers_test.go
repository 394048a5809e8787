package server

import (
	"strings"
	"testing"
)

// TestOwnAnswersDated: the proxy's own answers carry Date (RFC 9110
// §6.6.1: an origin with a clock sends it; they had none), and its 426
// names the protocol (RFC 9110 §15.5.22: Upgrade: websocket).
func TestOwnAnswersDated(t *testing.T) {
	for _, tc := range []struct{ name, req, status, also string }{
		{"400", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400", ""},
		{"405 TRACE", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", "405", ""},
		{"426", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
			"426", "\r\nUpgrade: websocket\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testOptions())
			h.client(tc.req)
			out := string(h.takeOut())
			head, _, _ := strings.Cut(out, "\r\n\r\n")
			if !strings.HasPrefix(out, "HTTP/1.1 "+tc.status) || !strings.Contains(head, "\r\nDate: ") || !strings.Contains(head+"\r\n", tc.also) {
				t.Fatalf("got %q: want %s with Date%s", out, tc.status, tc.also)
			}
		})
	}
}
