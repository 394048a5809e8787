package server

import (
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
)

// startWebSocket answers the opening handshake and turns the connection
// into a WebSocket session: from now on its bytes are frames (wsTraffic).
// The node already has the handshake's environ as a `uwsgi` message.
// proto is the subprotocol to name ("" for none).
func (c *conn) startWebSocket(w protocol.WebSocketRequest, proto string) {
	c.queueOwn(c.l.used(protocol.AppendHandshake(c.l.arenaRoom(160+len(proto)), w.Key, proto)))
	c.l.responded(&c.ex, 101)
	c.l.finish(&c.ex, c.node, c.sid)
	c.switchProto(ProtoWebSocket)
	c.m = wsMachine{}
	c.headBy = 0 // from now on the deadline of a message begun (wsMessageBy)
	if c.parser != nil {
		// The handshake has no body: the parser is done for good.
		c.l.releaseParser(c.parser)
		c.parser = nil
	}
	c.endRequest()
	// What only HTTP requests use goes: an idle WebSocket holds the
	// least it can (many of them are the proxy's common case).
	c.l.putRetrySlice(c.retry) // dropped by endRequest
	c.retry = nil
	if c.srv().draining.Load() {
		// Accepted (by its node) while the server stops: the drain's
		// close (1001) passed this connection by, still awaiting.
		c.wsClose(ws.StatusGoingAway, "server shutting down")
	}
}

// checkWebSocketHandshake validates the opening handshake (RFC 6455
// §4.2.1) and answers a bad one; it reports whether to go on.
func (c *conn) checkWebSocketHandshake(r *protocol.Request, w protocol.WebSocketRequest) bool {
	switch {
	case string(r.Method) != "GET" || r.Minor != 1 || r.HasBody() || w.DupKey || !protocol.ValidWebSocketKey(w.Key):
		c.fail(400, "bad WebSocket handshake")
		return false
	case string(w.Version) != "13":
		// §4.4: answer 426 naming the version we speak.
		c.srv().stats.Rejected.Add(1)
		// RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
		c.queue(c.answerBytes(append(appendDated(nil, "HTTP/1.1 426 Upgrade Required", c.srv().date()),
			"\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 33\r\nConnection: Upgrade, close\r\n\r\nunsupported WebSocket version\r\n\r\n"...)))
		c.closeAfter = true
		c.discard = true
		c.srv().reject("websocket_version")
		c.l.responded(&c.ex, 426)
		c.l.finish(&c.ex, nil, c.sid)
		return false
	}
	return true
}

// wsHeaderPeek is the most bytes a frame header takes (§5.2).
const wsHeaderPeek = 14

// wsTraffic reads whole frames as they complete; an incomplete frame
// stays in gnet's inbound buffer until the rest arrives.
func (c *conn) wsTraffic() {
	max := int64(c.srv().opts.MaxWebSocketMessage)
	completed := false
	defer func() { c.srv().wsMessageBy(&c.headBy, c.wsHolding(), completed) }()
	for !c.closeAfter && len(c.outq) == 0 {
		avail := c.t.InboundBuffered()
		if avail < 2 {
			break
		}
		head, _ := c.t.Peek(min(avail, wsHeaderPeek))
		h, hn, ok, err := protocol.ParseFrameHeader(head, c.wsFrags.limit(head, max))
		if err != nil {
			c.wsFail(err)
			break
		}
		if !ok {
			break
		}
		if !h.Masked {
			// §5.1: a server MUST close on an unmasked client frame.
			c.wsFail(protocol.ErrWSUnmasked)
			break
		}
		total := hn + int(h.Length)
		if avail < total {
			break
		}
		frame, _ := c.t.Peek(total)
		wsFrame(c, &c.wsFrags, &c.srv().bufs, c.srv().opts.MaxWebSocketMessage, &h, frame[hn:])
		_, _ = c.t.Discard(total)
		completed = completed || h.Fin && !h.OpCode.IsControl()
	}
}

// wsMessageBy keeps in *by the time by which the message its client is
// sending must be complete (websocket-message-timeout): set when the
// proxy begins to hold part of one (a frame short of its end, or
// fragments), moved on when a message completes, cleared when nothing
// is held. Neither silence nor control frames move it: a client that
// began a message and then sends a ping a minute, or a byte, holds it
// no longer than one that sends nothing.
func (s *Server) wsMessageBy(by *int64, holding, completed bool) {
	switch {
	case !holding:
		*by = 0
	case completed || *by == 0:
		*by = s.now() + int64(s.opts.WebSocketMessageTimeout)
	}
}

