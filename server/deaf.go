package server

import "time"

// While the loops have not applied node-read-ahead of what the bridges
// read, the bridges read nothing from nodes (bridgeHandler.Paused): not
// their replies, and not their pongs either. Silence the proxy cannot
// hear is not the node's: a loop that lags for 3 × ping-freq (a stalled
// loop, or every loop starved of CPU) must not make every node look dead,
// failing every session and request of every loop. So nodes' silence is
// judged on a heard clock, the wall clock less the time the bridges did
// not read (heardAt): it stands still while they do not. A node that died
// meanwhile is found dead after dead-after of reading; under a sustained
// overload that keeps reading paused a fraction f of the time, after
// dead-after / (1 − f). Nodes' last_seen stay wall times (Node.Heard).

// heardClock is the heard clock's state: off, the time the bridges did
// not read in pauses that ended; since, when the pause under way began
// (unix ns; 0: none). Replaced whole at each edge, read lock-free.
type heardClock struct{ off, since int64 }

// heardAt is now on the heard clock.
func (s *Server) heardAt(now int64) int64 {
	c := s.heard.Load()
	if c.since != 0 && c.since < now {
		now = c.since
	}
	return now - c.off
}

// deafEdge records that the bridges stop reading from nodes (p) or read
// again.
func (s *Server) deafEdge(p bool) {
	s.deafMu.Lock()
	defer s.deafMu.Unlock()
	c := s.heard.Load()
	if p == (c.since != 0) {
		return // another bridge saw it first
	}
	now := max(s.now(), 1)
	if p {
		s.heard.Store(&heardClock{off: c.off, since: now})
	} else {
		s.heard.Store(&heardClock{off: c.off + max(now-c.since, 0)})
	}
}

// deafPause is the pause under way as the ticker sees it (ticker-only).
type deafPause struct {
	since  int64 // the pause warned about; 0: none
	warned bool
}

// watchDeaf warns, once a pause, when the bridges have not read from
// nodes for the dead-after time (the loops lag that far behind: a
// stalled loop, or CPU starvation; meanwhile no node is found dead), and
// says when that pause ended. On the ticker.
func (s *Server) watchDeaf(w *deafPause, now int64) {
	c := s.heard.Load()
	if c.since != w.since {
		if w.warned {
			s.opts.Logger.Info("reading from nodes again: node liveness is judged again",
				"paused", time.Duration(now-w.since).Round(time.Millisecond))
		}
		*w = deafPause{since: c.since}
	}
	if c.since != 0 && !w.warned && now-c.since > int64(s.deadAfter) {
		w.warned = true
		s.opts.Logger.Warn("the event loops have not applied node replies for the dead-after time: reading from nodes is paused (node-read-ahead), and nodes' silence is not counted meanwhile",
			"paused", time.Duration(now-c.since).Round(time.Millisecond), "node-read-ahead", s.opts.NodeReadAhead, "inboxed", s.inboxed.Load())
	}
}
