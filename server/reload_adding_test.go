package server

import "testing"

// A Reload gives the bridges the new node names, which ping them at
// once, before it publishes the routing that lists them: a node already
// connected can answer in between. Its pong must count (it was dropped
// as a stranger's, and the node served nobody until the next ping,
// ping-freq later).
func TestPongDuringReloadCounts(t *testing.T) {
	h := newHarness(t, testOptions())
	s := h.s
	bh := s.handlers[0]
	cur := s.rt.Load()
	next := *cur
	next.nodes, _ = cur.nodes.With([]string{"n1", "n2", "n3"})
	s.adding.Store(&next) // as Reload does between AddIdentities and its Store

	bh.Deliver([]byte("n3"), make([]byte, 16), []byte("pong"), nil, nil)
	bh.Flush()
	n3 := next.nodes.Lookup([]byte("n3"))
	if !n3.Alive(s.now(), s.deadAfter) {
		t.Fatal("n3's pong during the reload was dropped: not alive")
	}
	if got := s.stats.UnknownNode.Load(); got != 0 {
		t.Fatalf("unknown-node messages = %d, want 0", got)
	}

	// Published and no reload in progress: found in the routing as ever.
	s.rt.Store(&next)
	s.adding.Store(nil)
	bh.Deliver([]byte("n3"), make([]byte, 16), []byte("pong"), nil, nil)
	// A name nobody lists is still a stranger's.
	bh.Deliver([]byte("n4"), make([]byte, 16), []byte("pong"), nil, nil)
	bh.Flush()
	if got := s.stats.UnknownNode.Load(); got != 1 {
		t.Fatalf("unknown-node messages = %d, want 1 (n4's)", got)
	}
}
