package server

import (
	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/blastbeat/blastbeat/zmqbridge"
)

// machine is a connection's protocol machine: it reads the client's bytes
// from the transport and frames the node's replies for the client. A
// connection starts with http1; a WebSocket upgrade swaps in wsMachine
// and h2 (http2.go) is a third. Nothing else asks which protocol a connection
// speaks. Every method runs on the connection's loop.
type machine interface {
	// traffic parses what the client sent, as far as it can.
	traffic(c *conn)
	// apply frames a reply of the session's own node.
	apply(c *conn, r *reply)
	// undeliverable handles a message of the session that could not be
	// handed to its node.
	undeliverable(c *conn, r *reply)
	// timeouts enforces the machine's deadlines at now (unix ns).
	timeouts(c *conn, now int64)
	// drainIdle is the server draining: close the connection if it is
	// between requests, or tell the client it is going away.
	drainIdle(c *conn)
	// readAhead reports whether unread input now waits for a response
	// (so reading pauses at max-read-ahead).
	readAhead(c *conn) bool
	// readWaits reports whether reading waits for the messages in outq
	// (the ring refused them). HTTP/1.x and WebSocket wait for any: the
	// connection carries one session. HTTP/2 reads on while they only
	// wait for stuck nodes (http2_queue.go).
	readWaits(c *conn) bool
	// outqMoved is told that m joined outq, or (m nil) that messages
	// left it.
	outqMoved(c *conn, m *zmqbridge.Msg)
}

// http1 is the HTTP/1.x machine (http1.go, reply.go).
type http1 struct{}

func (http1) traffic(c *conn)                 { c.httpTraffic() }
func (http1) apply(c *conn, r *reply)         { c.applyOwn(r, c.httpApply) }
func (http1) undeliverable(c *conn, r *reply) { c.httpUndeliverable(r) }
func (http1) timeouts(c *conn, now int64)     { c.httpTimeouts(now) }
func (http1) readAhead(c *conn) bool          { return c.phase != phIdle }
func (http1) readWaits(c *conn) bool          { return len(c.outq) > 0 }
func (http1) outqMoved(*conn, *zmqbridge.Msg) {}
func (http1) drainIdle(c *conn) {
	if c.idle() {
		// After the output it holds (a response still draining).
		c.closeAfter = true
		c.closeWhenWritten()
	}
}

// wsMachine is a WebSocket session after the upgrade (websocket.go).
type wsMachine struct{}

func (wsMachine) traffic(c *conn)         { c.wsTraffic() }
func (wsMachine) apply(c *conn, r *reply) { c.applyOwn(r, c.wsApply) }
func (wsMachine) undeliverable(c *conn, _ *reply) {
	c.wsClose(ws.StatusInternalServerError, "backend unreachable")
}
func (wsMachine) readAhead(*conn) bool            { return false }
func (wsMachine) readWaits(c *conn) bool          { return len(c.outq) > 0 }
func (wsMachine) outqMoved(*conn, *zmqbridge.Msg) {}
func (wsMachine) drainIdle(c *conn)               { c.wsClose(ws.StatusGoingAway, "server shutting down") }
func (wsMachine) timeouts(c *conn, now int64) {
	s := c.srv()
	switch {
	case c.node != nil && !c.node.Serves(c.nodeEpoch, s.heardAt(now), s.deadAfter):
		c.wsClose(ws.StatusGoingAway, "backend node gone")
	case c.wsHolding() && c.headBy == 0:
		// Held since reading waited for the node (wsTraffic had no
		// deadline to keep then): counted from now.
		c.headBy = now + int64(s.opts.WebSocketMessageTimeout)
	case c.wsHolding() && now > c.headBy:
		// A message begun, held in memory, and not completed in
		// websocket-message-timeout (wsMessageBy).
		s.reject("websocket_message_timeout")
		c.wsClose(ws.StatusPolicyViolation, "message not completed in time")
	}
}

// lingering is a connection closing after output that must reach the
// client (an HTTP/2 GOAWAY after a fatal error, a last response whose
// client may still be sending: closeWhenWritten): its output is written,
// its write side shut down, and what the client still sends is read and
// dropped until it closes (or timeouts ends it); closing with unread
// input would reset the connection and destroy that output (nginx's
// lingering_close).
type lingering struct{}

func (lingering) traffic(c *conn)                 { c.dropIn(c.t) }
func (lingering) apply(*conn, *reply)             {}
func (lingering) undeliverable(*conn, *reply)     {}
func (lingering) readAhead(*conn) bool            { return false }
func (lingering) readWaits(*conn) bool            { return false } // it drops what it reads
func (lingering) outqMoved(*conn, *zmqbridge.Msg) {}
func (lingering) drainIdle(*conn)                 {} // bounded by lingering-time already

// timeouts ends a linger once the client has sent nothing for
// lingering-timeout while the kernel holds no output for it (closing
// with output unsent could reset the connection and lose it), and at
// lingering-time in any case.
func (lingering) timeouts(c *conn, now int64) {
	if now > c.answerBy || now > c.headBy && c.unsent() == 0 {
		c.closeNow()
	}
}

// lingerClose closes the connection gracefully after what is queued.
func (c *conn) lingerClose() {
	c.startLinger()
	c.l.markDirty(c)
}

// startLinger makes c a lingering connection. It keeps its bounds in
// headBy (lingering-timeout: pushed back by what the client sends) and
// answerBy (lingering-time): a lingering connection has no request in
// flight.
func (c *conn) startLinger() {
	s := c.srv()
	now := s.now()
	c.m = lingering{}
	c.headBy = now + int64(s.opts.LingeringTimeout)
	c.answerBy = now + int64(s.opts.LingeringTime)
}

// unsent is the output not yet acknowledged by the client: what gnet
// holds, and what the kernel holds (SIOCOUTQ).
func (c *conn) unsent() int {
	n := c.t.OutboundBuffered()
	if fd, ok := c.sockFD(); ok {
		if q, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ); err == nil {
			n += q
		}
	}
	return n
}

// shutWrite ends the output of a lingering connection once it is all
// written (the client then sees EOF after the last frame).
func (c *conn) shutWrite() {
	c.settleOutput()
	if c.shut || c.closing || c.closed || c.t.OutboundBuffered() > 0 {
		return
	}
	if c.tls != nil && !c.tlsBye {
		// close_notify first, as closeWhenWritten sends it: without it
		// a TLS client takes the end for a truncation. (What the client
		// sends from now on is dropped undecrypted: onTraffic.)
		c.tlsBye = true
		c.tls.closeTLS()
	}
	if c.tls != nil && (c.tls.closeIn || c.closed || c.closing || c.t.OutboundBuffered() > 0) {
		// Its close_notify waits for the TLS side (closeIn: written when
		// it is free) or for the socket (onDrained comes back here); or
		// the write failed.
		return
	}
	fd, ok := c.sockFD()
	if !ok {
		c.closeNow()
		return
	}
	c.shut = true
	if unix.Shutdown(fd, unix.SHUT_WR) != nil {
		c.closeNow()
	}
}
