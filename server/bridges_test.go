package server

import (
	"testing"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/session"
)

// twoBridges is a server with two bridges' handlers, node n2, and pong,
// which delivers a pong from n2 through a bridge.
func twoBridges(t *testing.T) (h *harness, b0, b1 *bridgeHandler, n2 *session.Node, pong func(*bridgeHandler)) {
	opts := testOptions()
	opts.ZMQBridges = 2
	h = newHarness(t, opts)
	b0, b1 = h.s.handlers[0], newBridgeHandler(h.s, 1)
	n2 = h.node("n2")
	pong = func(b *bridgeHandler) {
		b.Deliver([]byte("n2"), nil, []byte("pong"), nil, nil)
		b.Flush()
	}
	return h, b0, b1, n2, pong
}

// TestBridgesNodeHome: with several bridges a node belongs to the first
// bridge it is heard through; another bridge's pings that do not reach it
// neither kill it nor move it, its own bridge's do both, and it is then
// claimed by the bridge it speaks through next.
func TestBridgesNodeHome(t *testing.T) {
	h, b0, b1, n2, pong := twoBridges(t)
	alive := func() bool { return n2.Alive(h.s.now(), h.s.deadAfter) }

	// Not heard yet: no bridge's EHOSTUNREACH is news, and every bridge
	// looks for it at the fast ping period.
	if !b0.Unreachable(n2.Index) || n2.Bridge() != -1 || alive() {
		t.Fatalf("before it spoke: bridge %d, alive %v, or not watched", n2.Bridge(), alive())
	}
	pong(b1)
	if n2.Bridge() != 1 || !alive() {
		t.Fatalf("after a pong through bridge 1: bridge %d, alive %v", n2.Bridge(), alive())
	}
	// Bridge 0 pings it and does not reach it: not its bridge, which
	// need not look for it at the fast period.
	if b0.Unreachable(n2.Index) {
		t.Fatal("bridge 0 told to watch a node bridge 1 has")
	}
	if n2.Bridge() != 1 || !alive() {
		t.Fatalf("unreachable through bridge 0: bridge %d, alive %v; want 1, alive", n2.Bridge(), alive())
	}
	// A second process with its name, heard through bridge 0, does not
	// take its sessions over.
	pong(b0)
	if n2.Bridge() != 1 {
		t.Fatalf("after a pong through bridge 0: bridge %d, want 1", n2.Bridge())
	}
	// Its own bridge loses it: dead, and free; watched again.
	if !b1.Unreachable(n2.Index) {
		t.Fatal("bridge 1 not told to watch the node it lost")
	}
	if n2.Bridge() != -1 || alive() {
		t.Fatalf("unreachable through bridge 1: bridge %d, alive %v; want -1, dead", n2.Bridge(), alive())
	}
	// It reconnects through bridge 0.
	pong(b0)
	if n2.Bridge() != 0 || !alive() {
		t.Fatalf("after it reconnected: bridge %d, alive %v; want 0, alive", n2.Bridge(), alive())
	}
}

// TestBridgesNodeMoves: a node whose connection dies without a close
// (its host lost power, a partition) still takes pings through its
// bridge, into the dead TCP connection, so that bridge never finds it
// unreachable. Once its bridge has not heard it for dead-after while
// another bridge does (the node reconnected there), it moves there.
func TestBridgesNodeMoves(t *testing.T) {
	h, b0, b1, n2, pong := twoBridges(t)
	pong(b1)
	pong(b0)
	if n2.Bridge() != 1 {
		t.Fatalf("bridge %d, want 1 (first heard)", n2.Bridge())
	}
	h.s.clock.Add(int64(h.s.deadAfter+sweepEvery) + 1) // the coarse clock gets a sweep period more
	pong(b0)
	if n2.Bridge() != 0 || !n2.Alive(h.s.now(), h.s.deadAfter) {
		t.Fatalf("bridge 1 silent for dead-after: bridge %d; want 0, alive", n2.Bridge())
	}
	pong(b1) // a late word through the old connection does not move it back
	if n2.Bridge() != 0 {
		t.Fatalf("after a pong through the old bridge: bridge %d, want 0", n2.Bridge())
	}
	if b1.Unreachable(n2.Index) || n2.Bridge() != 0 {
		t.Fatalf("the old bridge losing it: bridge %d; want it kept on 0, and not watched by 1", n2.Bridge())
	}
}

