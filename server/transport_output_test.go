package server

import (
	"testing"
	"time"
)

// TestOutputWrittenWhileReadingIsBounded: output the transport wrote
// while it read the client, with no response queued (TLS 1.3's answers
// to a client's KeyUpdates, which a client can ask for without end while
// it reads nothing), counts against max-pending-output and stall-timeout
// like any held output. Before, only a response's flush counted output:
// that grew without bound, and the connection never stalled out.
func TestOutputWrittenWhileReadingIsBounded(t *testing.T) {
	t.Run("max-pending-output", func(t *testing.T) {
		h := newHarness(t, testOptions())
		h.fc.outbound = h.s.opts.MaxPendingOutput + 1 // as a transport's Read left it
		h.client("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nx")
		if !h.fc.closed || h.s.stats.SlowClients.Load() != 1 {
			t.Fatalf("closed %v, SlowClients %d: want the client closed as a slow reader", h.fc.closed, h.s.stats.SlowClients.Load())
		}
	})
	t.Run("stall-timeout", func(t *testing.T) {
		h := newHarness(t, testOptions())
		h.fc.outbound = 100
		h.client("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nx")
		if h.fc.closed {
			t.Fatal("closed at once")
		}
		h.sweep(time.Now().Add(h.s.opts.StallTimeout + time.Second))
		if !h.fc.closed {
			t.Fatal("output held past stall-timeout, unread: the connection is still open")
		}
	})
}
