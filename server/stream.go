package server

import (
	"strconv"
	"time"

	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
)

// stream is one request/response exchange bound to one sid and one node:
// where it is, how its response is framed and delimited, its deadline,
// the request kept for retry, and the node's credit. HTTP/1.x has one at
// a time per connection (embedded in conn); HTTP/2 will have many.
// Owned by the connection's event loop.
type stream struct {
	phase     phase
	mode      respMode
	minor     uint8  // the request's HTTP/1.minor
	hops      uint8  // retries so far
	headReq   bool   // the request in flight is HEAD
	reading   bool   // the request body is still arriving
	discard   bool   // drop the body: the proxy answered this request
	dechunk   bool   // chunk messages are written raw (HTTP/1.0 client)
	retryLost bool   // the body outgrew the retry buffer
	creditOn  bool   // the node speaks credits for the response in flight
	nodeEpoch uint16 // the node's Epoch when the session bound to it
	reqSeq    uint32 // numbers requests, to tell stale send failures (beside the flags: no padding)

	remaining int64 // modeLength: body bytes still due
	answerBy  int64 // unix ns: the response head must arrive by then (504; bodyDeadline); streaming, the node must send again by then (response-idle-timeout)
	credit    int64 // body bytes the node may still send (creditOn)

	bodyBytes  int64        // request body bytes so far (the vhost's max-body)
	retry      []retryPiece // request head and body kept for retry/failover
	retryBytes int

	ex exchange // the request as metrics and the access log see it
}

// retryPiece is a piece of a request kept for a retry: its bytes, and
// the pooled buffer they lie in (nil: not pooled), of which the retry
// holds a reference.
type retryPiece struct {
	b   []byte
	buf *bufpool.Buf
}

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

