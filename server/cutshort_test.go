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

// TestCutShortDechunkedForHTTP10: a chunked response de-chunked for an
// HTTP/1.0 client (close-delimited on its side) that its node ends with
// `end` before the last chunk (node.Serve does when a handler panics)
// ends with a reset; with its last chunk it ends with an ordinary close.
func TestCutShortDechunkedForHTTP10(t *testing.T) {
	for _, tc := range []struct {
		name  string
		last  bool
		reset bool
	}{{"end before the last chunk", false, true}, {"last chunk, then end", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testOptions())
			h.client("GET / HTTP/1.0\r\n\r\n")
			h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			h.reply("n1", "chunk", "started")
			if tc.last {
				h.reply("n1", "chunk", "")
			}
			h.reply("n1", "end", "")
			if !h.fc.closed {
				t.Fatal("the connection stayed open")
			}
			if reset := h.fc.linger != nil && *h.fc.linger == 0; reset != tc.reset {
				t.Fatalf("closed with a reset: %v, want %v", reset, tc.reset)
			}
		})
	}
}

// TestCutShortSlowReaderResets: a client closed for not reading (past
// max-pending-output, or stall-timeout) in the middle of a
// close-delimited response gets a reset, as does one whose upload goes
// wrong while that response streams; a FIN would tell it the truncated
// body is whole. A response with a Content-Length closes as before.
func TestCutShortSlowReaderResets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		head  string
		reset bool
	}{
		{"close-delimited", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", true},
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", false},
	} {
		for _, how := range []string{"max-pending-output", "stall-timeout", "bad upload"} {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				h := newHarness(t, testOptions())
				if how == "bad upload" {
					h.client("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
				} else {
					h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				}
				h.reply("n1", "headers", tc.head+"part of the body")
				switch how {
				case "max-pending-output":
					h.fc.outbound = h.s.opts.MaxPendingOutput + 1
					h.reply("n1", "body", "more")
				case "stall-timeout":
					h.fc.outbound = 100
					h.reply("n1", "body", "more")
					h.sweep(time.Now().Add(h.s.opts.StallTimeout + time.Minute))
				default:
					h.client("zz\r\n") // not a chunk size
				}
				if !h.fc.closed {
					t.Fatal("the connection stayed open")
				}
				if reset := h.fc.linger != nil && *h.fc.linger == 0; reset != tc.reset {
					t.Fatalf("closed with a reset: %v, want %v", reset, tc.reset)
				}
			})
		}
	}
}
