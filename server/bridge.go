package server

import (
	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/session"
	"github.com/blastbeat/blastbeat/zmqbridge"
)

// bridgeHandler is the Server seen by bridge k's goroutine; what it
// holds is that goroutine's alone.
type bridgeHandler struct {
	*Server
	k          int
	batches    [][]reply           // by loop: replies read in this batch, posted at Flush
	unknownIDs map[string]struct{} // identities warned about
}

func newBridgeHandler(s *Server, k int) *bridgeHandler {
	return &bridgeHandler{Server: s, k: k, batches: make([][]reply, len(s.loops))}
}

func parseReplyType(t []byte) replyType {
	switch string(t) {
	case "headers":
		return rHeaders
	case "uwsgi":
		return rUwsgi
	case "body":
		return rBody
	case "chunk":
		return rChunk
	case "end":
		return rEnd
	case "websocket":
		return rWebSocket
	case "websocket-binary":
		return rWebSocketBinary
	case "retry":
		return rRetry
	}
	return 0
}

// Deliver routes a node's message to the loop that owns its sid.
func (h *bridgeHandler) Deliver(identity, sid, typ, body []byte, buf *bufpool.Buf) {
	s := h.Server
	n := s.rt.Load().nodes.Lookup(identity)
	if n == nil {
		n = s.addedNode(identity)
	}
	if n == nil {
		s.stats.UnknownNode.Add(1)
		h.unknownIdentity(identity)
		return
	}
	now := s.now()
	heard := s.heardAt(now) // deaf.go
	// Before Seen: see Unreachable. now is the coarse clock: a sweep
	// period more, so that it never moves a node that spoke in time.
	// On the heard clock, as its silence is judged.
	if n.ClaimBridge(h.k, heard, int64(s.deadAfter+sweepEvery)) {
		s.opts.Logger.Warn("node moved to another bridge: its old connection was silent for the dead-after time (gone without a close)",
			"node", n.Name, "bridge", h.k, "dead-after", s.deadAfter)
	}
	n.Heard(now, heard)
	h.nodeSpoke(n, typ, body, now)
	if string(typ) == "pong" {
		// A node that speaks credits says so in every pong (PROTOCOL.md),
		// and one that stops says draining.
		n.SetCredits(hasFeature(body, "credits"))
		n.SetDraining(hasFeature(body, "draining"))
		return
	}
	t := parseReplyType(typ)
	id, ok := session.ParseSID(sid)
	if t == 0 || !ok || id.Loop() >= len(s.loops) {
		s.stats.BadMessage.Add(1)
		return
	}
	l := s.loops[id.Loop()]
	if l.el.Load() == nil {
		s.stats.Stale.Add(1) // that loop never had a connection
		s.stats.DroppedNoLoop.Add(1)
		return
	}
	s.inboxed.Add(inboxCost(body))
	if buf != nil {
		buf.Retain() // the loop gives it back (loop.hold)
	}
	h.batches[l.idx] = append(h.batches[l.idx], reply{typ: t, node: n, sid: id, body: body, buf: buf})
}

// addedNode finds identity among the nodes a Reload is adding (the
// bridges know them, and ping them, before the routing that lists them
// is published), or in the routing published since the caller's miss.
func (s *Server) addedNode(identity []byte) *session.Node {
	if rt := s.adding.Load(); rt != nil {
		return rt.nodes.Lookup(identity)
	}
	// Reload publishes its routing before it clears adding: no reload
	// in progress, or this one is there now.
	return s.rt.Load().nodes.Lookup(identity)
}

// Flush hands each loop the replies of this batch (one lock per loop and
// batch) and wakes the loops that were idle.
func (h *bridgeHandler) Flush() {
	for i, l := range h.loops {
		batch := h.batches[i]
		if len(batch) == 0 {
			continue
		}
		wake := l.postBatch(batch)
		clear(batch)
		h.batches[i] = batch[:0]
		if wake {
			l.wake()
		}
	}
}

// Undeliverable fails the session of a message that could not be sent.
func (h *bridgeHandler) Undeliverable(m *zmqbridge.Msg, _ error) {
	s := h.Server
	id := session.SID(m.SID)
	if m.SID == [16]byte{} || id.Loop() >= len(s.loops) {
		return // a ping
	}
	nodes := s.rt.Load().nodes.Nodes()
	if m.Node < 0 || m.Node >= len(nodes) {
		return
	}
	l := s.loops[id.Loop()]
	r := reply{typ: rUndeliverable, node: nodes[m.Node], sid: id, tag: m.Tag,
		headLost: m.Type == "uwsgi" || m.Type == "headers"}
	s.inboxed.Add(inboxCost(nil)) // the loop takes it off as for any reply
	h.batches[l.idx] = append(h.batches[l.idx], r)
	h.Flush()
}

// Unreachable marks a node dead at once. With several bridges, each pings
// every node and only the node's own bridge reaches it: that one's word
// counts, and frees the node to be claimed by the bridge it reconnects
// through. (A node not heard yet is not alive: nothing to mark.) It
// returns false for a node on another bridge: this one need not look for
// it at the fast ping period.
//
// A node that no virtual host lists any more (a reload removed it) is not
// watched either: its name stays known (its sessions finish), and it is
// pinged every second or so, not every fastPing for the process's life.
func (h *bridgeHandler) Unreachable(node int) (watch bool) {
	rt := h.rt.Load()
	nodes := rt.nodes.Nodes()
	if node < 0 || node >= len(nodes) {
		return true
	}
	n := nodes[node]
	switch {
	case h.opts.ZMQBridges <= 1:
		n.MarkDead()
		watch = true
	case n.LeaveBridge(h.k):
		n.MarkDead()
		watch = true
	default:
		watch = n.Bridge() < 0 // on another bridge: not news here
	}
	return watch && rt.lists(n)
}

// Paused stops reading from nodes while the loops have not applied what
// was read (node-read-ahead): that is the loops' CPU, shared by everyone. A
// client that does not read its output never pauses the bridge: its
// output is held for it alone (max-pending-output), or its node is paced
// by credits. Meanwhile nodes' silence is not counted (deaf.go).
func (h *bridgeHandler) Paused() bool {
	p := h.inboxed.Load() > int64(h.opts.NodeReadAhead)
	if p != (h.heard.Load().since != 0) {
		h.deafEdge(p)
	}
	return p
}

// Room asks every loop with connections waiting for the ring to retry.
func (h *bridgeHandler) Room() {
	for _, l := range h.loops {
		l.room()
	}
}

// hasFeature reports whether a pong body, a list of feature tokens
// separated by spaces or commas, names f.
func hasFeature(body []byte, f string) bool {
	for b := pongScan(body); len(b) > 0; {
		var t []byte
		if t, b = nextToken(b); string(t) == f {
			return true
		}
	}
	return false
}

// maxPongScan bounds what of a pong body is read for features (a few
// short tokens): on the bridge goroutine, a node's 64 MiB pong was split
// into a slice of every token, twice, while every node's traffic waited.
const maxPongScan = 1024

// pongScan is the part of a pong body read for features: none of a body
// over maxPongScan (cut, its last token could read as another).
func pongScan(body []byte) []byte {
	if len(body) > maxPongScan {
		return nil
	}
	return body
}

// nextToken splits the first token (separated by spaces or commas) off b.
func nextToken(b []byte) (tok, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == ',') {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != ',' {
		j++
	}
	return b[i:j], b[j:]
}
