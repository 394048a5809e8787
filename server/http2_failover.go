package server

import (
	"github.com/blastbeat/blastbeat/internal/bufpool"
)

// Retry and failover of an HTTP/2 stream, as for an HTTP/1.x request
// (stream.go's resend): while no byte of the response was sent, the
// stream's request (its head and the body kept within retry-buffer) goes
// to another live node of its virtual host on the node's `retry`, on a
// head the bridge could not deliver, and on the death of the node.

// h2Keep keeps a piece of the stream's request for a retry (stream.keep).
func (c *conn) h2Keep(st *h2Stream, piece []byte, buf *bufpool.Buf) {
	// retry-buffer is the connection's, shared by its streams: per
	// stream, a client's concurrent uploads (each of tiny DATA frames,
	// a pooled buffer each) would hold http2-max-streams times it.
	// A request's head is kept whatever the others keep (heads are
	// bounded by max-header-size): an upload on the connection must not
	// make its small requests impossible to retry.
	before := st.retryBytes
	budget := c.srv().opts.RetryBuffer
	if len(st.retry) > 0 {
		budget -= c.h2.retryHeld - before
	}
	st.keep(piece, buf, budget)
	c.h2.retryHeld += st.retryBytes - before
}

// h2DropRetry is stream.dropRetry, keeping the connection's count.
func (c *conn) h2DropRetry(st *h2Stream, lost bool) {
	c.h2.retryHeld -= st.retryBytes
	st.dropRetry(lost)
}

// h2Resend sends the stream's kept request to another live node; it
// reports whether one took it.
func (c *conn) h2Resend(st *h2Stream) bool {
	s := c.srv()
	if st.retryLost || len(st.retry) == 0 || int(st.hops) >= s.opts.MaxHops || st.vhost == nil {
		return false
	}
	n := st.vhost.Pick(s.heardAt(s.now()), s.deadAfter, st.node)
	if n == nil {
		return false
	}
	st.hops++
	s.stats.Retries.Add(1)
	c.leaveSession(st.node, st.sid) // the old node drops what it kept of the stream
	st.node.Unbind()
	st.node, st.nodeEpoch = n, n.Epoch()
	n.Bind()
	for i, b := range st.retry {
		t := "body"
		if i == 0 {
			t = "uwsgi" // an HTTP/2 head always goes as an environ
		}
		body, buf := b.again()
		c.sendTo(st.node, st.sid, t, body, buf, st.reqSeq)
		if i == 0 {
			c.h2StartCredit(st)
		}
	}
	st.answerBy = c.l.clock() + int64(st.vhost.Timeout)
	return true
}

// h2Failover moves a stream whose node failed before answering, or
// answers 502 when no other node can take it.
func (c *conn) h2Failover(st *h2Stream, msg string) {
	if !c.h2Resend(st) {
		c.h2Respond(st, 502, msg)
	}
}