// TestOneBridgeUnreachable: with one bridge, EHOSTUNREACH marks a node
// dead as it always did.
func TestOneBridgeUnreachable(t *testing.T) {
	h := newHarness(t, testOptions())
	n1 := h.node("n1")
	if !n1.Alive(h.s.now(), h.s.deadAfter) {
		t.Fatal("n1 not alive at start")
	}
	if !h.s.handlers[0].Unreachable(n1.Index) {
		t.Fatal("one bridge not told to watch the node it lost")
	}
	if n1.Alive(h.s.now(), h.s.deadAfter) {
		t.Fatal("n1 alive after Unreachable")
	}
}

// TestNodeReadAhead: the bridges stop reading from the nodes once the
// loops hold node-read-ahead bytes of replies not yet applied.
func TestNodeReadAhead(t *testing.T) {
	o := testOptions()
	o.NodeReadAhead = 64 << 10
	h := newHarness(t, o)
	bh := h.s.handlers[0]
	h.s.inboxed.Store(64 << 10)
	if bh.Paused() {
		t.Fatal("paused at node-read-ahead, want reading up to it")
	}
	h.s.inboxed.Store(64<<10 + 1)
	if !bh.Paused() {
		t.Fatal("still reading past node-read-ahead")
	}
	h.s.inboxed.Store(0)
}

// TestNodeReadAheadCountsMessages: empty replies count against
// node-read-ahead too (each reply waiting for its loop is memory), so a
// node flooding empty messages pauses the bridges; before, only body
// bytes counted and such a flood never paused them.
func TestNodeReadAheadCountsMessages(t *testing.T) {
	o := testOptions()
	o.NodeReadAhead = 64 << 10
	h := newHarness(t, o)
	h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	bh := h.s.handlers[0]
	for i := 0; i < 64<<10 && !bh.Paused(); i++ {
		bh.Deliver([]byte("n1"), h.sid[:], []byte("body"), nil, nil)
	}
	if !bh.Paused() {
		t.Fatal("65,536 empty replies posted and not applied: the bridge still reads")
	}
	bh.Flush()
	h.settle()
	if bh.Paused() || h.s.inboxed.Load() != 0 {
		t.Fatalf("after the loop applied them: paused %v, %d counted", bh.Paused(), h.s.inboxed.Load())
	}
}

// TestUndeliverableInboxBalanced: a failed send the bridge reports goes
// through the loop's inbox like a reply, and leaves node-read-ahead's
// count where it was (it subtracted a reply's cost it never added).
func TestUndeliverableInboxBalanced(t *testing.T) {
	h := newHarness(t, testOptions())
	h.client("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")
	h.undeliverable("n1", "body")
	if n := h.s.inboxed.Load(); n != 0 {
		t.Fatalf("node-read-ahead counts %d after an undeliverable report, want 0", n)
	}
}

// TestRetiredNodeNotWatched: a node that a reload took out of every
// virtual host is not watched when unreachable (its pings go every
// second or so, not every 100 ms for the process's life), with one bridge
// or several; one still listed is.
func TestRetiredNodeNotWatched(t *testing.T) {
	for _, bridges := range []int{1, 2} {
		opts := testOptions()
		opts.ZMQBridges = bridges
		h := newHarness(t, opts)
		n1, n2 := h.node("n1"), h.node("n2")
		if !h.s.handlers[0].Unreachable(n2.Index) {
			t.Fatalf("%d bridges: listed n2 unreachable, not watched", bridges)
		}
		// A reload whose only vhost lists n1 alone.
		next := opts
		next.VHosts = []config.VHost{{Name: "*", Nodes: []string{"n1"}, Format: "headers"}}
		rt, _, err := buildRouting(&next, h.s.lns.Load(), h.s.rt.Load(), h.s.lns.Load(), len(h.s.loops))
		if err != nil {
			t.Fatal(err)
		}
		h.s.rt.Store(rt)
		if rt.lists(n2) || !rt.lists(n1) {
			t.Fatalf("%d bridges: lists n1 %v, n2 %v; want true, false", bridges, rt.lists(n1), rt.lists(n2))
		}
		if h.s.handlers[0].Unreachable(n2.Index) {
			t.Fatalf("%d bridges: retired n2 still watched", bridges)
		}
		n1.Seen(h.s.now())
		if bridges == 1 && !h.s.handlers[0].Unreachable(n1.Index) {
			t.Fatal("listed n1 not watched")
		}
	}
}
