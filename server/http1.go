package server

import (
	"bytes"
	"net"
	"slices"
	"strconv"

	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/internal/zmqio"
	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
)

// The HTTP/1.x machine's request side: parsing, routing a head to a node,
// the body, and the deadlines. Its response side is reply.go.

// idle reports whether the connection is between requests.
func (c *conn) idle() bool {
	return c.phase == phIdle && !c.reading && (c.parser == nil || c.parser.Idle())
}

// httpTraffic parses HTTP/1.x requests.
func (c *conn) httpTraffic() {
	for !c.closing && !c.closed && len(c.outq) == 0 && c.m == (http1{}) {
		atHead := c.parser == nil || c.parser.InHead()
		if c.closeAfter && (atHead || c.phase == phIdle) {
			// No request after this one; a body whose response is
			// done is read and dropped (closingOut). A body whose
			// response is still on its way goes on to the node, which
			// may need all of it to finish (an HTTP/1.0 client, or one
			// that sent Connection: close).
			break
		}
		if atHead && c.phase != phIdle {
			// A pipelined request waits for the current response; reading
			// pauses once max-read-ahead bytes wait (updateReadPause).
			break
		}
		buf, _ := c.t.Peek(-1)
		if len(buf) == 0 && atHead {
			break
		}
		if c.parser == nil && c.reqSeq == 0 && c.srv().opts.HTTP2 && c.tls == nil {
			// h2c with prior knowledge (RFC 9113 §3.3), on cleartext
			// TCP only (over TLS, h2 is what ALPN chose): the preface.
			if n, err := protocol.MatchH2Preface(buf); err == nil {
				if n == 0 {
					break // a prefix of it: wait for more
				}
				c.startH2()
				return
			} else if len(buf) >= 4 && string(buf[:4]) == "PRI " {
				// A broken HTTP/2 preface (PRI is reserved for it, RFC
				// 9113 §3.4): the connection ends, with no HTTP/1 answer.
				c.srv().stats.Rejected.Add(1)
				c.closeAfter = true
				c.closeNow()
				return
			}
		}
		if c.parser == nil {
			c.headReq = false // a new request: none known until its head
			c.parser = c.l.parser()
			if c.reqSeq > 0 {
				// The first request's deadline runs from accept (OnOpen).
				c.headBy = c.lastActive + int64(c.srv().opts.HeaderTimeout)
			}
		}
		n, ev, data, err := c.parser.Feed(buf)
		if ev == protocol.EvBody && err == nil && len(data) < coalesceBelow && !c.discard && c.node != nil &&
			(c.vhost.MaxBody <= 0 || c.bodyBytes+int64(len(c.l.bodyAcc)+len(data)) <= c.vhost.MaxBody) {
			// A small piece (a chunk of a chunked body) joins the pieces
			// before it: one `body` message per read, not one per chunk
			// (tiny chunks made a message, and a pooled buffer held for
			// retry, per byte or two the client sent). A piece that
			// would take the body past max-body is not joined: the
			// flush cannot fail a request, only onBody below can.
			c.l.bodyAcc = append(c.l.bodyAcc, data...)
			_, _ = c.t.Discard(n)
			if len(c.l.bodyAcc) >= maxCoalesced {
				c.flushBody()
			}
			continue
		}
		c.flushBody()
		if err != nil {
			c.protocolError(err)
			if len(buf) > 0 {
				_, _ = c.t.Discard(len(buf))
				c.droppedIn = true // the client was sending: linger at the close
			}
			break
		}
		switch ev {
		case protocol.EvHead:
			c.onHead(c.parser.Request(), buf[:n])
		case protocol.EvBody:
			c.onBody(data)
		case protocol.EvEnd:
			c.onEnd()
		}
		if n > 0 {
			// gnet's Discard(0) would drop the whole inbound buffer.
			_, _ = c.t.Discard(n)
		}
		if ev == protocol.EvNeedMore {
			break
		}
	}
	c.flushBody()
}

