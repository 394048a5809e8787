package server

import (
	"time"
	"unsafe"

	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
)

// inboxCost is what a reply with body counts against node-read-ahead
// while it waits for its loop: its body and the reply itself, so that a
// flood of empty messages is bounded too (counting bodies alone, it never
// paused the bridges).
func inboxCost(body []byte) int64 { return int64(len(body)) + int64(unsafe.Sizeof(reply{})) }

// apply executes one backend message on the session it names. Runs on
// the loop.
func (c *conn) apply(r *reply) {
	if c.closed || c.closing {
		// Closing (gnet closes it at its next turn): what would be
		// written would go past the checks that closed it (a slow
		// reader's cap), and nobody reads it.
		c.srv().stats.Stale.Add(1)
		return
	}
	c.m.apply(c, r)
}

// applyOwn is apply for the machines with one session per connection
// (http1, wsMachine): failed sends, authorization and credit, then frame.
func (c *conn) applyOwn(r *reply, frame func(*reply)) {
	s := c.srv()
	if r.typ == rUndeliverable {
		c.undeliverable(r)
		return
	}
	// Authorization: only the node bound to the sid may touch it.
	if r.node != c.node {
		s.stats.Unauthorized.Add(1)
		return
	}
	if c.creditOn {
		switch r.typ {
		case rBody, rChunk, rWebSocket, rWebSocketBinary:
			c.credit -= int64(len(r.body)) // its grant shrinks (PROTOCOL.md credits)
		}
	}
	frame(r)
}

// httpApply frames a node's reply for an HTTP/1.x client.
func (c *conn) httpApply(r *reply) {
	s := c.srv()
	switch r.typ {
	case rHeaders:
		c.onResponseHead(r.body)
	case rUwsgi:
		if c.phase != phAwaitHead {
			// Checked before the conversion: a malformed head between
			// requests must not answer a request nobody made.
			s.stats.Unexpected.Add(1)
			return
		}
		head, err := protocol.UwsgiResponseToHead(nil, r.body)
		if err != nil {
			c.badResponse()
			return
		}
		c.onResponseHead(head)
	case rBody:
		c.onResponseBody(r.body)
	case rChunk:
		c.onResponseChunk(r.body)
	case rEnd:
		c.onResponseEnd()
	case rRetry:
		c.onRetry()
	default:
		// WebSocket replies to an HTTP session are not valid here.
		s.stats.Unexpected.Add(1)
	}
	if c.phase == phStreaming {
		// response-idle-timeout counts from the node's last message.
		c.answerBy = c.l.clock() + int64(c.vhost.ResponseIdleTimeout)
	}
}

// responseIdle ends a response whose node has sent nothing of it for
// response-idle-timeout (answerBy, pushed by each of its messages) while
// nothing held it up: no output waits for the client, and the node has
// credit to send with. When something does, the silence is the client's
// doing (or the proxy's), and the count starts over. It reports whether
// the response ended.
func responseIdle(s *Server, now int64, answerBy *int64, limit time.Duration, clientBehind bool, node *session.Node, sid session.SID) bool {
	if limit <= 0 || now <= *answerBy {
		return false
	}
	if clientBehind {
		*answerBy = now + int64(limit)
		return false
	}
	s.reject("response_idle_timeout")
	s.opts.Logger.Info("ending a response its node stopped sending", "limit", "response-idle-timeout",
		"node", node.Name, "sid", sid.String())
	return true
}

// undeliverable handles a message the bridge could not hand to the node.
func (c *conn) undeliverable(r *reply) {
	switch {
	case r.node != c.node:
		// The session moved on (retry/failover) since.
	default:
		c.m.undeliverable(c, r)
	}
}

// httpUndeliverable fails the HTTP/1.x request whose message was lost.
func (c *conn) httpUndeliverable(r *reply) {
	switch {
	case r.tag != c.reqSeq || c.phase == phIdle:
		// A lost `end` or trailing body of an earlier request: the request
		// in flight now is not affected.
	case r.headLost:
		c.nodeFailed() // the node never saw this request: fail over
	case c.phase == phAwaitHead:
		// The node has the head but lost part of the body: running the
		// request elsewhere could run it twice.
		c.sendEnd()
		c.fail(502, "backend node lost part of the request")
	default:
		c.cutShort()
	}
}

