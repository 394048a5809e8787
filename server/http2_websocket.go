package server

import (
	"github.com/gobwas/ws"
	"golang.org/x/net/http2/hpack"
	"unicode/utf8"

	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/protocol"
)

// WebSocket over HTTP/2 (RFC 8441). The proxy announces
// SETTINGS_ENABLE_CONNECT_PROTOCOL; a stream opened with an extended
// CONNECT (:protocol websocket) becomes a WebSocket session: its node
// gets the environ of the HTTP/1.1 handshake it knows (REQUEST_METHOD GET,
// HTTP_UPGRADE websocket, SERVER_PROTOCOL HTTP/2), the proxy answers 200
// itself (as it answers 101 on HTTP/1.1), and the stream's DATA carries
// WebSocket frames both ways, under the stream's flow control. The
// client's END_STREAM is the TCP FIN of RFC 6455; the proxy's close frame
// ends the stream.

// h2WSVersion426 answers a handshake of another WebSocket version (RFC
// 6455 §4.4 names the version the server speaks).
const h2WSVersion426 = "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 30\r\n\r\n" +
	"unsupported WebSocket version\n"

// h2WebSocketRequest checks an extended CONNECT and turns r into the
// request of an HTTP/1.1 handshake; it answers a bad one and reports
// whether to go on.
func (c *conn) h2WebSocketRequest(st *h2Stream, r *protocol.Request) bool {
	w, ok := protocol.IsWebSocketUpgrade(r)
	switch {
	case !ok:
		c.h2Respond(st, 501, "unsupported :protocol")
		return false
	case c.h2.hdrEnd || r.ContentLength > 0:
		// RFC 8441 §4: the stream carries the WebSocket's bytes.
		c.h2Respond(st, 400, "bad WebSocket handshake")
		return false
	case string(w.Version) != "13":
		c.srv().stats.Rejected.Add(1)
		c.h2RespondRaw(st, []byte(h2WSVersion426))
		return false
	}
	st.ws = true
	r.Method = []byte("GET")
	r.Headers = append(r.Headers,
		protocol.Header{Name: []byte("Connection"), Value: []byte("Upgrade")},
		protocol.Header{Name: []byte("Upgrade"), Value: []byte("websocket")})
	return true
}

// h2WebSocketAccept answers the handshake: 200, naming proto when it is
// not "".
func (c *conn) h2WebSocketAccept(st *h2Stream, proto string) {
	h := c.h2
	h.encBuf.Reset()
	_ = h.enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	if proto != "" {
		_ = h.enc.WriteField(hpack.HeaderField{Name: "sec-websocket-protocol", Value: proto})
	}
	c.h2QueueHeaders(st.id, false, h.encBuf.Bytes())
	st.phase = phStreaming
	st.mode = modeNone
	// The handshake is the exchange; the messages after it are not.
	c.l.responded(&st.ex, 200)
	c.l.finish(&st.ex, st.node, st.sid)
	if held := st.wsIn; len(held) > 0 {
		// Frames the client sent before the node accepted.
		st.wsIn = nil
		c.h2WebSocketData(st, held, false)
		c.h2WSAccount(st)
		if c.h2.streams[st.id] != st {
			return // they failed it, or closed it
		}
	}
	if c.h2.windowsHeld {
		// No longer awaiting: its window may go back now (h2WSAccount
		// gives windows back only when what it holds changed).
		c.h2GiveWindows()
	}
	if c.srv().draining.Load() {
		// Accepted by its node while the server stops: the drain's
		// close (1001) passed this stream by, still awaiting.
		c.h2WebSocketClose(st, ws.StatusGoingAway, "server shutting down")
		return
	}
	if st.endRecv {
		// The client ended its half while the node decided: so do we.
		c.h2Write(st, nil, true)
	}
}

