package server

import (
	"unsafe"

	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
	"github.com/blastbeat/blastbeat/zmqbridge"
)

// An HTTP/2 connection carries many sessions, often for different nodes.
// A message the ring refuses waits in outq (conn.send), and an HTTP/1.x
// connection then stops being read. An HTTP/2 one reads on while what
// waits only waits for stuck nodes (at their high-water mark): a stream
// of a stuck node must not stall its neighbours. What it may hold is
// bounded twice:
//   - per stream, by its flow-control window: a stream whose messages
//     wait gets no WINDOW_UPDATE until they go, so its client can send
//     it at most one window more (a request body's stream:
//     http2-stream-window, at most half of max-read-ahead; a WebSocket
//     stream's: HTTP/2's 64 KiB);
//   - per connection, by max-read-ahead: past that many bytes waiting
//     (pooled buffers and message headers counted: a small message holds
//     at least a 512-byte buffer, so one window of tiny WebSocket
//     messages counts about 12 times its bytes, under 1 MiB), reading
//     pauses, as it does at once while a message waits for the ring
//     itself (the bridge is behind: every client waits).
//
// A stream that closes normally leaves what waits to go, its `end` after
// it; one that is reset drops it (http2.go, h2Close).

// queuedMsgCost is what a message waiting in outq costs beyond its body.
// Messages from the client's bytes hold a pooled buffer of 512 bytes at
// least, so outq holds fewer than about 1,600 of them at the default
// max-read-ahead (the loop scans it: queuedFor, retryMsgs), besides a
// few bufferless ones (credit, end) per stream.
const queuedMsgCost = int(unsafe.Sizeof(zmqbridge.Msg{})) + 64

// msgCost is the memory a waiting message holds: its pooled buffer's
// capacity, or its body, and its header.
func msgCost(m *zmqbridge.Msg) int {
	if m.Buf != nil {
		return cap(m.Buf.B) + queuedMsgCost
	}
	return len(m.Body) + queuedMsgCost
}

// h2ReadWaits reports whether reading the connection waits for outq.
func (c *conn) h2ReadWaits() bool {
	h := c.h2
	return len(c.outq) > 0 && (h.ringWait || h.queued >= c.srv().opts.MaxReadAhead)
}

// h2OutqMoved accounts outq: m joined it, or (m nil) messages left it;
// streams whose messages all went get their withheld windows back.
func (c *conn) h2OutqMoved(m *zmqbridge.Msg) {
	h := c.h2
	if m != nil {
		c.h2CountQueued(m)
		return
	}
	h.queued, h.ringWait = 0, false
	for _, st := range h.streams {
		st.waiting = 0
	}
	for i := range c.outq {
		c.h2CountQueued(&c.outq[i])
	}
	if h.windowsHeld {
		c.h2GiveWindows()
	}
}

// h2CountQueued counts m, waiting in outq: its cost, whether it waits
// for the ring rather than a stuck node, and its stream's waiting.
func (c *conn) h2CountQueued(m *zmqbridge.Msg) {
	h := c.h2
	h.queued += msgCost(m)
	h.ringWait = h.ringWait || !c.srv().ring.NodeFull(m.Node)
	if st := h.bySID[session.SID(m.SID)]; st != nil {
		st.waiting++
	}
}

// h2Ack gives a stream's window back once half of it is used, unless it
// is held back (h2HeldBack; h2GiveWindows gives it once it is not).
func (c *conn) h2Ack(st *h2Stream) {
	if st.unacked < st.window/2 || st.endRecv || c.h2.streams[st.id] != st {
		return
	}
	if c.h2.pendSt == st {
		c.h2FlushData() // joined DATA for a stuck node must hold the window back too
	}
	if c.h2HeldBack(st, c.h2WSLead()) {
		c.h2.windowsHeld = true
		return
	}
	c.h2WindowUpdate(st)
}

// h2HeldBack reports whether a stream's window stays closed: its
// messages wait for a stuck node, or it holds part of a WebSocket
// message while the connection's WebSocket streams hold too much and
// another (lead) goes first (http2_websocket.go).
func (c *conn) h2HeldBack(st, lead *h2Stream) bool {
	// A WebSocket stream awaiting its node's answer holds what its client
	// sent early (h2WebSocketData) to one window: it cannot be the lead.
	return st.waiting > 0 || lead != nil && st != lead && st.wsHeld > 0 || st.wsAwait != nil && st.wsHeld > 0
}

// h2GiveWindows gives back the windows withheld from streams no longer
// held back.
func (c *conn) h2GiveWindows() {
	h := c.h2
	h.windowsHeld = false
	lead := c.h2WSLead()
	for _, st := range h.streams {
		if st.unacked < st.window/2 || st.endRecv {
			continue
		}
		if c.h2HeldBack(st, lead) {
			h.windowsHeld = true
			continue
		}
		c.h2WindowUpdate(st)
	}
}

// h2WindowUpdate gives the stream's used window back.
func (c *conn) h2WindowUpdate(st *h2Stream) {
	c.queueOwn(c.l.used(protocol.AppendH2WindowUpdate(c.l.arenaRoom(h2WindowUpdateLen), st.id, uint32(st.unacked))))
	st.unacked = 0
}