func (c *conn) onResponseHead(raw []byte) {
	s := c.srv()
	if c.phase != phAwaitHead {
		s.stats.Unexpected.Add(1)
		return
	}
	h, n, err := protocol.ParseResponseHead(raw)
	if err == nil && h.Upgrade && c.wsAwait != nil {
		c.nodeAcceptedWebSocket(raw[:n])
		return
	}
	if err != nil || h.Upgrade {
		c.badResponse()
		return
	}
	if h.Status >= 200 {
		c.wsAwait = nil // refused: the answer is an HTTP response
	}
	client10 := c.minor == 0
	if h.Status < 200 {
		// An interim response (100 Continue, 103 Early Hints): passed on
		// to HTTP/1.1 clients (RFC 9110 §15.2: not to 1.0 ones); the final
		// head is still to come.
		if !client10 {
			c.queueOwn(c.l.used(protocol.RewriteResponseHead(c.l.arenaRoom(n+16), raw[:n], false, false, false, nil)))
		}
		return
	}
	c.dechunk = false
	switch {
	case h.NoBody(c.headReq) || h.ContentLength == 0:
		c.mode = modeNone
	case h.ContentLength >= 0:
		c.mode, c.remaining = modeLength, h.ContentLength
	case h.Chunked && !client10:
		c.mode = modeChunked
	default:
		c.mode = modeClose
		c.dechunk = h.Chunked
	}
	// Body bytes for a response that has none (HEAD, 204, 304): dropped,
	// and the connection ends with this response (its head says so). A
	// node that over-sends may send more, and nothing tells the next
	// request's messages on this session from stray ones.
	overSent := c.mode == modeNone && n < len(raw)
	if overSent {
		s.stats.Unexpected.Add(1)
	}
	if !c.keepAlive || h.Close || c.mode == modeClose || overSent || s.Stopping() {
		c.closeAfter = true
	}
	// HTTP/1.0 gets no Transfer-Encoding (RFC 9112 §6.1), HEAD and 304 answers included.
	out := c.l.used(protocol.RewriteResponseHead(c.l.arenaRoom(n+72), raw[:n], c.dechunk || client10 && h.Chunked, c.closeAfter, client10 && !c.closeAfter, c.srv().date()))
	c.l.responded(&c.ex, h.Status)
	c.queueOwn(out)
	c.dropRetry(false)
	c.phase = phStreaming
	if c.mode == modeNone {
		c.responseDone()
		return
	}
	if rest := raw[n:]; len(rest) > 0 {
		if c.creditOn {
			c.credit -= int64(len(rest))
		}
		c.onResponseBody(rest)
	}
}

func (c *conn) onResponseBody(b []byte) {
	if c.phase != phStreaming {
		c.srv().stats.Unexpected.Add(1)
		return
	}
	switch c.mode {
	case modeLength:
		if int64(len(b)) > c.remaining {
			// Past its Content-Length: the excess is dropped, and the
			// connection ends with this response (as for a body after a
			// HEAD answer: the next request could get the rest).
			c.srv().stats.Unexpected.Add(1)
			c.closeAfter = true
			b = b[:c.remaining]
		}
		c.remaining -= int64(len(b))
		c.queue(b)
		if c.remaining == 0 {
			c.responseDone()
		}
	case modeChunked:
		// body pieces of a chunked response go out as chunks too, so the
		// client's framing stays valid.
		if len(b) > 0 {
			c.queueChunk(b)
		}
	default:
		c.queue(b)
	}
}

// queueChunk queues b as one chunk of chunked coding: a small one copied
// into the arena with its framing, a big one framed around where it lies.
func (c *conn) queueChunk(b []byte) {
	if len(b) <= copyOutMax {
		out := protocol.AppendChunkHeader(c.l.arenaRoom(len(b)+maxChunkFraming), len(b))
		out = append(out, b...)
		c.queueOwn(c.l.used(append(out, '\r', '\n')))
		return
	}
	c.queueOwn(c.l.used(protocol.AppendChunkHeader(c.l.arenaRoom(maxChunkFraming), len(b))))
	c.queue(b)
	c.queueOwn(c.l.bytesOf("\r\n"))
}

// maxChunkFraming is the most bytes a chunk's framing takes: 16 hex
// digits and two CRLFs.
const maxChunkFraming = 20

func (c *conn) onResponseChunk(b []byte) {
	if c.phase != phStreaming {
		c.srv().stats.Unexpected.Add(1)
		return
	}
	switch c.mode {
	case modeChunked:
		if len(b) == 0 {
			c.queueOwn(c.l.bytesOf("0\r\n\r\n"))
			c.responseDone()
			return
		}
		c.queueChunk(b)
	case modeLength:
		if len(b) == 0 {
			// The node ended the body short of its Content-Length: the
			// connection closes, so that the client sees it cut short
			// rather than waiting for the rest (RFC 9112 §8).
			c.srv().stats.BadResponse.Add(1)
			c.onResponseEnd()
			return
		}
		c.onResponseBody(b)
	default:
		if len(b) == 0 {
			c.responseDone()
			return
		}
		c.queue(b)
	}
}

// onResponseEnd: flush, then close the connection (PROTOCOL.md `end`).
func (c *conn) onResponseEnd() {
	// The node's `end` ends its credit (PROTOCOL.md): no grant may
	// follow it while the client drains what is left.
	c.creditOn = false
	if c.phase == phAwaitHead {
		c.fail(502, "backend ended the session without a response")
		return
	}
	if c.phase == phStreaming && c.dechunk {
		// A chunked response, de-chunked for an HTTP/1.0 client, ended
		// before its last chunk: the close would say it is whole.
		c.cutShort()
		return
	}
	c.closeAfter = true
	c.endRequest()
}

func (c *conn) onRetry() {
	s := c.srv()
	if c.phase != phAwaitHead {
		s.stats.Unexpected.Add(1)
		return
	}
	if !c.resend() {
		c.fail(502, "no backend node could serve the request")
	}
}

func (c *conn) badResponse() {
	c.srv().stats.BadResponse.Add(1)
	if c.phase == phStreaming {
		c.cutShort()
		return
	}
	c.sendEnd()
	c.fail(502, "malformed response from backend")
}

// responseDone ends the current response; the next pipelined request may
// start.
func (c *conn) responseDone() {
	c.creditOn = false
	c.l.finish(&c.ex, c.node, c.sid)
	c.endRequest()
	if c.srv().Stopping() {
		// A shutdown (or its shutdown-delay) began while the response
		// was on its way (its head said keep-alive): the connection
		// closes after it, rather than idling until shutdown-grace ends.
		c.closeAfter = true
	}
	if c.closeAfter {
		return
	}
	if c.t.InboundBuffered() > 0 && !c.reading {
		c.l.resume = append(c.l.resume, c)
	}
}
