package server

import (
	"testing"

	"github.com/blastbeat/blastbeat/zmqbridge"
)

// TestOrphansBounded: the `end`s a loop keeps for a stuck node (the ring
// refused them) are bounded by ring-size: past it the stuck node's
// oldest is dropped and counted (EndsDropped), not another node's, and
// orphanFor, asked for every message the loop sends, answers from a
// count by node rather than a scan of them all. Before, the list grew
// with every client of the stuck node that closed, and every send on
// the loop scanned it.
func TestOrphansBounded(t *testing.T) {
	o := testOptions()
	o.RingSize = 64
	h := newHarness(t, o)
	h.ring.full[h.node("n1").Index] = true
	l := h.s.loops[0]
	n1, n2 := h.node("n1").Index, h.node("n2").Index
	// n2's end waited behind a ring full a moment; n1 is stuck.
	l.orphan(zmqbridge.Msg{Node: n2, SID: [16]byte{200, 2}, Type: "end"})
	for i := range 100 {
		l.orphan(zmqbridge.Msg{Node: n1, SID: [16]byte{byte(i), 1}, Type: "end"})
	}
	if len(l.orphans) != 64 {
		t.Fatalf("%d orphans kept, want ring-size (64)", len(l.orphans))
	}
	if got := h.s.stats.EndsDropped.Load(); got != 37 {
		t.Errorf("EndsDropped %d, want 37", got)
	}
	if l.orphans[0].Node != n2 || l.orphans[1].SID[0] != 37 {
		t.Errorf("kept first: node %d, then end %d; want n2's, then n1's 37 (the stuck node's oldest go)", l.orphans[0].Node, l.orphans[1].SID[0])
	}
	if !l.orphanFor(n1) || !l.orphanFor(n2) || l.orphanFor(-1) || l.orphanFor(1000) {
		t.Errorf("orphanFor: n1 %v, n2 %v, -1 %v, 1000 %v; want n1 and n2", l.orphanFor(n1), l.orphanFor(n2), l.orphanFor(-1), l.orphanFor(1000))
	}
	// The node moves again: the ring takes them all, and the count goes.
	delete(h.ring.full, n1)
	l.retryRoom()
	if len(l.orphans) != 0 || l.orphanFor(n1) {
		t.Errorf("after the node moved: %d orphans, orphanFor(n1) %v; want none", len(l.orphans), l.orphanFor(n1))
	}
	ends := 0
	for _, m := range h.ring.take() {
		if m.Type == "end" {
			ends++
		}
	}
	if ends != 64 {
		t.Errorf("%d ends sent once the node moved, want 64", ends)
	}
}
