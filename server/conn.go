package server

import (
	"errors"
	"io"
	"slices"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/internal/tlsmem"
	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
	"github.com/blastbeat/blastbeat/zmqbridge"
)

// conn is one client connection: its transport (plain gnet, or TLS over
// it), the protocol machine reading it (HTTP/1.1, then WebSocket after an
// upgrade), and, for HTTP/1.x, its one session and stream. Every field is
// owned by the connection's event loop.
type conn struct {
	t   transport     // the client's bytes
	tls *tlsTransport // t, when the connection is TLS; else nil
	m   machine       // how they are read and how replies are framed
	h2  *h2Conn       // the HTTP/2 state, once the machine is h2
	l   *loop
	ln  *listener // the listener that accepted it
	sid session.SID

	parser *protocol.RequestParser // only while a request is being read
	vhost  *session.VHost
	node   *session.Node
	stream // the request/response exchange in flight (HTTP/1.x: one)

	keepAlive  bool // the client allows another request
	closeAfter bool // close once the current response is complete
	dirty      bool // queued in loop.dirty
	closed     bool
	closing    bool // closeNow was called: gnet closes it soon
	endSent    bool // the last message to the node was `end`
	readPaused bool
	tlsEOF     bool       // the TLS client sent close_notify
	shut       bool       // lingering: the write side is shut down
	corked     bool       // TCP_CORK is set: the last response's tail waits for the FIN
	droppedIn  bool       // closing, it read and dropped bytes the client sent
	tlsBye     bool       // closing: close_notify is sent, and TLS input dropped undecrypted
	inRoomWait bool       // listed in loop.roomWait
	proto      Proto      // what it speaks now (metrics)
	wsFrags    wsFrags    // a fragmented WebSocket message being joined
	wsAwait    *wsPending // a handshake the node answers (websocket-handshake = node)

	headBy     int64 // unix ns: the request head must be complete by then (408)
	lastActive int64
	progressAt int64 // unix ns: output last drained to the client (stall-timeout)

	pendingOut int             // output held in the transport, as last accounted
	outq       []zmqbridge.Msg // messages the ring refused, in order; reading pauses
	out        [][]byte        // output queued during one loop turn
	bigBodies  bool            // the last request's body had zmqio.MinRefBody bytes or more
}

func (c *conn) srv() *Server { return c.l.s }

// queue adds b to the output written at the end of this loop turn. b must
// stay unchanged until then.
func (c *conn) queue(b []byte) {
	if len(b) == 0 || c.closed {
		return
	}
	if c.out == nil {
		c.out = c.l.outSlice()
	}
	c.out = append(c.out, b)
	c.ex.bytes += int64(len(b))
	c.l.markDirty(c)
}

// queueOwn queues b, claimed in the loop's arena (used), joined to the
// piece queued before it when that one ends in the arena where b starts:
// a response built in the arena goes out as one piece.
func (c *conn) queueOwn(b []byte) {
	if k := len(c.out); k > 0 && len(b) > 0 && !c.closed {
		prev := c.out[k-1]
		if off := c.l.arenaOffset(prev); off >= 0 && off+len(prev) == c.l.arenaOffset(b) {
			end := off + len(prev) + len(b)
			c.out[k-1] = c.l.arena[off:end:end]
			c.ex.bytes += int64(len(b))
			c.l.markDirty(c)
			return
		}
	}
	c.queue(b)
}

// flush writes queued output with one writev, closes the connection when
// asked, and accounts what the client has not read yet.
func (c *conn) flush() {
	if len(c.out) > 0 && !c.closed {
		if c.closingOut() {
			c.cork()
		}
		_, _ = c.t.Writev(c.out)
	}
	// The slice goes back to the loop: a connection holds one only while
	// it has output queued, so an idle one holds none.
	c.l.putOutSlice(c.out)
	c.out = nil
	if c.closed {
		return
	}
	if c.m == (lingering{}) {
		c.shutWrite()
		return
	}
	if c.closingOut() {
		c.closeWhenWritten()
		return
	}
	c.accountOutput()
	if c.h2 != nil {
		c.h2Flushed()
	}
}

// closingOut reports whether the connection closes after the output it
// holds: its last response is queued (closeAfter, no request in flight).
// Nothing more is parsed; what the client still sends is read and dropped.
func (c *conn) closingOut() bool { return c.closeAfter && c.phase == phIdle }

