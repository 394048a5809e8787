package server

import (
	"unsafe"

	"github.com/blastbeat/blastbeat/protocol"
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
//     it at most one window (64 KiB) more;
//   - per connection, by max-read-ahead: past that many bytes waiting
//     (pooled buffers and message headers counted), reading pauses, as
//     it does at once while a message waits for the ring itself (the
//     bridge is behind: every client waits).

// queuedMsgCost is what a message waiting in outq costs beyond its body.
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
	ring := c.srv().ring
	if m != nil {
		h.queued += msgCost(m)
		h.ringWait = h.ringWait || !ring.NodeFull(m.Node)
		return
	}
	h.queued, h.ringWait = 0, false
	for i := range c.outq {
		m := &c.outq[i]
		h.queued += msgCost(m)
		h.ringWait = h.ringWait || !ring.NodeFull(m.Node)
	}
	if h.windowsHeld {
		c.h2GiveWindows()
	}
}

// h2Ack gives a stream's window back once half of it is used, unless
// its messages wait (h2GiveWindows does then, once they went).
func (c *conn) h2Ack(st *h2Stream) {
	if st.unacked < h2InitialWindow/2 || st.endRecv || c.h2.streams[st.id] != st {
		return
	}
	if c.waitsFor(st.sid) {
		c.h2.windowsHeld = true
		return
	}
	c.h2WindowUpdate(st)
}

// h2GiveWindows gives back the windows withheld from streams whose
// messages no longer wait.
func (c *conn) h2GiveWindows() {
	h := c.h2
	h.windowsHeld = false
	for _, st := range h.streams {
		if st.unacked < h2InitialWindow/2 || st.endRecv {
			continue
		}
		if c.waitsFor(st.sid) {
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

// waitsFor reports whether a message of session sid waits in outq.
func (c *conn) waitsFor(sid [16]byte) bool {
	for i := range c.outq {
		if c.outq[i].SID == sid {
			return true
		}
	}
	return false
}
