package server

import (
	"net"
	"strconv"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
	"github.com/blastbeat/blastbeat/zmqbridge"
)

// phase is where a connection is in its request/response cycle.
type phase uint8

const (
	phIdle      phase = iota // no request in flight
	phAwaitHead              // request forwarded, no response head yet
	phStreaming              // response head sent, body in progress
)

// respMode is how the end of the current response is found.
type respMode uint8

const (
	modeNone    respMode = iota // no body: complete after the head
	modeLength                  // Content-Length bytes
	modeChunked                 // chunk messages framed as chunked coding
	modeClose                   // delimited by closing the connection
)

// conn is one client connection and, for HTTP/1.x, its session.
// Every field is owned by the connection's event loop.
type conn struct {
	gc  gnet.Conn
	l   *loop
	sid session.SID
	ci  *protocol.ConnInfo // built at the first request

	parser *protocol.RequestParser // only while a request is being read
	vhost  *session.VHost
	node   *session.Node

	phase      phase
	mode       respMode
	minor      uint8
	hops       uint8
	keepAlive  bool // the client allows another request
	closeAfter bool // close once the current response is complete
	headReq    bool // the request in flight is HEAD
	reading    bool // the request body is still arriving
	discard    bool // drop the body: the proxy answered this request
	dechunk    bool // chunk messages are written raw (HTTP/1.0 client)
	dirty      bool // queued in loop.dirty
	closed     bool
	stalled    bool
	retryLost  bool // the body outgrew the retry buffer
	ws         bool // upgraded: the bytes are WebSocket frames
	wsFragOp   ws.OpCode
	wsFrag     []byte // a fragmented message being joined; nil otherwise

	remaining  int64 // modeLength: body bytes still due
	headBy     int64 // unix ns: the request head must be complete by then (408)
	answerBy   int64 // unix ns: the response head must arrive by then (504)
	lastActive int64
	stalledAt  int64

	reqSeq     uint32   // numbers requests, to tell stale send failures
	bodyBytes  int64    // request body bytes so far (the vhost's max-body)
	retry      [][]byte // request head and body kept for retry/failover
	retryBytes int
	out        [][]byte // output queued during one loop turn
}

func (c *conn) srv() *Server { return c.l.s }

// idle reports whether the connection is between requests.
func (c *conn) idle() bool {
	return c.phase == phIdle && !c.reading && (c.parser == nil || c.parser.Idle())
}

// queue adds b to the output written at the end of this loop turn. b must
// stay unchanged until then.
func (c *conn) queue(b []byte) {
	if len(b) == 0 || c.closed {
		return
	}
	c.out = append(c.out, b)
	c.l.markDirty(c)
}

// flush writes queued output with one writev, closes the connection when
// asked, and pauses reading from nodes when the client lags.
func (c *conn) flush() {
	if c.closed {
		c.out = c.out[:0]
		return
	}
	if len(c.out) > 0 {
		_, _ = c.gc.Writev(c.out)
		for i := range c.out {
			c.out[i] = nil
		}
		c.out = c.out[:0]
		if cap(c.out) > 16 {
			c.out = nil
		}
	}
	if c.closed {
		return
	}
	if c.closeAfter && c.phase == phIdle {
		c.closeNow()
		return
	}
	if !c.stalled && c.gc.OutboundBuffered() > c.srv().opts.MaxPendingOutput {
		c.stalled = true
		c.stalledAt = time.Now().UnixNano()
		c.l.stalled = append(c.l.stalled, c)
		c.l.nStalled.Add(1)
		c.srv().stalled.Add(1)
	}
}

func (c *conn) unstall() {
	if c.stalled {
		c.stalled = false
		c.l.nStalled.Add(-1)
		c.srv().stalled.Add(-1)
	}
}

// closeNow closes the connection; OnClose does the cleanup.
func (c *conn) closeNow() {
	if !c.closed {
		_ = c.gc.Close()
	}
}

// fail answers the current request with a proxy error and closes the
// connection after it; nothing more is read from the client.
func (c *conn) fail(status int, msg string) {
	c.srv().stats.Rejected.Add(1)
	c.reading = false
	c.queue(protocol.AppendError(nil, status, msg, true))
	c.closeAfter = true
	c.discard = true
	c.endRequest()
}

// endRequest forgets the request in flight (its node binding stays) and
// queues the connection for this turn's flush, which closes it when
// closeAfter is set, even if no byte is left to write.
func (c *conn) endRequest() {
	c.phase = phIdle
	c.retry, c.retryBytes, c.retryLost = nil, 0, false
	c.lastActive = c.srv().now() // idle-timeout counts from here
	c.l.markDirty(c)
}