// closeWhenWritten closes a connection whose last response is queued,
// once gnet holds none of it: onDrained calls it again until then, while
// stall-timeout and max-pending-output still bound a client that stops
// reading (gnet's close writes what the socket takes at that moment, no
// more). A TLS connection's close_notify follows the output, and drains
// like it. A connection whose client may still be sending then closes as
// nginx's lingering_close does: its write side is shut down, the FIN
// following the last byte, and what the client still sends is read and
// dropped until it closes too (lingering.timeouts bounds it). Closing at
// once with input unread would reset the connection, and the reset would
// destroy the output the kernel still holds for the client. Otherwise it
// closes at once.
func (c *conn) closeWhenWritten() {
	c.accountOutput()
	c.updateReadPause() // what it reads is dropped: never paused
	if c.closing || c.t.OutboundBuffered() > 0 {
		return
	}
	if c.tls != nil && !c.tlsBye {
		c.tlsBye = true
		c.tls.closeTLS()
		if c.closed || c.closing {
			return // the write failed, and gnet closed it
		}
		if c.t.OutboundBuffered() > 0 {
			c.accountOutput() // onDrained comes back here
			return
		}
	}
	if !c.mayStillSend() {
		c.closeNow() // a corked tail leaves with the FIN
		return
	}
	c.startLinger()
	c.shutWrite() // or closes at once, when the socket cannot be shut
}

// mayStillSend reports whether the client of a closing connection may
// be sending, nginx's test for a lingering close: it speaks a protocol
// that sends without asking (WebSocket, HTTP/2), its request is not all
// read (the proxy answered it early), it sent bytes since the connection
// began closing, or bytes wait unread, in gnet or in the socket
// (SIOCINQ).
func (c *conn) mayStillSend() bool {
	if c.m != (http1{}) || c.reading || c.parser != nil && !c.parser.Idle() || c.droppedIn ||
		c.t.InboundBuffered() > 0 || c.tls != nil && c.tls.Conn.InboundBuffered() > 0 {
		return true
	}
	fd, ok := c.sockFD()
	if !ok {
		return false
	}
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	return err != nil || n > 0
}

// cork holds the last response's final segment back (TCP_CORK) for the
// FIN that closeWhenWritten sends (by close or shutdown): one packet
// instead of two, for both kernels. TCP sends a corked segment after 200
// ms anyway, and the FIN follows as soon as gnet holds nothing. Only TCP:
// a TLS connection's close_notify follows the output, and a unix socket
// has no cork.
func (c *conn) cork() {
	if c.tls != nil || c.corked || !c.t.RemoteAddrPort().IsValid() {
		return
	}
	if fd, ok := c.sockFD(); ok {
		c.corked = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_CORK, 1) == nil
	}
}

// sockFD is the client socket's descriptor, when the transport has one.
func (c *conn) sockFD() (int, bool) {
	var fd int
	if c.tls != nil {
		fd = c.tls.Conn.Fd()
	} else if g, ok := c.t.(interface{ Fd() int }); ok {
		fd = g.Fd()
	} else {
		return 0, false
	}
	return fd, fd >= 0
}

// inbound is what holds the client's bytes not yet consumed: the
// transport, or, for a TLS connection whose TLS side is closed, the
// socket's raw buffer.
type inbound interface {
	InboundBuffered() int
	Discard(n int) (int, error)
}

// dropIn drops what in holds of the client's input, noting that the
// client was sending (a lingering close follows).
func (c *conn) dropIn(in inbound) {
	if n := in.InboundBuffered(); n > 0 {
		_, _ = in.Discard(n) // never 0: gnet's Discard(0) drops everything
		c.droppedIn = true
	}
}

// accountOutput records what the client has not read yet and enforces
// max-pending-output and max-pending-output-total: a client that does not
// read costs only its own buffer, up to the caps, and is then closed. It
// grants credit to a credit-speaking node as the client drains.
func (c *conn) accountOutput() {
	if c.closing {
		return
	}
	s := c.srv()
	ob := c.t.OutboundBuffered()
	if ob == c.pendingOut {
		c.maybeGrant()
		return
	}
	if c.pendingOut == 0 {
		c.progressAt = s.now() // stall-timeout counts from the first byte held
	}
	was := c.holding()
	total := s.pendingTotal.Add(int64(ob - c.pendingOut))
	before := c.pendingOut
	c.pendingOut = ob
	c.countHolder(was)
	switch {
	case ob > s.opts.MaxPendingOutput:
		c.slowReader("max-pending-output", ob)
	case total > s.opts.MaxPendingOutputTotal && ob > before && int64(ob) > s.fairShare():
		// Over the total: the one that just grew past its share goes,
		// not whichever client happens to account next.
		c.slowReader("max-pending-output-total", ob)
	default:
		c.maybeGrant()
		c.updateReadPause()
	}
}

