package server

import (
	"net"
	"slices"
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
	closing    bool // closeNow was called: gnet closes it soon
	endSent    bool // the last message to the node was `end`
	creditOn   bool // the node speaks credits for the response in flight
	retryLost  bool // the body outgrew the retry buffer
	ws         bool // upgraded: the bytes are WebSocket frames
	wsFragOp   ws.OpCode
	wsFrag     []byte // a fragmented message being joined; nil otherwise

	remaining  int64 // modeLength: body bytes still due
	headBy     int64 // unix ns: the request head must be complete by then (408)
	answerBy   int64 // unix ns: the response head must arrive by then (504)
	lastActive int64
	progressAt int64 // unix ns: output last drained to the client (stall-timeout)

	pendingOut int             // output held in gnet's buffer, as last accounted
	credit     int64           // body bytes the node may still send (creditOn)
	outq       []zmqbridge.Msg // messages the ring refused, in order; reading pauses
	readPaused bool

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
// asked, and accounts what the client has not read yet.
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
	c.accountOutput()
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
	ob := c.gc.OutboundBuffered()
	if ob == c.pendingOut {
		c.maybeGrant()
		return
	}
	if c.pendingOut == 0 {
		c.progressAt = s.now() // stall-timeout counts from the first byte held
	}
	total := s.pendingTotal.Add(int64(ob - c.pendingOut))
	c.pendingOut = ob
	switch {
	case ob > s.opts.MaxPendingOutput:
		c.slowReader("max-pending-output", ob)
	case ob > 0 && total > s.opts.MaxPendingOutputTotal:
		c.slowReader("max-pending-output-total", ob)
	default:
		c.maybeGrant()
		c.updateReadPause()
	}
}

// slowReader closes a client that does not read its output.
func (c *conn) slowReader(limit string, held int) {
	s := c.srv()
	s.stats.SlowClients.Add(1)
	s.opts.Logger.Info("closing a slow reader", "limit", limit, "held", held,
		"remote", c.gc.RemoteAddr().String(), "sid", c.sid.String())
	c.closeAfter = true
	c.closeNow()
}

// maybeGrant sends the node more credit once the client drained half of
// the window: what the node may still send plus what the client has not
// read stays within credit-window.
func (c *conn) maybeGrant() {
	if !c.creditOn || c.closeAfter || c.node == nil {
		return
	}
	w := int64(c.srv().opts.CreditWindow)
	outstanding := max(c.credit, 0) + int64(c.pendingOut)
	if outstanding > w/2 {
		return
	}
	g := w - outstanding
	c.credit += g
	c.send("credit", strconv.AppendInt(nil, g, 10))
}

// onDrained runs when gnet wrote some of the held output to the client.
func (c *conn) onDrained() {
	c.progressAt = c.srv().now()
	c.accountOutput()
	c.l.flush() // credit messages, or a close
}