// onTraffic parses what the client sent; see handler.OnTraffic.
func (c *conn) onTraffic() gnet.Action {
	c.lastActive = c.srv().now()
	for !c.closeAfter {
		if c.ws {
			return c.wsTraffic()
		}
		atHead := c.parser == nil || c.parser.InHead()
		if atHead && c.phase != phIdle {
			// A pipelined request waits for the current response.
			if c.gc.InboundBuffered() > maxPipelined {
				return gnet.Close
			}
			break
		}
		buf, _ := c.gc.Peek(-1)
		if len(buf) == 0 && atHead {
			break
		}
		if c.parser == nil {
			c.parser = c.l.parser()
			c.headBy = c.lastActive + int64(c.srv().opts.HeaderTimeout)
		}
		n, ev, data, err := c.parser.Feed(buf)
		if err != nil {
			c.protocolError(err)
			if len(buf) > 0 {
				_, _ = c.gc.Discard(len(buf))
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
			_, _ = c.gc.Discard(n)
		}
		if ev == protocol.EvNeedMore {
			break
		}
	}
	c.l.flush()
	return gnet.None
}

func (c *conn) protocolError(err error) {
	pe, ok := err.(*protocol.Error)
	if !ok {
		pe = protocol.ErrBadRequestLine
	}
	if c.reading && c.phase != phIdle {
		// Mid-body: the node has the head already; tell it to drop the
		// session, and answer the client if no response began.
		c.sendEnd()
		if c.phase == phStreaming {
			c.closeAfter = true
			c.closeNow()
			return
		}
	}
	c.fail(pe.Status, pe.Msg)
}

// connInfo returns the connection's environ facts, computed once.
func (c *conn) connInfo() *protocol.ConnInfo {
	if c.ci != nil {
		return c.ci
	}
	ci := &protocol.ConnInfo{}
	if a, ok := c.gc.LocalAddr().(*net.TCPAddr); ok {
		ci.ServerPort = strconv.Itoa(a.Port)
	}
	if a, ok := c.gc.RemoteAddr().(*net.TCPAddr); ok {
		ci.RemoteAddr = a.IP.String()
		ci.RemotePort = strconv.Itoa(a.Port)
	}
	c.ci = ci
	return ci
}

// onHead routes a complete request head to a node.
func (c *conn) onHead(r *protocol.Request, raw []byte) {
	s := c.srv()
	c.minor = uint8(r.Minor)
	c.keepAlive = r.KeepAlive && !s.draining.Load()
	c.headReq = string(r.Method) == "HEAD"
	c.reading = r.HasBody()
	c.discard = false
	c.hops = 0
	c.reqSeq++
	c.bodyBytes = 0

	// r.Host is the absolute-form authority when there is one.
	vh := s.router.Match(r.Host)
	if vh == nil {
		c.reject(404, "no virtual host for this Host")
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
	var msg []byte
	var typ string
	var err error
	if vh.Format == session.FormatHeaders {
		typ = "headers"
		msg = append(make([]byte, 0, r.HeadLen), trimLeadingCRLF(raw)...)
	} else {
		typ = "uwsgi"
		msg, err = protocol.AppendEnviron(make([]byte, 0, r.HeadLen+256), r, c.connInfo())
		if err != nil {
			c.fail(431, protocol.ErrUwsgiTooLarge.Msg)
			return
		}
	}
	now := s.now()
	if c.node == nil || c.vhost != vh || !c.node.Alive(now, s.nodes.DeadAfter()) {
		// A new session, or its node died between requests: (re)bind.
		n := vh.Pick(now, s.nodes.DeadAfter(), nil)
		if n == nil {
			c.reject(503, "no live backend node")
			return
		}
		c.bind(vh, n)
	}
	c.retry = append(c.retry[:0], msg)
	c.retryBytes = 0
	c.retryLost = false
	c.phase = phAwaitHead
	// A deadline from the coarse clock could fire up to sweepEvery early.
	c.answerBy = time.Now().UnixNano() + int64(vh.Timeout)
	if !c.send(typ, msg) {
		c.fail(503, "backend queue full")
		return
	}
	s.stats.Requests.Add(1)
	if upgrade {
		c.startWebSocket(wsReq)
		return
	}
	if r.Expect100 && c.reading {
		c.queue([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
	}
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
	c.discard = true
	close := !c.keepAlive
	c.queue(protocol.AppendError(nil, status, msg, close))
	if close {
		c.closeAfter = true
	}
}

// bind attaches the session to node n of vh.
func (c *conn) bind(vh *session.VHost, n *session.Node) {
	if c.node != nil {
		c.sendEnd()
		c.node.Unbind()
	}
	c.vhost, c.node = vh, n
	n.Bind()
}

// send queues a message for the session's node.
func (c *conn) send(typ string, body []byte) bool {
	m := zmqbridge.Msg{Node: c.node.Index, SID: c.sid, Type: typ, Body: body, Tag: c.reqSeq}
	if !c.srv().bridge.Send(&m, ringWait, c.l.whileBlocked) {
		c.srv().stats.RingFull.Add(1)
		return false
	}
	return true
}

func (c *conn) sendEnd() {
	if c.node == nil {
		return
	}
	m := zmqbridge.Msg{Node: c.node.Index, SID: c.sid, Type: "end"}
	// No idle work while waiting: this runs from OnClose too, inside
	// flushes and drains.
	if !c.srv().bridge.Send(&m, ringWait, nil) {
		c.srv().stats.RingFull.Add(1)
	}
}

func (c *conn) onBody(data []byte) {
	if c.discard || c.node == nil {
		return
	}
	// The vhost's max-body also bounds bodies of unknown length.
	if c.bodyBytes += int64(len(data)); c.vhost.MaxBody > 0 && c.bodyBytes > c.vhost.MaxBody {
		c.protocolError(protocol.ErrBodyTooLarge)
		return
	}
	piece := append([]byte(nil), data...)
	c.keepForRetry(piece)
	if !c.send("body", piece) {
		c.closeNow()
	}
}

func (c *conn) keepForRetry(piece []byte) {
	if c.phase != phAwaitHead || c.retryLost {
		return
	}
	if c.retryBytes+len(piece) > c.srv().opts.RetryBuffer {
		c.retry, c.retryLost = nil, true
		return
	}
	c.retry = append(c.retry, piece)
	c.retryBytes += len(piece)
}

func (c *conn) onEnd() {
	p := c.parser
	chunked := p.Request().Chunked
	if !c.discard && c.node != nil && c.reading && chunked {
		empty := []byte{}
		c.keepForRetry(empty)
		c.send("body", empty)
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

// checkTimeouts enforces the header, response and idle timeouts.
func (c *conn) checkTimeouts(now int64) {
	s := c.srv()
	switch {
	case c.closed:
	case c.ws:
		if c.node != nil && !c.node.Alive(now, s.nodes.DeadAfter()) {
			c.wsClose(ws.StatusGoingAway, "backend node gone")
		}
	case c.phase == phAwaitHead && now > c.answerBy:
		s.stats.Timeouts.Add(1)
		c.sendEnd()
		c.fail(504, "backend did not answer in time")
	case c.phase != phIdle && c.node != nil && !c.node.Alive(now, s.nodes.DeadAfter()):
		c.nodeFailed()
	case c.phase == phIdle && c.parser != nil && c.parser.InHead() && c.headBy > 0 && now > c.headBy:
		c.fail(408, "request head not received in time")
	case c.idle() && s.opts.IdleTimeout > 0 && now-c.lastActive > int64(s.opts.IdleTimeout):
		c.closeNow()
	}
}

// nodeFailed handles the death of the session's node mid-request: fail
// over while no response byte was sent, else close the connection.
func (c *conn) nodeFailed() {
	if c.phase == phAwaitHead && c.resend() {
		return
	}
	if c.phase == phAwaitHead {
		c.fail(502, "backend node failed")
		return
	}
	c.closeAfter = true
	c.closeNow()
}

// resend sends the kept request to another live node of the vhost.
func (c *conn) resend() bool {
	s := c.srv()
	if c.retryLost || len(c.retry) == 0 || int(c.hops) >= s.opts.MaxHops {
		return false
	}
	n := c.vhost.Pick(s.now(), s.nodes.DeadAfter(), c.node)
	if n == nil {
		return false
	}
	c.hops++
	s.stats.Retries.Add(1)
	c.sendEnd() // the old node drops whatever it kept of the session
	c.node.Unbind()
	c.node = n
	n.Bind()
	typ := "uwsgi"
	if c.vhost.Format == session.FormatHeaders {
		typ = "headers"
	}
	for i, b := range c.retry {
		t := "body"
		if i == 0 {
			t = typ
		}
		if !c.send(t, b) {
			return false
		}
	}
	c.answerBy = time.Now().UnixNano() + int64(c.vhost.Timeout)
	return true
}