// settleOutput brings pendingOut, and the totals it is part of, to what
// the transport holds, without accountOutput's limits: a lingering
// connection (its output bounded by lingering-time) drains without
// accountOutput, and the output it had held stayed counted in
// max-pending-output-total's fair share until it closed (found by a
// review). Output that begins to be held, or that the client took some
// of, moves progressAt, as accountOutput and onDrained do: stall-timeout
// must not end a linger for a stall that is not one.
func (c *conn) settleOutput() {
	if c.closing || c.closed {
		return
	}
	ob := c.t.OutboundBuffered()
	if ob == c.pendingOut {
		return
	}
	if c.pendingOut == 0 || ob < c.pendingOut {
		c.progressAt = c.srv().now()
	}
	was := c.holding()
	c.srv().pendingTotal.Add(int64(ob - c.pendingOut))
	c.pendingOut = ob
	c.countHolder(was)
}

// holding reports whether the connection holds output for its client:
// in its transport, or (HTTP/2) in its streams' pending bytes. Those that
// do are counted in Server.holders, which fairShare divides by.
func (c *conn) holding() bool { return c.pendingOut > 0 || c.h2 != nil && c.h2.held > 0 }

// countHolder counts the connection in or out of Server.holders when
// holding changed from was.
func (c *conn) countHolder(was bool) {
	if now := c.holding(); now != was {
		if now {
			c.srv().holders.Add(1)
		} else {
			c.srv().holders.Add(-1)
		}
	}
}

// fairShare is what one client may hold while all of them together hold
// more than max-pending-output-total: the total split between those that
// hold any, and never more than half of max-pending-output. Many clients
// that each stay under their own cap (reading a byte now and then, so
// that stall-timeout never ends them) are then closed as they grow.
func (s *Server) fairShare() int64 {
	return min(int64(s.opts.MaxPendingOutput/2), s.opts.MaxPendingOutputTotal/max(1, s.holders.Load()))
}

// slowReader closes a client that does not read its output. The
// response it was getting is cut: one delimited by the close ends with a
// reset (cutShort), or the client would take what it got for the whole.
func (c *conn) slowReader(limit string, held int) {
	s := c.srv()
	s.stats.SlowClients.Add(1)
	s.reject("slow_reader")
	s.opts.Logger.Info("closing a slow reader", "limit", limit, "held", held,
		"remote", c.t.RemoteAddr().String(), "sid", c.sid.String())
	c.cutShort()
}

// onDrained runs when gnet wrote some of the held output to the client.
func (c *conn) onDrained() {
	if c.m == (lingering{}) {
		c.shutWrite()
		return
	}
	c.progressAt = c.srv().now()
	c.lastActive = c.progressAt // idle-timeout counts from the socket's last take
	if c.closingOut() {
		c.closeWhenWritten()
	} else {
		c.accountOutput()
		if c.h2 != nil {
			c.h2FlushBlocked() // the room the client made
		}
	}
	c.l.flush() // credit messages, or a close
}

// tlsFailed counts the connection's failed TLS handshake, once (a read
// that fails after a timeout closed it is the same failure); it reports
// whether this was the first.
func (c *conn) tlsFailed() bool {
	if c.tls.failed {
		return false
	}
	c.tls.failed = true
	c.srv().stats.TLSFailures.Add(1)
	return true
}

// closeNow closes the connection; OnClose does the cleanup.
func (c *conn) closeNow() {
	if !c.closed && !c.closing {
		c.closing = true
		_ = c.t.Close()
	}
}