// Request body pieces smaller than coalesceBelow are joined, up to
// maxCoalesced bytes, into one `body` message (httpTraffic).
const (
	coalesceBelow = 8 << 10
	maxCoalesced  = 64 << 10
)

// flushBody sends the small body pieces httpTraffic joined.
func (c *conn) flushBody() {
	b := c.l.bodyAcc
	if len(b) == 0 {
		return
	}
	c.l.bodyAcc = b[:0]
	c.onBody(b) // copied into a pooled buffer
}

func (c *conn) protocolError(err error) {
	pe, ok := err.(*protocol.Error)
	if !ok {
		pe = protocol.ErrBadRequestLine
	}
	if c.reading && c.phase == phIdle {
		// The body of a request answered already (its node answered
		// early, or the proxy did): no second answer, which the client
		// would take for the next request's. The connection closes
		// after what it holds; what the client still sends is dropped.
		c.srv().stats.Rejected.Add(1)
		c.srv().reject(pe.Metric)
		c.reading = false
		c.closeAfter = true
		c.discard = true
		c.l.markDirty(c)
		return
	}
	if c.reading && c.phase != phIdle {
		// Mid-body: the node has the head already; tell it to drop the
		// session, and answer the client if no response began.
		c.sendEnd()
		if c.phase == phStreaming {
			c.cutShort() // the response is cut too: a reset if the close delimits it
			return
		}
	}
	if pe.Status == 0 {
		// Not HTTP at all: nothing to answer in.
		c.srv().stats.Rejected.Add(1)
		c.srv().reject(pe.Metric)
		c.closeAfter = true
		c.discard = true
		c.closeNow()
		return
	}
	c.failAs(pe.Metric, pe.Status, pe.Msg)
}

