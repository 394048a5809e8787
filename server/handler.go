package server

import (
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/blastbeat/blastbeat/zmqbridge"
)

// handler is the Server seen by gnet: its methods run on the event loops.
type handler Server

// OnBoot records the engine.
func (h *handler) OnBoot(eng gnet.Engine) gnet.Action {
	h.eng = eng
	close(h.booted)
	return gnet.None
}

// OnShutdown does nothing: Shutdown does the work.
func (h *handler) OnShutdown(gnet.Engine) {}

// OnTick is unused (the server's ticker drives sweeps per loop).
func (h *handler) OnTick() (time.Duration, gnet.Action) { return 0, gnet.None }

// OnOpen gives the connection its session.
func (h *handler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := (*Server)(h)
	if s.draining.Load() {
		return nil, gnet.Close
	}
	if s.conns.Load() >= int64(s.opts.MaxConnections) {
		s.stats.ConnsRefused.Add(1)
		return nil, gnet.Close
	}
	l := s.loopOf(gc.EventLoop())
	now := s.now()
	// The header deadline starts at accept: a client that says nothing
	// gives its slot back at header-timeout.
	c := &conn{t: gc, m: http1{}, l: l, ln: s.lns.Load().of(gc.LocalAddr()), lastActive: now, headBy: now + int64(s.opts.HeaderTimeout)}
	sid, err := l.table.Add(c)
	if err != nil {
		s.stats.ConnsRefused.Add(1)
		return nil, gnet.Close
	}
	c.sid = sid
	gc.SetContext(c)
	s.conns.Add(1)
	c.ln.conns.Add(1)
	c.opened(c.ln.tls != nil)
	if c.ln.tls != nil {
		// TLS: the handshake must end by tls-handshake-timeout; at most
		// max-tls-handshakes run at once, the others wait unread.
		c.tls = newTLSTransport(gc, l, c.ln.tls, s.opts.MaxClientHello)
		c.t = c.tls
		c.headBy = now + int64(s.opts.TLSHandshakeTimeout)
	}
	return nil, gnet.None
}

// OnClose ends the session: the node gets `end`.
func (h *handler) OnClose(gc gnet.Conn, _ error) gnet.Action {
	s := (*Server)(h)
	c, ok := gc.Context().(*conn)
	if !ok || c.closed {
		return gnet.None
	}
	c.closed = true
	c.closedMetrics()
	c.l.finish(&c.ex, c.node, c.sid) // a request cut short: status 0
	if c.tls != nil {
		c.tls.closeTLS() // ends a handshake goroutine still running
		c.l.handshakeOver(c)
	}
	if c.h2 != nil {
		c.h2Gone() // every stream's node gets end
	}
	if c.pendingOut > 0 {
		s.pendingTotal.Add(-int64(c.pendingOut))
		c.pendingOut = 0
		c.countHolder(true) // its streams' held output went with h2Gone
	}
	if c.node != nil {
		// What the ring refused is dropped; the node still gets `end`,
		// after everything it was sent (loop.orphans keep the order).
		// Once: a failed request already told the node (endSent), unless
		// that `end` still waits in outq, which is dropped here.
		end := &c.l.endMsg // the loop's: a local would escape through the ring
		*end = zmqbridge.Msg{Node: c.node.Index, SID: c.sid, Type: "end"}
		switch queued := c.queuedFor(c.node.Index); {
		case c.endSent && !queued:
		case queued || !c.l.trySend(end):
			c.l.orphan(*end)
		}
		*end = zmqbridge.Msg{}
		c.node.Unbind()
		c.node = nil
	}
	for _, m := range c.outq {
		// The `end`s of HTTP/2 streams (h2Gone above) that waited behind
		// messages the ring refused: the rest is dropped with the
		// connection, but every stream's node still gets its `end`.
		if m.Type == "end" && m.SID != [16]byte(c.sid) {
			c.l.orphan(m)
			continue
		}
		m.Buf.Release() // dropped: its pooled buffer goes back (nil-safe)
	}
	c.outq = nil
	if c.parser != nil {
		c.l.releaseParser(c.parser)
		c.parser = nil
	}
	c.dropRetry(false) // gives the pooled buffers back
	c.l.putRetrySlice(c.retry)
	c.retry, c.out = nil, nil
	c.l.table.Remove(&c.sid)
	gc.SetContext(nil)
	s.conns.Add(-1)
	c.ln.conns.Add(-1)
	return gnet.None
}

// OnTurnStart is gnet's (patched, patch 12) notice that loop el starts
// handling what one epoll_wait returned: messages for the bridge wait
// for the turn's end (loop.trySend).
func (h *handler) OnTurnStart(el gnet.EventLoop) {
	l := (*Server)(h).loopOf(el)
	l.inTurn, l.turnClock = true, 0
}

// OnTurnEnd wakes the bridge once for the messages the turn queued.
func (h *handler) OnTurnEnd(el gnet.EventLoop) {
	s := (*Server)(h)
	l := s.loopOf(el)
	l.inTurn = false
	l.releaseReadBufs()
	if l.kick {
		l.kick = false
		s.ring.Kick()
	}
}

var _ gnet.TurnHandler = (*handler)(nil)

// OnOutboundDrained is gnet's (patched) notice that a client read some
// of the output held for it.
func (h *handler) OnOutboundDrained(gc gnet.Conn, _ int) {
	if c, ok := gc.Context().(*conn); ok && !c.closed {
		c.onDrained()
	}
}

// OnTraffic parses the client's bytes.
func (h *handler) OnTraffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.Close
	}
	return c.onTraffic()
}