// onTraffic hands what the client sent to the protocol machine; see
// handler.OnTraffic.
func (c *conn) onTraffic() gnet.Action {
	c.lastActive = c.srv().now()
	if c.m == (lingering{}) {
		c.headBy = c.lastActive + int64(c.srv().opts.LingeringTimeout)
	}
	if c.tlsBye {
		// The TLS side is closed (closeWhenWritten): what the client
		// still sends is dropped as it comes, undecrypted.
		c.dropIn(c.tls.Conn)
		return gnet.None
	}
	if c.tls != nil && !c.tls.open && !c.tls.counted && (c.tls.queued || !c.l.admitHandshake(c)) {
		return gnet.None // its first bytes wait, unread, for a handshake slot
	}
	if c.tls != nil && !c.tlsTraffic() {
		return gnet.None
	}
	if c.closingOut() {
		// Closing once its output is written (closeWhenWritten): what
		// the client still sends is read and dropped, as a lingering
		// close does, so it neither piles up here nor resets the
		// connection at the close.
		c.dropIn(c.t)
	} else {
		for m := c.m; ; m = c.m {
			m.traffic(c)
			if c.m == m {
				break
			}
			// Upgraded: the new machine reads what followed the handshake.
		}
	}
	if c.tls != nil {
		c.tls.settle()
		switch {
		case c.tlsEOF && c.m == (h2{}):
			// The client sends nothing more: its open streams finish,
			// then the connection closes (h2ClientDone); what it sends
			// after its close_notify is dropped undecrypted. Frames it
			// sent before, still unparsed while the ring refuses a
			// message, are read first (retryRoom resumes the reading,
			// and this comes back): they may end its streams.
			c.dropIn(c.tls.Conn)
			if !c.h2ReadWaits() || c.t.InboundBuffered() == 0 {
				c.h2ClientDone()
			}
		case c.tlsEOF && c.m == (http1{}) && c.reading && !c.closeAfter && !c.m.readWaits(c) && len(c.tls.in) == 0:
			// A request body cut by the client's close_notify can never
			// complete: closed at once, as a plain connection's FIN
			// closes it, and its node gets `end`. Before, the node
			// waited for the rest of the body until timeout, and the
			// connection with it. Not when the proxy already answered
			// (closeAfter: its answer goes out first), nor while body
			// already read waits for the ring (it may be the whole
			// body: it goes on, and the request is answered).
			c.closeNow()
		case c.tlsEOF:
			// What the client sends after its close_notify is dropped
			// undecrypted (RFC 8446 §6.1), not kept in gnet's buffer.
			c.dropIn(c.tls.Conn)
			c.closeAfter = true
			c.l.markDirty(c) // the flush closes it when no response is due
		}
	}
	c.l.rbuf, c.l.rbufFor = nil, nil // the read target served this OnTraffic
	if c.t.OutboundBuffered() != c.pendingOut {
		// Output the transport wrote while it read: TLS 1.3 answers a
		// client's KeyUpdate so, with no response queued. A client that
		// asks for them and never reads is bounded by max-pending-output
		// and stall-timeout like any other; before, nothing counted
		// that output, and it grew without bound.
		c.accountOutput()
	}
	c.updateReadPause()
	c.l.flush()
	return gnet.None
}

// tlsTraffic decrypts what the client sent; it reports whether the
// protocol machine may read (the handshake is done and nothing failed).
func (c *conn) tlsTraffic() bool {
	s := c.srv()
	opened, err := c.tls.pump()
	if opened {
		s.stats.TLSHandshakes.Add(1)
		c.l.handshakeOver(c)
		// The request head's deadline starts now.
		c.headBy = s.now() + int64(s.opts.HeaderTimeout)
		if c.tls.state().NegotiatedProtocol == "h2" {
			c.startH2()
		}
	}
	if errors.Is(err, io.EOF) && c.tls.open {
		// close_notify: what came before it is read (as a plain
		// connection's last bytes before its EOF), then the connection
		// closes once the response in flight, if any, is complete.
		c.tlsEOF = true
		return true
	}
	if err != nil {
		if !c.tls.open && c.tlsFailed() {
			s.opts.Logger.Debug("TLS handshake failed", "remote", c.t.RemoteAddr().String(), "err", err)
		}
		c.closeNow()
		return false
	}
	return c.tls.open
}

// send queues a message for the session's node. It never waits: a
// message the ring refuses waits in outq, in order with the ones after
// it, and the connection stops being read until the bridge has room
// (loop.retryRing); the other connections of the loop go on.
func (c *conn) send(typ string, body []byte) {
	c.endSent = typ == "end"
	c.sendTo(c.node, c.sid, typ, body, nil, c.reqSeq)
}

