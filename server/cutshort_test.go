package server

import (
	"testing"
	"time"
)

// TestCutShortCloseDelimitedResets: a close-delimited response (no
// Content-Length, not chunked) that its node leaves unfinished (it dies,
// or falls silent past response-idle-timeout) ends with a reset: a FIN
// would tell the client the body is whole. A response with a
// Content-Length cut short closes as before (its short body shows it).
func TestCutShortCloseDelimitedResets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		head  string
		reset bool
	}{
		{"close-delimited", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", true},
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false},
	} {
		for _, how := range []string{"node dies", "node silent", "message lost"} {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				h := newHarness(t, testOptions())
				h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				h.reply("n1", "headers", tc.head+"part of the body")
				h.takeOut()
				switch how {
				case "node dies":
					h.sweep(time.Now().Add(time.Hour)) // the node is past dead-after
				case "message lost":
					h.undeliverable("n1", "body") // a piece of the request the node never got
				default:
					late := time.Now().Add(h.s.opts.ResponseIdleTimeout + time.Minute)
					h.node("n1").Seen(late.UnixNano())
					h.sweep(late)
				}
				if !h.fc.closed {
					t.Fatal("the connection stayed open")
				}
				reset := h.fc.linger != nil && *h.fc.linger == 0
				if reset != tc.reset {
					t.Fatalf("closed with a reset: %v, want %v", reset, tc.reset)
				}
			})
		}
	}
}
