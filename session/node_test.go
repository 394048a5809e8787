package session

import (
	"testing"
	"time"
)

// TestClaimBridge: a node belongs to the first bridge it is heard
// through; another bridge hearing it does not move it while its own
// keeps hearing it (a second process with its name), but does once its
// own has been silent for longer than stale (its connection died without
// a close); a bridge that loses it frees it.
func TestClaimBridge(t *testing.T) {
	const stale = 9
	n := &Node{Name: "n"}
	if n.Bridge() != -1 {
		t.Fatalf("bridge %d before any message", n.Bridge())
	}
	steps := []struct {
		k          int
		now        int64
		bridge     int
		moved      bool
		leave, was bool // LeaveBridge(k) instead, and its answer
	}{
		{k: 1, now: 100, bridge: 1},
		{k: 1, now: 103, bridge: 1},
		{k: 0, now: 105, bridge: 1},              // heard through 0 too: stays
		{k: 0, now: 112, bridge: 1},              // 9 since bridge 1 heard it: not more than stale
		{k: 1, now: 112, bridge: 1},              // bridge 1 hears it again
		{k: 0, now: 122, bridge: 0, moved: true}, // 10 of silence on bridge 1: moves
		{k: 1, now: 123, bridge: 0},              // the old one speaks again: stays on 0
		{k: 1, leave: true, was: false, bridge: 0},
		{k: 0, leave: true, was: true, bridge: -1},
		{k: 1, now: 130, bridge: 1},
	}
	for i, s := range steps {
		if s.leave {
			if was := n.LeaveBridge(s.k); was != s.was {
				t.Fatalf("step %d: LeaveBridge(%d) = %v, want %v", i, s.k, was, s.was)
			}
		} else if moved := n.ClaimBridge(s.k, s.now, stale); moved != s.moved {
			t.Fatalf("step %d: ClaimBridge(%d, %d) moved %v, want %v", i, s.k, s.now, moved, s.moved)
		}
		if n.Bridge() != s.bridge {
			t.Fatalf("step %d: bridge %d, want %d", i, n.Bridge(), s.bridge)
		}
	}
}

func TestNodeServesEpoch(t *testing.T) {
	n := &Node{Name: "n"}
	n.Seen(100)
	e := n.Epoch()
	if !n.Serves(e, 100, time.Second) {
		t.Fatal("a live node does not serve its session")
	}
	n.NewInstance()
	if n.Serves(e, 100, time.Second) || !n.Serves(n.Epoch(), 100, time.Second) {
		t.Fatal("after NewInstance: old sessions served, or new ones not")
	}
}