// h2WebSocketData reads the client's frames from a stream's DATA; a
// frame split across DATA frames waits in wsIn.
func (c *conn) h2WebSocketData(st *h2Stream, data []byte, end bool) {
	opts := &c.srv().opts
	if st.wsAwait != nil {
		// Before the node's answer the client may send frames already:
		// they are held, up to a message's worth (more resets the
		// stream), and read once the node accepts (h2WebSocketAccept),
		// as HTTP/1.1 keeps them; they were dropped, and a frame split
		// across the acceptance was read from its middle. The client
		// may also end its half already.
		if len(st.wsIn)+len(data) > opts.MaxWebSocketMessage+wsHeaderPeek {
			c.h2ResetBad(st.id, protocol.H2ProtocolError)
			return
		}
		st.wsIn = append(st.wsIn, data...)
		if end {
			st.endRecv = true
		}
		return
	}
	if end {
		// The client's half is over before anything below ends ours (a
		// close frame in this DATA, a bad frame): our END_STREAM then
		// closes the stream, with no RST_STREAM after it.
		st.endRecv = true
	}
	if st.endSent || st.endPending {
		// Our close frame is sent, or waits for window: the client's
		// frames can no longer be answered, and are dropped as they
		// come (held, they would grow without bound while the client's
		// window stays closed).
		st.wsIn = nil
		st.wsFrags = wsFrags{}
		if end {
			c.h2EndRecv(st)
		}
		return
	}
	buf := data
	if len(st.wsIn) > 0 {
		st.wsIn = append(st.wsIn, data...)
		buf = st.wsIn
	}
	completed := false
	for len(buf) >= 2 && c.h2.streams[st.id] == st && !st.endSent && !st.endPending {
		head := buf[:min(len(buf), wsHeaderPeek)]
		h, hn, ok, err := protocol.ParseFrameHeader(head, st.wsFrags.limit(head, int64(opts.MaxWebSocketMessage)))
		if err != nil {
			st.wsFail(err)
			return
		}
		if !ok {
			break
		}
		if !h.Masked {
			st.wsFail(protocol.ErrWSUnmasked) // RFC 8441 §5: RFC 6455 framing, masks included
			return
		}
		total := hn + int(h.Length)
		if len(buf) < total {
			break
		}
		wsFrame(st, &st.wsFrags, &c.srv().bufs, opts.MaxWebSocketMessage, &h, buf[hn:total])
		buf = buf[total:]
		completed = completed || h.Fin && !h.OpCode.IsControl()
	}
	if c.h2.streams[st.id] != st {
		return
	}
	defer func() { c.srv().wsMessageBy(&st.wsBy, len(st.wsIn) > 0 || st.wsFrags.p != nil, completed) }()
	// What is left is short of a frame: keep it (copied out of the
	// connection's buffer, or moved to the front of wsIn).
	switch {
	case len(buf) == 0 || end || st.endSent || st.endPending:
		// An idle WebSocket holds no buffer; nor does one whose client
		// ended its half (that frame can never complete), nor one that
		// sent its close frame in this DATA (the rest is dropped).
		st.wsIn = nil
		if end {
			st.wsFrags = wsFrags{}
		}
	case len(st.wsIn) > 0 && len(buf) == len(st.wsIn):
		// Nothing consumed: it is wsIn already (a big frame arriving in
		// DATA frames was copied onto itself at each one).
	case cap(st.wsIn) > 2*len(buf)+wsInSlack:
		// A big frame's buffer, holding a small rest: it would count
		// (and be held) as the big one.
		st.wsIn = append(make([]byte, 0, len(buf)), buf...)
	default:
		st.wsIn = append(st.wsIn[:0], buf...)
	}
	if end {
		// The client's FIN: our side ends too (nothing more can be
		// answered), and the node gets `end` as the stream closes.
		c.h2Abandoned(st)
		if !st.endSent && !st.endPending {
			c.h2Write(st, nil, true)
		}
		c.h2EndRecv(st)
	}
}

// h2WebSocketApply sends a node's reply on a WebSocket stream.
func (c *conn) h2WebSocketApply(st *h2Stream, r *reply) {
	if st.wsAwait != nil {
		c.h2WebSocketNodeAnswer(st, r)
		return
	}
	switch r.typ {
	case rWebSocket:
		if !utf8.Valid(r.body) {
			c.badNodeText(st.node)
			c.h2WebSocketClose(st, ws.StatusInternalServerError, badNodeTextReason)
			return
		}
		c.h2WebSocketSend(st, ws.OpText, r.body)
	case rWebSocketBinary:
		c.h2WebSocketSend(st, ws.OpBinary, r.body)
	case rEnd:
		code, reason := nodeEndClose(r.body)
		c.h2WebSocketClose(st, code, reason)
	case rRetry:
		c.h2WebSocketClose(st, wsTryAgainLater, "backend asked to retry") // as over HTTP/1.1 (wsApply)
	default:
		// HTTP replies to the handshake's environ: the proxy answered it.
		c.srv().stats.Unexpected.Add(1)
	}
}

