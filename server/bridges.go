package server

import "github.com/blastbeat/blastbeat/zmqbridge"

// With zmq-bridges > 1 the proxy runs several ZeroMQ bridges, each with
// its own ROUTER behind the same endpoints (zmqbridge.StartShared): the
// kernel spreads the nodes' connections over them, and each node's
// messages go through the bridge it was heard through (session.Node's
// Bridge), so that a node's messages keep their order.

// bridgeSet is the loops' ringSender over several bridges.
type bridgeSet struct{ s *Server }

var _ ringSender = (*bridgeSet)(nil)

// of returns the bridge that serves node n: its own (session.Node's
// ClaimBridge), or the first for a node without one (whose messages then
// fail as undeliverable, as with one bridge).
func (b *bridgeSet) of(n int) *zmqbridge.Bridge {
	bs := b.s.bridges
	if nodes := b.s.rt.Load().nodes.Nodes(); n >= 0 && n < len(nodes) {
		if k := nodes[n].Bridge(); k >= 0 && k < len(bs) {
			return bs[k]
		}
	}
	return bs[0]
}

func (b *bridgeSet) TrySend(m *zmqbridge.Msg) bool { return b.of(m.Node).TrySend(m) }
func (b *bridgeSet) NodeFull(n int) bool           { return b.of(n).NodeFull(n) }

// TrySendDeferred queues m on its node's bridge, which Kick then wakes.
func (b *bridgeSet) TrySendDeferred(m *zmqbridge.Msg) bool {
	br := b.of(m.Node)
	if !br.TrySendDeferred(m) {
		return false
	}
	br.MarkKick()
	return true
}

// Kick wakes the bridges queued on since the last Kick.
func (b *bridgeSet) Kick() {
	for _, br := range b.s.bridges {
		br.KickMarked()
	}
}

// WantRoomFor asks node n's bridge only: another's room would not let
// n's message go, and its Room would only retry it in vain.
func (b *bridgeSet) WantRoomFor(n int) { b.of(n).WantRoomFor(n) }

// stopBridges stops every bridge, after what their rings hold was sent.
func (s *Server) stopBridges() {
	for _, b := range s.bridges {
		b.Stop()
	}
}

// bridgeStats adds up the bridges' counters.
func bridgeStats(bs []*zmqbridge.Bridge) zmqbridge.Stats {
	var t zmqbridge.Stats
	for _, b := range bs {
		t.Add(b.Stats())
	}
	return t
}

// nodeTraffic adds up what the bridges sent to node n.
func nodeTraffic(bs []*zmqbridge.Bridge, n int) zmqbridge.NodeTraffic {
	var t zmqbridge.NodeTraffic
	for _, b := range bs {
		t.Add(b.NodeTraffic(n))
	}
	return t
}

// ringLen adds up the bridges' rings.
func ringLen(bs []*zmqbridge.Bridge) (n, size int) {
	for _, b := range bs {
		bn, bsize := b.RingLen()
		n += bn
		size += bsize
	}
	return n, size
}
