package server

import (
	"time"

	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
)

// exchange is one request as the metrics and the access log see it: from
// its head to its response's end. HTTP/1.x has one per connection at a
// time (in the conn's stream), HTTP/2 one per stream. Owned by the loop.
type exchange struct {
	start  int64 // unix ns: the head was read; 0: none open
	sentAt int64 // unix ns: it went to a node; 0: the proxy answered it
	status int   // the final status; 0: none yet
	bytes  int64 // response bytes queued for the client
	vhost  *session.VHost
	entry  *accessEntry // the request line and fields, with the access log on
}

// begin opens an exchange for request r (its fields are copied for the
// access log only when there is one).
func (c *conn) begin(ex *exchange, r *protocol.Request, proto string) {
	*ex = exchange{start: c.l.clock()}
	if c.srv().alog != nil {
		ci := c.connInfo()
		ex.entry = newAccessEntry(r, proto, &ci)
	}
}

// forwarded records that the request went to a node.
func (ex *exchange) forwarded(vh *session.VHost, now int64) {
	ex.vhost = vh
	ex.sentAt = now
}

// responded records the final response head's status (or a 101).
func (l *loop) responded(ex *exchange, status int) {
	if ex.start == 0 || ex.status != 0 {
		return
	}
	ex.status = status
	if ex.sentAt != 0 {
		l.metrics.respHead.observe(time.Duration(l.clock() - ex.sentAt))
	}
}

// finish closes the exchange: the status class of its vhost, its latency,
// its access log line. node and sid are its session's (nil, zero when the
// proxy answered it alone).
func (l *loop) finish(ex *exchange, node *session.Node, sid session.SID) {
	if ex.start == 0 {
		return
	}
	now := l.clock()
	class := 0
	if ex.status >= 100 && ex.status < 600 {
		class = ex.status / 100
	}
	if ex.vhost != nil && ex.vhost.Stats != nil {
		ex.vhost.Stats.Count(l.idx, class)
	} else {
		l.metrics.noVHost[class].Add(1)
	}
	d := time.Duration(now - ex.start)
	l.metrics.request.observe(d)
	if ex.status != 0 && !l.s.served.Load() {
		l.s.firstServed()
	}
	if ex.entry != nil && l.s.alog != nil {
		// The line's time is the wall clock's (ex.start is on stamp's).
		l.s.alog.write(l.idx, ex, node, sid, d, time.Now().Add(-d))
	}
	ex.start, ex.entry = 0, nil
}

// clock is the time for an exchange's timing: read once per loop turn
// (the first use), as nginx caches its time per event loop iteration;
// outside a turn, now. A request's latency is then exact to a turn's
// length, far below the histograms' first bound (1 ms), and a request
// costs no clock reads but its turn's share.
func (l *loop) clock() int64 {
	if !l.inTurn {
		return l.s.stamp(time.Now())
	}
	if l.turnClock == 0 {
		l.turnClock = l.s.stamp(time.Now())
	}
	return l.turnClock
}

// firstServed runs Options.FirstRequest, once, off the loop, when the
// first response was completed.
func (s *Server) firstServed() {
	if s.served.CompareAndSwap(false, true) && s.opts.FirstRequest != nil {
		go s.opts.FirstRequest()
	}
}
