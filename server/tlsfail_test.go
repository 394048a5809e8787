package server

import "testing"

// TestTLSFailureCountedOnce: a handshake that timed out (closed by the
// sweep) and whose read then fails too is one failure in
// tls_handshake_failures_total, not two.
func TestTLSFailureCountedOnce(t *testing.T) {
	h := newHarness(t, testOptions())
	h.c.tls = &tlsTransport{}
	before := h.s.stats.TLSFailures.Load()
	if !h.c.tlsFailed() || h.c.tlsFailed() {
		t.Fatal("want the first failure counted, the second not")
	}
	if got := h.s.stats.TLSFailures.Load() - before; got != 1 {
		t.Fatalf("%d failures counted, want 1", got)
	}
	h.c.tls = nil
}