// wsHolding reports whether the client began a message the proxy holds
// (part of a frame, or fragments) and may complete: not while reading
// waits for the node (outq), nor after the close handshake began.
func (c *conn) wsHolding() bool {
	return !c.closeAfter && len(c.outq) == 0 && (c.t.InboundBuffered() > 0 || c.wsFrags.p != nil)
}

// unmasked returns a fresh, unmasked copy of a frame payload.
func unmasked(h *ws.Header, p []byte) []byte {
	out := append(make([]byte, 0, len(p)), p...)
	ws.Cipher(out, h.Mask, 0)
	return out
}

// wsFrags joins a fragmented message (§5.4). It is a pointer to what
// is being joined, nil when no message is open: 8 bytes in every idle
// connection instead of a slice and an opcode.
type wsFrags struct{ p *wsFrag }

type wsFrag struct {
	frag []byte
	op   ws.OpCode
}

// limit is the most the data frame whose header begins head may carry
// of a message of at most max bytes, checked on its header before its
// payload is held: a continuation, what is left of the message (it was
// checked only once whole, and a client could hold a second message's
// worth in a frame on top of the fragments); another frame, max (one
// inside a fragmented message fails as a protocol error, 1002).
func (fr wsFrags) limit(head []byte, max int64) int64 {
	if fr.p == nil || len(head) == 0 || ws.OpCode(head[0]&0x0f) != ws.OpContinuation {
		return max
	}
	return max - int64(len(fr.p.frag))
}

// wsPeer is one WebSocket session's client side: the connection itself
// (HTTP/1.1) or one HTTP/2 stream (RFC 8441). Frames from the client are
// handled alike for both (wsFrame).
type wsPeer interface {
	wsOut(b []byte)                         // queue bytes to the client
	wsForward(typ string, buf *bufpool.Buf) // one whole message to the node; the message takes buf's reference
	wsFail(err error)                       // close for a protocol violation
	wsClosing(code ws.StatusCode)           // the client closed: echo, then end
}

// wsFrame handles one whole client frame (§5.4–5.6).
func wsFrame(p wsPeer, fr *wsFrags, bufs *bufpool.Pool, maxMsg int, h *ws.Header, payload []byte) {
	switch h.OpCode {
	case ws.OpPing:
		p.wsOut(protocol.AppendFrame(nil, ws.OpPong, unmasked(h, payload)))
	case ws.OpPong:
	case ws.OpClose:
		code, err := protocol.CheckCloseBody(unmasked(h, payload))
		if err != nil {
			p.wsFail(err)
			return
		}
		p.wsClosing(code)
	case ws.OpText, ws.OpBinary:
		if fr.p != nil {
			p.wsFail(protocol.ErrWSContinuation)
			return
		}
		if !h.Fin {
			fr.p = &wsFrag{frag: unmasked(h, payload), op: h.OpCode}
			return
		}
		// A whole message, the common case: unmasked into a pooled
		// buffer, which the message to the node carries.
		buf := bufs.Get(len(payload))
		copy(buf.B, payload)
		ws.Cipher(buf.B, h.Mask, 0)
		wsDeliver(p, h.OpCode, buf)
	case ws.OpContinuation:
		if fr.p == nil {
			p.wsFail(protocol.ErrWSContinuation)
			return
		}
		if len(fr.p.frag)+len(payload) > maxMsg {
			p.wsFail(protocol.ErrWSTooBig)
			return
		}
		start := len(fr.p.frag)
		fr.p.frag = append(fr.p.frag, payload...)
		ws.Cipher(fr.p.frag[start:], h.Mask, 0)
		if h.Fin {
			msg, op := fr.p.frag, fr.p.op
			fr.p = nil
			wsDeliver(p, op, bufpool.Wrap(msg))
		}
	}
}

// wsDeliver forwards one whole message, in buf, to the node.
func wsDeliver(p wsPeer, op ws.OpCode, buf *bufpool.Buf) {
	typ := "websocket-binary"
	if op == ws.OpText {
		// §8.1: a text message that is not UTF-8 fails the connection.
		if !utf8.Valid(buf.B) {
			buf.Release()
			p.wsFail(protocol.ErrWSUTF8)
			return
		}
		typ = "websocket"
	}
	p.wsForward(typ, buf)
}

// The connection is the wsPeer of an HTTP/1.1 WebSocket.
func (c *conn) wsOut(b []byte)                         { c.queue(b) }
func (c *conn) wsForward(typ string, buf *bufpool.Buf) { c.sendBuf(typ, buf) }