// maybeGrant sends the node more credit once the client drained half of
// the window: what the node may still send plus what the client has not
// read stays within credit-window.
func (c *conn) maybeGrant() {
	// Not closeAfter: a response that closes the connection after it
	// (Connection: close, HTTP/1.0, close-delimited) still needs credit;
	// accountOutput stops once the connection is closing.
	if !c.creditOn || c.node == nil || c.endSent {
		return // (after its `end`, a credit would reopen the session for the node)
	}
	w := int64(c.srv().opts.CreditWindow)
	// Not clamped at 0: a node that sent one WebSocket message over its
	// credit (node/credit.go allows it) is owed the overdraft back, or
	// it would wait for credit for good.
	outstanding := c.credit + int64(c.pendingOut)
	if outstanding > w/2 {
		return
	}
	g := w - outstanding
	c.credit += g
	c.send("credit", strconv.AppendInt(nil, g, 10))
	if c.phase == phStreaming {
		// The node may send again: its silence counts from now.
		c.answerBy = c.l.clock() + int64(c.vhost.ResponseIdleTimeout)
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
	c.cutShort()
}

// cutShort closes a connection whose response the node left unfinished
// (it died, or fell silent). A close-delimited response (no
// Content-Length, not chunked: a node's bare head, or a chunked one
// de-chunked for an HTTP/1.0 client) ends with a reset and no TLS
// close_notify: a FIN, or close_notify, is how such a body ends whole
// (RFC 9112 §6.3), and the client would take the cut for the end.
// Other framings show the cut themselves (a short Content-Length body, no
// last chunk), and close as any connection does.
func (c *conn) cutShort() {
	if c.mode == modeClose {
		if tt, ok := c.t.(*tlsTransport); ok {
			tt.abort = true
		}
		if sl, ok := c.t.(interface{ SetLinger(sec int) error }); ok {
			_ = sl.SetLinger(0) // close sends RST
		}
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
	n := c.vhost.Pick(s.heardAt(s.now()), s.deadAfter, c.node)
	if n == nil {
		return false
	}
	c.hops++
	s.stats.Retries.Add(1)
	c.leave(c.node) // the old node drops whatever it kept of the session
	c.node.Unbind()
	c.node, c.nodeEpoch = n, n.Epoch()
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
		body, buf := b.again()
		c.endSent = false
		c.sendTo(c.node, c.sid, t, body, buf, c.reqSeq)
		if i == 0 {
			c.startCredit()
		}
	}
	c.answerBy = c.l.clock() + int64(c.vhost.Timeout)
	return true
}

// keep keeps a piece of the request (head or body) for a retry while the
// response head is awaited, within budget (retry-buffer) bytes: past it
// the request cannot be retried. buf, when not nil, is the pooled buffer
// the piece lies in, and the retry takes a reference; take it before the
// piece's message goes to the ring, which may give the message's
// reference back at once. HTTP/1.x and HTTP/2 keep alike.
func (s *stream) keep(piece []byte, buf *bufpool.Buf, budget int) {
	if s.phase != phAwaitHead || s.retryLost {
		return
	}
	// A piece costs the memory it holds: its pooled buffer's (at least
	// 512 bytes, however small the piece) when it has one.
	cost := len(piece)
	if buf != nil {
		cost = max(cost, cap(buf.B))
	}
	if s.retryBytes+cost > budget {
		s.dropRetry(true)
		return
	}
	if buf != nil {
		buf.Retain()
	}
	s.retry = append(s.retry, retryPiece{b: piece, buf: buf})
	s.retryBytes += cost
}

// again returns the piece for one more message: a pooled one with a new
// reference for it (the retry keeps its own).
func (p retryPiece) again() ([]byte, *bufpool.Buf) {
	if p.buf != nil {
		p.buf.Retain()
	}
	return p.b, p.buf
}

// dropRetry forgets the request kept for retry; lost says whether a
// retry is impossible from now on (the body outgrew retry-buffer). The
// list keeps its room for the next request.
func (s *stream) dropRetry(lost bool) {
	for _, p := range s.retry {
		p.buf.Release()
	}
	clear(s.retry)
	s.retry, s.retryBytes, s.retryLost = s.retry[:0], 0, lost
}

// bind attaches the session to node n of vh.
func (c *conn) bind(vh *session.VHost, n *session.Node) {
	if c.node != nil {
		c.leave(c.node)
		c.node.Unbind()
	}
	c.vhost, c.node, c.nodeEpoch = vh, n, n.Epoch()
	n.Bind()
}

// endRequest forgets the request in flight (its node binding stays) and
// queues the connection for this turn's flush, which closes it when
// closeAfter is set, even if no byte is left to write.
func (c *conn) endRequest() {
	c.phase = phIdle
	c.dropRetry(false)
	c.lastActive = c.srv().now() // idle-timeout counts from here
	c.l.markDirty(c)
}

// fail answers the current request with a proxy error and closes the
// connection after it; nothing more is read from the client.
func (c *conn) fail(status int, msg string) { c.failAs(statusReason(status), status, msg) }

// failAs is fail counting the rejection under reason.
func (c *conn) failAs(reason string, status int, msg string) {
	c.srv().stats.Rejected.Add(1)
	c.srv().reject(reason)
	c.reading = false
	if c.ex.start == 0 {
		// A head too malformed to begin an exchange: counted (no vhost),
		// not logged (nothing of it is known).
		c.ex = exchange{start: c.l.clock()}
	}
	c.queue(c.answerBytes(protocol.AppendErrorDate(nil, status, msg, true, c.srv().date())))
	c.closeAfter = true
	c.discard = true
	c.l.responded(&c.ex, status)
	c.l.finish(&c.ex, c.node, c.sid)
	c.endRequest()
}

// statusReason names a rejection the proxy answers with status.
func statusReason(status int) string {
	switch status {
	case 400:
		return "bad_request"
	case 404:
		return "no_vhost"
	case 408:
		return "head_timeout"
	case 413:
		return "body_too_large"
	case 431:
		return "head_too_large"
	case 502:
		return "bad_gateway"
	case 503:
		return "no_live_node"
	case 504:
		return "node_timeout"
	}
	return "status_" + strconv.Itoa(status)
}

// bodyDeadline is a response deadline pushed on by a piece of the
// request body that went to the node: `timeout` counts from the
// request's last byte, so that an upload longer than it is not cut, as
// nginx's proxy timeouts count from the last byte sent. The coarse
// clock lags by up to sweepEvery: that much is added, so that the
// deadline never comes early.
func bodyDeadline(by int64, s *Server, timeout time.Duration) int64 {
	return max(by, s.now()+int64(timeout)+int64(sweepEvery))
}