// h2WebSocketNodeAnswer applies the node's answer to a handshake it
// decides (websocket-handshake = node): 101 accepts (the client gets
// 200), another final status is the stream's HTTP response.
func (c *conn) h2WebSocketNodeAnswer(st *h2Stream, r *reply) {
	s := c.srv()
	head := r.body
	switch r.typ {
	case rHeaders:
	case rUwsgi:
		var err error
		if head, err = protocol.UwsgiResponseToHead(nil, r.body); err != nil {
			s.stats.BadResponse.Add(1)
			c.h2Respond(st, 502, "malformed response from backend")
			return
		}
	case rEnd:
		c.h2Respond(st, 502, "backend ended the session without a response")
		return
	case rRetry:
		// WebSocket streams keep no head to send another node (over
		// HTTP/1.1 the handshake fails over): the client gets the 502
		// HTTP/1.1 gives once no node would serve. (It waited for the
		// vhost's timeout, then 504.)
		c.h2Respond(st, 502, "no backend node could serve the request")
		return
	default:
		s.stats.Unexpected.Add(1)
		return
	}
	h11, _ := protocol.H2StatusLineAsHTTP11(head) // "HTTP/2 101 …" too
	hr, n, err := protocol.ParseResponseHead(h11)
	switch {
	case err != nil:
		s.stats.BadResponse.Add(1)
		c.h2Respond(st, 502, "malformed response from backend")
	case hr.Status == 101:
		w := st.wsAwait
		st.wsAwait = nil
		proto, ok := w.subprotocol(h11[:n])
		if !ok {
			s.stats.BadResponse.Add(1)
			c.h2Respond(st, 502, "backend chose a subprotocol the client did not offer")
			return
		}
		c.h2WebSocketAccept(st, proto)
	case hr.Status < 200:
		// An interim head before the decision: nothing to pass on.
	case hr.Status < 300:
		// To an extended CONNECT a 2xx is the acceptance (RFC 8441 §5):
		// the client would take this response's body for WebSocket
		// frames. A node accepts with 101.
		s.stats.BadResponse.Add(1)
		c.h2Respond(st, 502, "backend answered the WebSocket handshake with a 2xx status other than 101")
	default:
		// Refused: an ordinary response; the stream is no WebSocket, and
		// what its client still sends (frames sent before it saw the
		// refusal) is no request body: the node gets none of it.
		st.wsAwait, st.ws, st.noBody = nil, false, true
		st.wsIn = nil // frames sent before the refusal
		c.h2WSAccount(st)
		c.h2ResponseHead(st, head)
		if st.phase == phStreaming {
			// (h2Apply's own push skipped this stream: it was a WebSocket)
			st.answerBy = c.l.clock() + int64(st.vhost.ResponseIdleTimeout)
		}
	}
}

// h2WebSocketSend writes one message as one frame.
func (c *conn) h2WebSocketSend(st *h2Stream, op ws.OpCode, body []byte) {
	if st.endSent || st.endPending {
		return
	}
	c.h2Write(st, c.l.used(protocol.AppendFrameHeader(c.l.arenaRoom(protocol.MaxFrameHeader), op, true, len(body))), false)
	c.h2Write(st, body, false)
	if st.pending == nil {
		c.h2MaybeGrant(st)
	}
}

// h2WebSocketClose sends a close frame and ends the stream after it.
func (c *conn) h2WebSocketClose(st *h2Stream, code ws.StatusCode, reason string) {
	if st.endSent || st.endPending || c.h2.streams[st.id] != st {
		return
	}
	// The client's frames can no longer be answered: what it holds of
	// them goes (and may let another stream have window).
	st.wsIn, st.wsFrags = nil, wsFrags{}
	c.h2WSAccount(st)
	c.h2Write(st, protocol.AppendCloseFrame(nil, code, reason), true)
	if c.h2.streams[st.id] == st && st.node != nil && !st.nodeEnded {
		// The node hears at once, as over HTTP/1.1: the close frame may
		// wait for the client's window (up to stall-timeout) before the
		// stream closes. After what waits for it of the stream's.
		if st.waiting > 0 {
			c.h2Send(st, "end", nil)
			st.endQueued = true // h2Close sends it anew if a reset drops it
		} else {
			c.endNow(st.node, st.sid)
		}
		st.nodeEnded = true
	}
}