// onHead routes a complete request head to a node.
func (c *conn) onHead(r *protocol.Request, raw []byte) {
	s := c.srv()
	c.minor = uint8(r.Minor)
	c.keepAlive = r.KeepAlive && !s.Stopping()
	c.headReq = string(r.Method) == "HEAD"
	c.reading = r.HasBody()
	c.discard = false
	c.hops = 0
	c.reqSeq++
	c.bodyBytes = 0
	c.bigBodies = false // until this body proves big (onBody)
	c.begin(&c.ex, r, httpVersion(c.minor))

	// r.Host is the absolute-form authority when there is one.
	if r.Expect100 && c.reading {
		// Until the node has the head, whatever answers is the proxy's
		// own (404, 405, 308), sent before the client was told to send
		// its body: the client may send it or not (RFC 9110 §10.1.1),
		// so the connection cannot go on in step and closes after it.
		// Keep-alive comes back with the 100 Continue, below.
		c.keepAlive = false
	}
	rt := s.rt.Load()
	vh := rt.router.Match(r.Host)
	if vh != nil && !rt.serves(c.ln, vh) {
		// A vhost with listeners of its own is served only there; a plain
		// request for one served over TLS is sent there (308).
		if port, ok := rt.https[vh]; ok && c.ln.tls == nil && vh.HTTPSRedirect {
			c.srv().stats.Redirected.Add(1)
			c.ex.vhost = vh
			c.respond(308, appendHTTPSRedirect(nil, r, port, !c.keepAlive, s.date()))
			return
		}
		vh = nil
	}
	if vh == nil {
		c.reject(404, "no virtual host for this Host")
		return
	}
	c.ex.vhost = vh // counted under its vhost, whoever answers
	if string(r.Method) == "TRACE" && !vh.AllowTrace {
		// TRACE echoes the request, credentials included (cross-site
		// tracing): refused unless the vhost says allow-trace.
		c.srv().stats.Rejected.Add(1)
		s.reject("trace_not_allowed")
		c.respond(405, appendMethodNotAllowed(!c.keepAlive, s.date()))
		return
	}
	if vh.MaxBody > 0 && r.ContentLength > vh.MaxBody {
		c.fail(413, protocol.ErrBodyTooLarge.Msg)
		return
	}
	wsReq, upgrade := protocol.IsWebSocketUpgrade(r)
	if upgrade && !c.checkWebSocketHandshake(r, wsReq) {
		return
	}
	// The head goes to the node in a pooled buffer (bufpool): one
	// reference for the message, one for the retry.
	var typ string
	var err error
	buf := s.bufs.Get(r.HeadLen + 256)
	if vh.Format == session.FormatHeaders {
		typ = "headers"
		buf.B = append(buf.B[:0], trimLeadingCRLF(raw)...)
	} else {
		typ = "uwsgi"
		ci := c.connInfo()
		buf.B, err = protocol.AppendEnviron(buf.B[:0], r, &ci)
		if err != nil {
			buf.Release()
			c.fail(431, protocol.ErrUwsgiTooLarge.Msg)
			return
		}
	}
	msg := buf.B
	now := s.now()
	if c.node == nil || c.vhost != vh || !c.node.Serves(c.nodeEpoch, s.heardAt(now), s.deadAfter) {
		// A new session, or its node died between requests: (re)bind.
		n := vh.Pick(s.heardAt(now), s.deadAfter, nil)
		if n == nil {
			buf.Release()
			c.reject(503, "no live backend node")
			return
		}
		c.bind(vh, n)
	}
	// The head is always kept (retry-buffer bounds the body), its
	// reference taken before the send (see stream.keep).
	c.dropRetry(false)
	buf.Retain()
	if c.retry == nil {
		c.retry = c.l.retrySlice()
	}
	c.retry = append(c.retry, retryPiece{b: msg, buf: buf})
	c.phase = phAwaitHead
	// A deadline from the coarse clock could fire up to sweepEvery early.
	// The head's clock reading (begin) is the deadline's start too: one
	// clock read per request, not one per use.
	c.answerBy = c.ex.start + int64(vh.Timeout)
	c.ex.forwarded(vh, c.ex.start)
	c.sendBuf(typ, buf)
	c.startCredit()
	s.stats.Requests.Add(1)
	if upgrade {
		if vh.NodeHandshake {
			// The node's head decides (onResponseHead): 101 accepts.
			c.wsAwait = newWSPending(wsReq)
			return
		}
		c.ex.sentAt = 0 // the proxy answers, not the node (no response-head latency)
		c.startWebSocket(wsReq, protocol.ChooseSubprotocol(wsReq.Protocols, vh.WebSocketProtocols))
		return
	}
	if r.Expect100 && c.reading {
		c.keepAlive = r.KeepAlive && !s.Stopping() // the body is asked for
		c.queue([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
	}
}

// appendDated appends a status line of the proxy's own answer and its
// Date field (RFC 9110 §6.6.1: an origin with a clock sends Date; for
// these answers the proxy is the origin), without the line's CRLF.
func appendDated(dst []byte, statusLine string, date []byte) []byte {
	dst = append(dst, statusLine...)
	return append(append(dst, "\r\nDate: "...), date...)
}

// appendMethodNotAllowed is the proxy's 405 for TRACE (RFC 9110 §15.5.6:
// with Allow).
func appendMethodNotAllowed(closeConn bool, date []byte) []byte {
	const body = "TRACE is not allowed\r\n"
	b := appendDated(nil, "HTTP/1.1 405 Method Not Allowed", date)
	b = append(b, "\r\nAllow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	if closeConn {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// respond answers the request in flight itself with a whole response b
// (its body, if any, is skipped); the connection stays usable unless the
// client asked to close it.
func (c *conn) respond(status int, b []byte) {
	c.discard = true
	c.queue(c.answerBytes(b))
	if !c.keepAlive {
		c.closeAfter = true
	}
	c.l.responded(&c.ex, status)
	c.l.finish(&c.ex, nil, c.sid)
}

// answerBytes is a response of the proxy's own (head and body, its Date
// written in: appendDated, AppendErrorDate) as the request in flight gets
// it: a HEAD request gets the head alone, its
// Content-Length kept (RFC 9110 §9.3.2); a body would be read as the
// start of the next response on a kept-alive connection.
//
// An HTTP/1.0 client that asked to keep the connection gets
// Connection: keep-alive when it is kept (HTTP/1.0 closes otherwise).
func (c *conn) answerBytes(b []byte) []byte {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return b
	}
	if c.minor == 0 && c.keepAlive && !bytes.Contains(b[:i], []byte("\r\nConnection: close")) {
		b = slices.Concat(b[:i], []byte("\r\nConnection: keep-alive"), b[i:])
		i += len("\r\nConnection: keep-alive")
	}
	if c.headReq {
		return b[:i+4]
	}
	return b
}

// httpVersion is the access log's protocol of an HTTP/1.minor request.
func httpVersion(minor uint8) string {
	if minor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// appendHTTPSRedirect is a 308 to the https:// form of r's URL on the TLS
// port (RFC 9110 §15.4.9: method and body are kept by the client).
func appendHTTPSRedirect(dst []byte, r *protocol.Request, port string, closeConn bool, date []byte) []byte {
	host, _ := protocol.SplitHostPort(r.Host)
	loc := append([]byte("https://"), host...)
	if port != "443" {
		loc = append(append(loc, ':'), port...)
	}
	if len(r.URI) > 0 && r.URI[0] == '/' {
		loc = append(loc, r.URI...)
	} else {
		// absolute-form: its path and query
		loc = append(loc, r.Path...)
		if len(r.Query) > 0 {
			loc = append(append(loc, '?'), r.Query...)
		}
	}
	const body = "use https\r\n"
	dst = appendDated(dst, "HTTP/1.1 308 Permanent Redirect", date)
	dst = append(dst, "\r\nLocation: "...)
	dst = append(dst, loc...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	if closeConn {
		dst = append(dst, "\r\nConnection: close"...)
	}
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// trimLeadingCRLF drops the empty lines a head may start with.
func trimLeadingCRLF(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}

// reject answers a well-formed request the proxy cannot route; the
// connection stays usable and the request body is skipped.
func (c *conn) reject(status int, msg string) {
	c.srv().stats.Rejected.Add(1)
	c.srv().reject(statusReason(status))
	c.discard = true
	close := !c.keepAlive
	c.queue(c.answerBytes(protocol.AppendErrorDate(nil, status, msg, close, c.srv().date())))
	if close {
		c.closeAfter = true
	}
	c.l.responded(&c.ex, status)
	c.l.finish(&c.ex, nil, c.sid)
}

func (c *conn) onBody(data []byte) {
	if c.discard || c.node == nil {
		// Dropped (the proxy answered it): at most the global max-body
		// of it is read, then the connection closes after the answer.
		if c.bodyBytes += int64(len(data)); c.srv().opts.MaxBody > 0 && c.bodyBytes > c.srv().opts.MaxBody && !c.closeAfter {
			c.closeAfter = true
			c.l.markDirty(c)
		}
		return
	}
	// The vhost's max-body also bounds bodies of unknown length.
	if c.bodyBytes += int64(len(data)); c.vhost.MaxBody > 0 && c.bodyBytes > c.vhost.MaxBody {
		c.protocolError(protocol.ErrBodyTooLarge)
		return
	}
	c.bigBodies = c.bodyBytes >= zmqio.MinRefBody
	// Read straight into a pooled buffer (readtarget.go), the piece goes
	// as it lies; else it outlives gnet's buffer, and is copied into one.
	buf := c.readPiece(data)
	if buf == nil {
		buf = c.srv().bufs.Get(len(data))
		data = buf.B[:copy(buf.B, data)]
	}
	c.keepForRetry(data, buf)
	c.endSent = false
	c.sendTo(c.node, c.sid, "body", data, buf, c.reqSeq)
	switch c.phase {
	case phAwaitHead:
		c.answerBy = bodyDeadline(c.answerBy, c.srv(), c.vhost.Timeout)
	case phStreaming:
		// The node may be reading the body before it answers more:
		// response-idle-timeout counts from the body's last piece too.
		c.answerBy = c.l.clock() + int64(c.vhost.ResponseIdleTimeout)
	}
}

// keepForRetry keeps a piece of the request body for a retry
// (stream.keep).
func (c *conn) keepForRetry(piece []byte, buf *bufpool.Buf) {
	c.stream.keep(piece, buf, c.srv().opts.RetryBuffer)
}

func (c *conn) onEnd() {
	p := c.parser
	chunked := p.Request().Chunked
	if !c.discard && c.node != nil && c.reading && chunked {
		empty := []byte{}
		c.keepForRetry(empty, nil)
		c.send("body", empty)
		if c.phase == phAwaitHead {
			c.answerBy = bodyDeadline(c.answerBy, c.srv(), c.vhost.Timeout)
		}
	}
	c.reading = false
	c.discard = false
	if c.parser != p || !p.Idle() {
		return // closed (and the parser released) while the send waited
	}
	c.parser = nil
	c.l.releaseParser(p)
	c.headBy = 0
}

// httpTimeouts enforces the header, response and idle timeouts of HTTP/1.x.
func (c *conn) httpTimeouts(now int64) {
	s := c.srv()
	switch {
	case c.phase == phAwaitHead && now > c.answerBy:
		c.sendEnd()
		if c.reading && len(c.outq) == 0 && !c.readPaused {
			// The client stopped sending its body (each piece pushes
			// the deadline on: bodyDeadline), not the node answering.
			c.failAs("body_timeout", 408, "request body not received in time")
			return
		}
		s.stats.Timeouts.Add(1)
		c.fail(504, "backend did not answer in time")
	case c.phase != phIdle && c.node != nil && !c.node.Serves(c.nodeEpoch, s.heardAt(now), s.deadAfter):
		c.nodeFailed()
	case c.phase == phStreaming && responseIdle(s, now, &c.answerBy, c.vhost.ResponseIdleTimeout,
		c.pendingOut > 0 || c.creditOn && c.credit <= 0, c.node, c.sid):
		// The client cannot tell a stalled response from a slow one: the
		// connection closes, so it sees the response cut short.
		c.sendEnd()
		c.cutShort()
	case c.phase == phIdle && c.parser != nil && c.parser.InHead() && c.headBy > 0 && now > c.headBy:
		c.fail(408, "request head not received in time")
	case c.phase == phIdle && c.parser == nil && c.reqSeq == 0 && now > c.headBy:
		// Not a byte since accept: the slot goes back at header-timeout.
		s.stats.SilentClosed.Add(1)
		s.reject("silent_connection")
		c.closeNow()
	case c.idle() && c.pendingOut == 0 && s.opts.IdleTimeout > 0 && now-c.lastActive > int64(s.opts.IdleTimeout):
		c.closeNow()
	case c.phase == phIdle && c.reading && c.pendingOut == 0 && s.opts.IdleTimeout > 0 && now-c.lastActive > int64(s.opts.IdleTimeout):
		// Answered before its body ended (a 404, or a node's early
		// answer), and the client has sent nothing of the rest for
		// idle-timeout: nothing is due either way, the slot goes back.
		c.closeNow()
	}
}

// connInfo returns the connection's environ facts, as values: nothing is
// formatted or kept (AppendEnviron formats them into the packet).
func (c *conn) connInfo() protocol.ConnInfo {
	ci := protocol.ConnInfo{TLS: c.ln.tls != nil}
	if a, ok := c.t.LocalAddr().(*net.TCPAddr); ok {
		ci.LocalPort = uint16(a.Port)
	}
	ci.Remote = c.t.RemoteAddrPort()
	return ci
}
