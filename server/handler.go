package server

import (
	"time"

	"github.com/panjf2000/gnet/v2"
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
	c := &conn{gc: gc, l: l, lastActive: s.now()}
	sid, err := l.table.Add(c)
	if err != nil {
		s.stats.ConnsRefused.Add(1)
		return nil, gnet.Close
	}
	c.sid = sid
	gc.SetContext(c)
	s.conns.Add(1)
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
	c.unstall()
	if c.node != nil {
		c.sendEnd()
		c.node.Unbind()
		c.node = nil
	}
	if c.parser != nil {
		c.l.releaseParser(c.parser)
		c.parser = nil
	}
	c.retry, c.out = nil, nil
	c.l.table.Remove(&c.sid)
	gc.SetContext(nil)
	s.conns.Add(-1)
	return gnet.None
}

// OnTraffic parses the client's bytes.
func (h *handler) OnTraffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.Close
	}
	return c.onTraffic()
}