// wsClosing answers the client's close frame (§5.5.1: echoing the
// code), then closes.
func (c *conn) wsClosing(code ws.StatusCode) {
	c.queue(protocol.AppendCloseFrame(nil, code, ""))
	c.closeAfter = true
	c.l.markDirty(c)
	if !c.endSent {
		// The node hears at once, as in wsClose: a client that does
		// not read our close frame keeps the connection up to
		// stall-timeout and lingering-time before OnClose.
		c.sendEnd()
	}
}

// wsFail closes the session for a protocol violation with its code.
func (c *conn) wsFail(err error) {
	code, reason := ws.StatusProtocolError, "protocol error"
	if we, ok := err.(*protocol.WSError); ok {
		code, reason = we.Code, we.Msg
	}
	c.srv().stats.Rejected.Add(1)
	c.wsClose(code, reason)
}

// wsClose sends a close frame and closes the connection after it.
func (c *conn) wsClose(code ws.StatusCode, reason string) {
	if c.closeAfter {
		return
	}
	c.queue(protocol.AppendCloseFrame(nil, code, reason))
	c.closeAfter = true
	c.l.markDirty(c)
	if !c.endSent {
		// The node hears at once: the connection may linger for the
		// client's close frame (lingering-time) before OnClose.
		c.sendEnd()
	}
}

// wsReply sends a node's message to the client as one frame.
func (c *conn) wsReply(op ws.OpCode, body []byte) {
	if c.closeAfter {
		return
	}
	if len(body) <= copyOutMax {
		// Small: copied with its header, so that frames in a row go out
		// as one piece.
		out := protocol.AppendFrameHeader(c.l.arenaRoom(protocol.MaxFrameHeader+len(body)), op, true, len(body))
		c.queueOwn(c.l.used(append(out, body...)))
		return
	}
	c.queueOwn(c.l.used(protocol.AppendFrameHeader(c.l.arenaRoom(protocol.MaxFrameHeader), op, true, len(body))))
	c.queue(body)
}

// badNodeTextReason closes a WebSocket whose node sent a text message
// that is not UTF-8: sent on, the client would have to fail the
// connection (RFC 6455 §8.1) and blame the proxy.
const badNodeTextReason = "backend sent invalid UTF-8 text"

// nodeEndClose is the close frame a node's `end` to a WebSocket asks for:
// its body, when it is a valid close frame's payload (a code a peer may
// send, then UTF-8; RFC 6455 §5.5.1, §7.4), its reason cut to the 123
// bytes a close frame holds at a character's start; or 1000 without a
// reason (an empty body, as nodes written for the original send, or any
// other).
func nodeEndClose(body []byte) (ws.StatusCode, string) {
	if len(body) < 2 {
		return ws.StatusNormalClosure, ""
	}
	code, err := protocol.CheckCloseBody(body)
	if err != nil {
		return ws.StatusNormalClosure, ""
	}
	reason := body[2:]
	if len(reason) > maxCloseReason {
		n := maxCloseReason
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	return code, string(reason)
}

// maxCloseReason is what a close frame holds of a reason: 125 bytes of
// control frame payload less the code's 2.
const maxCloseReason = 123

// badNodeText counts a node's text message that is not UTF-8 and logs it
// at most once a second per loop.
func (c *conn) badNodeText(n *session.Node) {
	s := c.srv()
	s.stats.BadMessage.Add(1)
	if now := c.l.clock(); now-c.l.badTextLogged >= int64(time.Second) {
		c.l.badTextLogged = now
		s.opts.Logger.Warn("a node sent a WebSocket text message that is not UTF-8: the client's WebSocket is closed with 1011", "node", n.Name)
	}
}

// wsApply sends a node's reply to the WebSocket client.
func (c *conn) wsApply(r *reply) {
	switch r.typ {
	case rWebSocket:
		if !utf8.Valid(r.body) {
			c.badNodeText(c.node)
			c.wsClose(ws.StatusInternalServerError, badNodeTextReason)
			return
		}
		c.wsReply(ws.OpText, r.body)
	case rWebSocketBinary:
		c.wsReply(ws.OpBinary, r.body)
	case rEnd:
		c.wsClose(nodeEndClose(r.body))
	case rRetry:
		// The node will not serve this session (node.Serve says so
		// while it stops, and forgets it): left open, the client's
		// messages would go nowhere. 1013 (try again later) sends the
		// client back, to another node.
		c.wsClose(wsTryAgainLater, "backend asked to retry")
	default:
		// HTTP replies to the handshake's uwsgi message: the proxy
		// already answered it (nodes written for the original answer
		// every `uwsgi` message with a response).
		c.srv().stats.Unexpected.Add(1)
	}
}

// wsTryAgainLater is RFC 6455's 1013 (IANA registry): the server is
// overloaded or cannot serve the session now; the client may reconnect.
const wsTryAgainLater ws.StatusCode = 1013