// sendBuf is send for a body in a pooled buffer: the message takes the
// caller's reference.
func (c *conn) sendBuf(typ string, buf *bufpool.Buf) {
	c.endSent = false
	c.sendTo(c.node, c.sid, typ, buf.B, buf, c.reqSeq)
}

// sendTo queues a message for node n about session sid (the connection's
// own, or one of its HTTP/2 streams').
func (c *conn) sendTo(n *session.Node, sid session.SID, typ string, body []byte, buf *bufpool.Buf, tag uint32) {
	// The loop's scratch message: a local would escape to the heap
	// through the ring's interface (one allocation per message).
	m := &c.l.msg
	*m = zmqbridge.Msg{Node: n.Index, SID: sid, Type: typ, Body: body, Tag: tag, Buf: buf}
	if !c.queuedFor(m.Node) && !c.l.orphanFor(m.Node) && c.l.trySend(m) {
		*m = zmqbridge.Msg{}
		return
	}
	c.queueOut(*m)
	*m = zmqbridge.Msg{}
}

// queuedFor reports whether messages for node n wait in outq (a new one
// must go after them).
func (c *conn) queuedFor(n int) bool {
	for i := range c.outq {
		if c.outq[i].Node == n {
			return true
		}
	}
	return false
}

// leave drops what waits in outq for node n, which the session leaves
// (failover, rebind), and tells n the session is over; that `end` waits
// with the loop, not the connection, if n is stuck.
func (c *conn) leave(n *session.Node) { c.leaveSession(n, c.sid) }

// leaveSession is leave for session sid of the connection (its own, or
// one of its HTTP/2 streams'): only that session's messages are dropped.
func (c *conn) leaveSession(n *session.Node, sid session.SID) {
	c.dropQueued(n, sid)
	c.endNow(n, sid)
	c.updateReadPause()
}

// endNow tells node n that session sid is over, ahead of what other
// sessions of the connection have waiting for n; after the loop's
// orphaned `end`s for n, if any.
func (c *conn) endNow(n *session.Node, sid session.SID) {
	end := &c.l.msg // the loop's scratch: a local would escape through the ring
	*end = zmqbridge.Msg{Node: n.Index, SID: sid, Type: "end"}
	if c.l.orphanFor(n.Index) || !c.l.trySend(end) {
		c.l.orphan(*end)
	}
	*end = zmqbridge.Msg{}
}

// dropQueued drops what waits in outq for node n about session sid.
func (c *conn) dropQueued(n *session.Node, sid session.SID) {
	keep := c.outq[:0]
	for _, m := range c.outq {
		if m.Node != n.Index || m.SID != [16]byte(sid) {
			keep = append(keep, m)
		} else {
			m.Buf.Release() // dropped: its pooled buffer goes back (nil-safe)
		}
	}
	clear(c.outq[len(keep):])
	if len(keep) == 0 {
		keep = nil
	}
	c.outq = keep
	c.m.outqMoved(c, nil)
}

// queueOut keeps m until the ring has room. Room is asked for every
// message, not only the first: on HTTP/2 the ones after it may wait for
// another node, or for the ring itself.
func (c *conn) queueOut(m zmqbridge.Msg) {
	c.outq = append(c.outq, m)
	last := &c.outq[len(c.outq)-1]
	if len(c.outq) == 1 {
		c.srv().stats.RingFull.Add(1)
		c.l.waitRoom(c, last)
	} else {
		c.l.askRoom(last)
	}
	c.m.outqMoved(c, last)
	c.updateReadPause()
}

// retryOut pushes the messages the ring refused; it reports whether
// all went.
func (c *conn) retryOut(stuck *[]int) bool {
	c.outq = retryMsgs(c.srv().ring, c.outq, stuck)
	if len(c.outq) == 0 {
		c.outq = nil
	}
	c.m.outqMoved(c, nil) // also when none went: what waits for what may have changed
	return len(c.outq) == 0
}

// askRoomAll asks for Room for what waits in outq: once for each run of
// messages for one node.
func (c *conn) askRoomAll() {
	for i := range c.outq {
		if i == 0 || c.outq[i].Node != c.outq[i-1].Node {
			c.l.askRoom(&c.outq[i])
		}
	}
}