// closeNow closes the connection; OnClose does the cleanup.
func (c *conn) closeNow() {
	if !c.closed && !c.closing {
		c.closing = true
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
	defer c.updateReadPause()
	for !c.closeAfter && len(c.outq) == 0 {
		if c.ws {
			return c.wsTraffic()
		}
		atHead := c.parser == nil || c.parser.InHead()
		if atHead && c.phase != phIdle {
			// A pipelined request waits for the current response; reading
			// pauses once max-read-ahead bytes wait (updateReadPause).
			break
		}
		buf, _ := c.gc.Peek(-1)
		if len(buf) == 0 && atHead {
			break
		}
		if c.parser == nil {
			c.parser = c.l.parser()
			if c.reqSeq > 0 {
				// The first request's deadline runs from accept (OnOpen).
				c.headBy = c.lastActive + int64(c.srv().opts.HeaderTimeout)
			}
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
	if string(r.Method) == "TRACE" && !vh.AllowTrace {
		// TRACE echoes the request, credentials included (cross-site
		// tracing): refused unless the vhost says allow-trace.
		c.srv().stats.Rejected.Add(1)
		c.discard = true
		closeConn := !c.keepAlive
		c.queue(appendMethodNotAllowed(closeConn))
		if closeConn {
			c.closeAfter = true
		}
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
	c.send(typ, msg)
	c.startCredit()
	s.stats.Requests.Add(1)
	if upgrade {
		c.startWebSocket(wsReq)
		return
	}
	if r.Expect100 && c.reading {
		c.queue([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
	}
}

// appendMethodNotAllowed is the proxy's 405 for TRACE (RFC 9110 §15.5.6:
// with Allow).
func appendMethodNotAllowed(closeConn bool) []byte {
	const body = "TRACE is not allowed\r\n"
	b := []byte("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ")
	b = strconv.AppendInt(b, int64(len(body)), 10)
	if closeConn {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
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
		c.leave(c.node)
		c.node.Unbind()
	}
	c.vhost, c.node = vh, n
	n.Bind()
}

// send queues a message for the session's node. It never waits: a
// message the ring refuses waits in outq, in order with the ones after
// it, and the connection stops being read until the bridge has room
// (loop.retryRing); the other connections of the loop go on.
func (c *conn) send(typ string, body []byte) {
	m := zmqbridge.Msg{Node: c.node.Index, SID: c.sid, Type: typ, Body: body, Tag: c.reqSeq}
	c.endSent = typ == "end"
	if !c.queuedFor(m.Node) && c.srv().ring.TrySend(&m) {
		return
	}
	c.queueOut(m)
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
func (c *conn) leave(n *session.Node) {
	keep := c.outq[:0]
	for _, m := range c.outq {
		if m.Node != n.Index {
			keep = append(keep, m)
		}
	}
	clear(c.outq[len(keep):])
	c.outq = keep
	end := zmqbridge.Msg{Node: n.Index, SID: c.sid, Type: "end"}
	if !c.srv().ring.TrySend(&end) {
		c.l.orphan(end)
	}
	c.updateReadPause()
}

// queueOut keeps m until the ring has room.
func (c *conn) queueOut(m zmqbridge.Msg) {
	c.outq = append(c.outq, m)
	if len(c.outq) == 1 {
		c.srv().stats.RingFull.Add(1)
		c.l.waitRoom(c, &c.outq[0])
	}
	c.updateReadPause()
}

// retryOut pushes the messages the ring refused; it reports whether
// all went.
func (c *conn) retryOut() bool {
	c.outq = retryMsgs(c.srv().ring, c.outq)
	if len(c.outq) == 0 {
		c.outq = nil
	}
	return len(c.outq) == 0
}

// retryMsgs pushes msgs in order per node: a message for a stuck node
// stays, with every later one for that node, while the others go; a full
// ring stops it. It returns what stays.
func retryMsgs(b ringSender, msgs []zmqbridge.Msg) []zmqbridge.Msg {
	var stuck []int
	keep := msgs[:0]
	for i := range msgs {
		m := msgs[i]
		switch {
		case slices.Contains(stuck, m.Node):
			keep = append(keep, m)
		case b.NodeFull(m.Node):
			stuck = append(stuck, m.Node)
			keep = append(keep, m)
		case !b.TrySend(&m):
			keep = append(keep, msgs[i:]...) // the ring is full
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
// the ring, while max-read-ahead bytes of pipelined requests wait for the
// response in flight, or while half of max-pending-output waits for it to
// read (a client that uploads without reading what it is sent, e.g. to
// an echoing node); it resumes reading when none holds.
func (c *conn) updateReadPause() {
	if c.closed || c.closing {
		return
	}
	o := &c.srv().opts
	want := len(c.outq) > 0 || c.pendingOut > o.MaxPendingOutput/2 ||
		c.phase != phIdle && !c.ws && c.gc.InboundBuffered() >= o.MaxReadAhead
	if want == c.readPaused {
		return
	}
	var err error
	if want {
		err = c.gc.PauseRead()
	} else {
		err = c.gc.ResumeRead()
	}
	if err != nil {
		c.closeNow()
		return
	}
	c.readPaused = want
	if !want && c.gc.InboundBuffered() > 0 {
		c.l.resume = append(c.l.resume, c) // bytes read before the pause
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
	c.send("body", piece)
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

// startCredit opens the response's credit window when the session's node
// speaks credits (PROTOCOL.md): the grant follows the request head.
func (c *conn) startCredit() {
	c.creditOn = c.node.Credits()
	if !c.creditOn {
		return
	}
	w := c.srv().opts.CreditWindow
	c.credit = int64(w)
	c.send("credit", strconv.AppendInt(nil, int64(w), 10))
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
	case c.pendingOut > 0 && now-c.progressAt > int64(s.opts.StallTimeout):
		c.slowReader("stall-timeout", c.pendingOut)
	case c.phase == phIdle && c.parser != nil && c.parser.InHead() && c.headBy > 0 && now > c.headBy:
		c.fail(408, "request head not received in time")
	case c.phase == phIdle && c.parser == nil && c.reqSeq == 0 && now > c.headBy:
		// Not a byte since accept: the slot goes back at header-timeout.
		s.stats.SilentClosed.Add(1)
		c.closeNow()
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
	c.leave(c.node) // the old node drops whatever it kept of the session
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
		c.send(t, b)
		if i == 0 {
			c.startCredit()
		}
	}
	c.answerBy = time.Now().UnixNano() + int64(c.vhost.Timeout)
	return true
}