// h2WebSocketMessageTimeout closes a WebSocket stream whose client began
// a message and did not complete it by st.wsBy (websocket-message-timeout,
// as over HTTP/1.1), and reports whether it did. A stream whose window
// is withheld (another stream goes first, or its messages wait for a
// stuck node) cannot complete it: its time counts from when it can.
func (c *conn) h2WebSocketMessageTimeout(st, lead *h2Stream, now int64) bool {
	s := c.srv()
	switch {
	case st.endSent || st.endPending || len(st.wsIn) == 0 && st.wsFrags.p == nil:
		st.wsBy = 0
		return false
	case c.h2HeldBack(st, lead) || c.readPaused:
		// Its window withheld, or the connection not read (what waits
		// for stuck nodes reached max-read-ahead): it cannot send.
		st.wsBy = now + int64(s.opts.WebSocketMessageTimeout)
		return false
	case now <= st.wsBy:
		return false
	}
	s.reject("websocket_message_timeout")
	c.h2WebSocketClose(st, ws.StatusPolicyViolation, "message not completed in time")
	return true
}

// An HTTP/2 WebSocket stream is a wsPeer.
func (st *h2Stream) wsOut(b []byte) {
	if !st.endSent && !st.endPending {
		st.c.h2Write(st, b, false)
	}
}

func (st *h2Stream) wsForward(typ string, buf *bufpool.Buf) { st.c.h2SendBuf(st, typ, buf) }

func (st *h2Stream) wsFail(err error) {
	code, reason := ws.StatusProtocolError, "protocol error"
	if we, ok := err.(*protocol.WSError); ok {
		code, reason = we.Code, we.Msg
	}
	st.c.srv().stats.Rejected.Add(1)
	st.c.h2WebSocketClose(st, code, reason)
}

func (st *h2Stream) wsClosing(code ws.StatusCode) { st.c.h2WebSocketClose(st, code, "") }

// A WebSocket stream holds a client frame until it is whole, and the
// fragments of a message until its last: up to max-websocket-message
// each. Many streams of one connection could so hold a hundred times
// what one HTTP/1.1 WebSocket may. Past max-read-ahead held by the
// connection's WebSocket streams together, only the stream holding the
// most gets its window back (so that it completes its message and frees
// what it holds); the others holding a part keep their windows closed
// until it did. A stream holding nothing is not held back: its next
// frames may be whole (small messages go on), and its window bounds
// what it can start.

// h2WSAccount counts what the stream holds now.
func (c *conn) h2WSAccount(st *h2Stream) {
	h := c.h2
	if h.streams[st.id] != st {
		return // closed: h2Close took it off
	}
	held := cap(st.wsIn)
	if st.wsFrags.p != nil {
		held += cap(st.wsFrags.p.frag)
	}
	if held == st.wsHeld {
		return
	}
	h.wsHeld += held - st.wsHeld
	st.wsHeld = held
	if h.windowsHeld {
		c.h2GiveWindows() // what it freed may let another stream go on
	}
}

// wsInSlack is how much more than twice its content wsIn may keep.
const wsInSlack = 4096

// h2WSLead is the WebSocket stream that may go on while the connection's
// WebSocket streams hold more than max-read-ahead: of those that can
// complete what they hold (the client may still send on them, and their
// messages do not wait for a stuck node), the one holding the most, the
// oldest of equals. Nil while they hold less, or when none can.
func (c *conn) h2WSLead() *h2Stream {
	h := c.h2
	if h.wsHeld <= c.srv().opts.MaxReadAhead {
		return nil
	}
	var lead *h2Stream
	for _, st := range h.streams {
		if st.wsHeld == 0 || st.waiting > 0 || st.endRecv || st.endSent || st.endPending || st.wsAwait != nil {
			continue
		}
		if lead == nil || st.wsHeld > lead.wsHeld || st.wsHeld == lead.wsHeld && st.id < lead.id {
			lead = st
		}
	}
	return lead
}