// retryMsgs pushes msgs in order per node: a message for a stuck node
// stays, with every later one for that node, while the others go; a full
// ring stops it. It returns what stays. stuck lists the nodes whose
// messages stay (shared by one retry round, so that nothing overtakes an
// earlier waiter for the same node) and grows with them.
func retryMsgs(b ringSender, msgs []zmqbridge.Msg, stuck *[]int) []zmqbridge.Msg {
	keep := msgs[:0]
	for i := range msgs {
		m := msgs[i]
		switch {
		case slices.Contains(*stuck, m.Node):
			keep = append(keep, m)
		case b.NodeFull(m.Node):
			*stuck = append(*stuck, m.Node)
			keep = append(keep, m)
		case !b.TrySend(&m):
			// The ring is full: this and every later message stay, and
			// their nodes count as stuck for the rest of the round, so
			// that no one else's message for them overtakes these.
			for _, r := range msgs[i:] {
				if !slices.Contains(*stuck, r.Node) {
					*stuck = append(*stuck, r.Node)
				}
			}
			keep = append(keep, msgs[i:]...)
			clear(msgs[len(keep):])
			return keep
		}
	}
	clear(msgs[len(keep):])
	return keep
}

// sendEnd tells the node the session is over.
func (c *conn) sendEnd() {
	if c.node == nil {
		return
	}
	c.send("end", nil)
}

// updateReadPause stops reading the client while its messages wait for
// the ring (machine.readWaits), while max-read-ahead bytes of pipelined
// requests wait for the response in flight, or while half of
// max-pending-output waits for it to read (a client that uploads without
// reading what it is sent, e.g. to an echoing node); it resumes reading
// when none holds.
func (c *conn) updateReadPause() {
	if c.closed || c.closing {
		return
	}
	o := &c.srv().opts
	// A closing connection drops what it reads: reading it never waits.
	want := !c.closingOut() && c.m != (lingering{}) && (c.m.readWaits(c) || c.pendingOut > o.MaxPendingOutput/2 ||
		c.tls != nil && c.tls.queued || // waits for a handshake slot
		c.m.readAhead(c) && c.t.InboundBuffered() >= o.MaxReadAhead)
	if want == c.readPaused {
		return
	}
	var err error
	if want {
		err = c.t.PauseRead()
	} else {
		err = c.t.ResumeRead()
	}
	if err != nil {
		c.closeNow()
		return
	}
	c.readPaused = want
	if !want && (c.inputDue() || c.tls != nil && c.tls.Conn.InboundBuffered() > 0) {
		c.l.resume = append(c.l.resume, c) // bytes read before the pause
	}
}

// inputDue reports whether onTraffic has work without a new read: bytes
// read before, or the end of a request whose last message waited for
// room in the ring (the client sent everything: no read comes to
// finish it).
func (c *conn) inputDue() bool {
	return c.t.InboundBuffered() > 0 || c.parser != nil && c.parser.EndDue()
}

// checkTimeouts enforces the stall timeout, then the machine's own.
func (c *conn) checkTimeouts(now int64) {
	s := c.srv()
	switch {
	case c.closed:
	case c.tls != nil && !c.tls.open:
		switch {
		case now > c.headBy && c.tls.tc.State() == tlsmem.StateNew && !c.tls.queued && c.t.InboundBuffered() == 0:
			// Not a byte since accept (none fed, none waiting for a
			// handshake slot): no handshake failed, the socket was
			// silent, as a plain listener counts it.
			s.stats.SilentClosed.Add(1)
			s.reject("silent_connection")
			c.closeNow()
		case now > c.headBy:
			c.tlsFailed()
			s.opts.Logger.Debug("TLS handshake timed out", "remote", c.t.RemoteAddr().String())
			c.closeNow()
		case c.tls.counted && c.l.hsEvict > 0 && now-max(c.lastActive, c.tls.slotAt) > int64(s.opts.TLSHandshakeIdleTimeout):
			// Others wait for its slot while its client says nothing:
			// as many go as wait.
			c.l.hsEvict--
			c.tlsFailed()
			s.reject("tls_handshake_idle")
			s.opts.Logger.Debug("TLS handshake closed: its client silent while others wait", "remote", c.t.RemoteAddr().String())
			c.closeNow()
		}
	case c.pendingOut > 0 && now-c.progressAt > int64(s.opts.StallTimeout):
		c.slowReader("stall-timeout", c.pendingOut)
	default:
		c.m.timeouts(c, now)
	}
}
