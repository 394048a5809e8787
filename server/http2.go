package server

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/gobwas/ws"
	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
	"github.com/blastbeat/blastbeat/zmqbridge"
)

// The HTTP/2 machine (RFC 9113): each stream is a session of its own,
// with its own sid, node, deadline, retry and response framing, so nodes
// see an HTTP/2 request exactly as an HTTP/1.1 one (SERVER_PROTOCOL
// aside). Extended CONNECT (RFC 8441) carries WebSockets
// (http2_websocket.go); retry and failover are http2_failover.go's.

// h2 is the HTTP/2 machine; its state is conn.h2.
type h2 struct{}

func (h2) traffic(c *conn)                     { c.h2Traffic() }
func (h2) apply(c *conn, r *reply)             { c.h2Apply(r) }
func (h2) undeliverable(c *conn, r *reply)     { c.h2Undeliverable(r) }
func (h2) timeouts(c *conn, now int64)         { c.h2Timeouts(now) }
func (h2) readAhead(*conn) bool                { return false }
func (h2) drainIdle(c *conn)                   { c.h2Drain() }
func (h2) readWaits(c *conn) bool              { return c.h2ReadWaits() }
func (h2) outqMoved(c *conn, m *zmqbridge.Msg) { c.h2OutqMoved(m) }

// h2Conn is the connection-wide HTTP/2 state. Owned by the loop.
type h2Conn struct {
	rd      protocol.H2Reader
	dec     *hpack.Decoder
	enc     *hpack.Encoder
	encBuf  bytes.Buffer
	bld     protocol.H2RequestBuilder
	ci      protocol.ConnInfo
	streams map[uint32]*h2Stream
	bySID   map[session.SID]*h2Stream

	preface   bool      // the client's preface was read
	settings  bool      // and its SETTINGS, the first frame (RFC 9113 §3.4)
	lastID    uint32    // highest client stream opened
	goaway    bool      // GOAWAY sent: no new streams
	maxFrame  uint32    // the client's SETTINGS_MAX_FRAME_SIZE
	initWin   int64     // the client's SETTINGS_INITIAL_WINDOW_SIZE
	sendWin   int64     // connection-level send window
	resets    int       // RST_STREAMs from the client, and resets its errors caused, since the last sweep
	retryHeld int       // what the streams keep for retry (retry-buffer bounds it: h2Keep)
	pendSt    *h2Stream // whose small DATA this read joined in loop.bodyAcc (h2FlushData)
	abandoned int       // streams the client reset while their node worked on them, less the sweeps' allowance
	hdrBuf    []byte    // a field block's fragments before its last (h2Block)
	control   int       // control frames since the last sweep (floods)
	unacked   int64     // request DATA bytes not yet given back (WINDOW_UPDATE)
	held      int64     // response bytes the streams hold (pending), in pendingTotal
	heldOwn   int64     // of which streams of nodes that speak no credits hold
	turnOut   int64     // DATA bytes queued since the last flush

	// unreturned is the connection window the proxy's DATA used that
	// the client has not given back: a WINDOW_UPDATE that gives back
	// some is no control frame (h2FreeUpdate). closedOwed is what closed
	// streams' windows were owed: a client gives back the window of
	// what it reads after the stream ended.
	unreturned int64
	closedOwed int64

	// What waits in outq (http2_queue.go): its cost (msgCost), whether
	// a message of it waits for the ring rather than a stuck node, and
	// whether a stream's WINDOW_UPDATE is withheld until its messages go.
	queued      int
	ringWait    bool
	windowsHeld bool

	// wsHeld is what the WebSocket streams hold of partial frames and
	// messages (http2_websocket.go, h2WSAccount).
	wsHeld int

	// resetIDs are the streams the proxy reset or refused last: frames
	// the client sent on them before it saw the RST_STREAM are ignored
	// (RFC 9113 §5.1), not errors that would end the connection.
	resetIDs  [h2ResetsRemembered]uint32
	resetNext uint8

	hdrID   uint32 // stream of the field block being read; 0: none
	hdrEnd  bool   // its HEADERS carried END_STREAM
	hdrDrop bool   // decode it only for HPACK's sake (refused stream)
}

// h2Stream is one stream: one exchange with one node.
type h2Stream struct {
	c     *conn // the stream's connection (the wsPeer of a WebSocket)
	id    uint32
	sid   session.SID
	node  *session.Node
	vhost *session.VHost
	stream

	sendWin    int64
	unreturned int64  // the stream's window our DATA used, not given back yet (h2FreeUpdate)
	waiting    int32  // its messages that wait in outq (http2_queue.go)
	pending    []byte // response DATA waiting for window, or for the client to read (h2Room); nil when none
	endPending bool   // END_STREAM follows pending
	blockedAt  int64  // when pending last moved (stall-timeout)
	lastIn     int64  // when the client last sent on it (idle-timeout once answered)
	endRecv    bool   // the client's half is closed
	endSent    bool   // ours is
	reqCL      int64  // the request's content-length; -1: none
	recvd      int64
	unacked    int64 // DATA bytes of this stream not yet given back
	window     int64 // its receive window: HTTP/2's 65535, http2-stream-window once its body goes to a node

	ws      bool       // an RFC 8441 WebSocket: DATA carries its frames
	wsAwait *wsPending // its handshake waits for the node's answer
	// nodeEnded: its node got `end` already (the proxy answered it), or
	// has it queued behind the stream's messages that wait (endQueued).
	nodeEnded bool
	endQueued bool
	// nodeSpoke: a message of its node was applied to it. A WebSocket
	// the proxy accepted that the client closes before that is abandoned
	// as a request reset before its answer is (h2Abandoned).
	nodeSpoke bool
	abandoned bool    // counted in h2Conn.abandoned already
	wsIn      []byte  // client WebSocket bytes short of a whole frame
	wsFrags   wsFrags // a fragmented message being joined
	wsHeld    int     // their capacity, as counted in h2Conn.wsHeld
	wsBy      int64   // unix ns: the message begun must be complete by then (wsMessageBy); 0: none held
	noBody    bool    // a refused WebSocket: what the client sends is dropped
}

// HTTP/2 limits.
const (
	h2InitialWindow = 65535
	h2MaxWindow     = 1<<31 - 1

	// h2MinFreeUpdate: a WINDOW_UPDATE that gives back at least this much
	// of what the proxy's DATA used is not counted as a control frame
	// (h2FreeUpdate). Go's client gives back every 4 KiB it reads, on the
	// stream and the connection: a fast download must not look like a
	// flood; smaller increments (a window dribbled open a byte at a time)
	// still count.
	h2MinFreeUpdate = 1024

	// h2ResetsRemembered is how many of the streams the proxy reset last
	// it remembers (h2Conn.resetIDs): frames in flight on them are
	// ignored; on older ones they get STREAM_CLOSED again.
	h2ResetsRemembered = 16
)

// The flood limits (config http2-max-resets, http2-max-control-frames)
// count per sweep period (sweepEvery): client RST_STREAMs (CVE-2023-44487,
// rapid reset) and frames the proxy works for without a request (SETTINGS
// and PING, each answered; PRIORITY; empty DATA; WINDOW_UPDATE, unless
// it gives back window the proxy's DATA used: CVE-2019-9512, -9515,
// -9518). More is ENHANCE_YOUR_CALM.

// startH2 turns the connection into an HTTP/2 one: the server's preface
// (its SETTINGS) goes out at once; the client's is read first.
func (c *conn) startH2() {
	s := c.srv()
	h := &h2Conn{streams: map[uint32]*h2Stream{}, bySID: map[session.SID]*h2Stream{},
		maxFrame: 16384, initWin: h2InitialWindow, sendWin: h2InitialWindow}
	h.rd.Init(protocol.H2Limits{MaxHeaderBlockBytes: s.opts.HTTP2MaxHeaderBlock})
	h.bld.Init(s.limits, true)
	h.enc = hpack.NewEncoder(&h.encBuf)
	// Responses are encoded without the dynamic table (as nginx does):
	// an entry there is kept for the connection's life, about 1 KiB per
	// idle connection, for a few bytes saved per response. The first
	// field block says so (a size update to 0).
	h.enc.SetMaxDynamicTableSize(0)
	// Until the client acknowledges the proxy's SETTINGS it may encode
	// with HPACK's default table, 4096 bytes (RFC 9113 §6.5.3): a smaller
	// http2-header-table-size applies from its SETTINGS ACK on.
	h.dec = hpack.NewDecoder(uint32(max(s.opts.HTTP2HeaderTableSize, h2DefaultTableSize)), func(f hpack.HeaderField) { _ = h.bld.Add(f.Name, f.Value) })
	h.dec.SetMaxStringLength(s.opts.MaxHeaderSize)
	h.ci = c.connInfo()
	h.ci.Proto = "HTTP/2"
	c.h2 = h
	c.m = h2{}
	c.switchProto(ProtoHTTP2)
	if c.parser != nil {
		c.l.releaseParser(c.parser)
		c.parser = nil
	}
	c.queue(protocol.AppendH2Settings(nil,
		protocol.H2Setting{ID: protocol.H2SettingMaxConcurrentStreams, Val: uint32(s.opts.HTTP2MaxStreams)},
		protocol.H2Setting{ID: protocol.H2SettingMaxHeaderListSize, Val: uint32(s.opts.MaxHeaderSize)},
		protocol.H2Setting{ID: protocol.H2SettingHeaderTableSize, Val: uint32(s.opts.HTTP2HeaderTableSize)},
		protocol.H2Setting{ID: protocol.H2SettingEnableConnectProtocol, Val: 1},
	))
	if more := s.opts.HTTP2ConnectionWindow - h2InitialWindow; more > 0 {
		// The connection's window starts at 65535 whatever SETTINGS say
		// (RFC 9113 §6.9.2): the rest is given at once. Uploads run at
		// one window per round trip: 64 KiB per 50 ms is 1.3 MB/s.
		c.queue(protocol.AppendH2WindowUpdate(nil, 0, uint32(more)))
	}
}

// h2OpenWindow gives a stream whose request body goes to its node the
// rest of http2-stream-window (a WINDOW_UPDATE after its HEADERS). The
// streams start at HTTP/2's 65535 (the proxy's SETTINGS leave it): a
// WebSocket stream keeps that, since what it holds of unfinished frames
// is bounded by its window (times http2-max-streams per connection), and
// so does one the proxy answers itself.
func (c *conn) h2OpenWindow(st *h2Stream) {
	if more := int64(c.srv().opts.HTTP2StreamWindow) - st.window; more > 0 {
		c.queueOwn(c.l.used(protocol.AppendH2WindowUpdate(c.l.arenaRoom(h2WindowUpdateLen), st.id, uint32(more))))
		st.window += more
	}
}

// h2Traffic reads the client's preface and frames.
func (c *conn) h2Traffic() {
	h := c.h2
	defer c.h2FlushData()
	for !c.closeAfter && !c.h2ReadWaits() && c.m == (h2{}) {
		buf, _ := c.t.Peek(-1)
		if len(buf) == 0 {
			return
		}
		if !h.preface {
			n, err := protocol.MatchH2Preface(buf)
			if err != nil {
				c.h2ConnError(protocol.ErrH2BadPreface)
				return
			}
			if n == 0 {
				return
			}
			_, _ = c.t.Discard(n)
			h.preface = true
			continue
		}
		n, f, err := h.rd.Feed(buf)
		if err != nil {
			var se *protocol.H2StreamError
			if errors.As(err, &se) && se.StreamID > h.lastID && errors.Is(err, protocol.ErrH2WindowUpdateZero) {
				// §5.1: WINDOW_UPDATE on an idle stream is a connection
				// error, whatever its increment (as one that is not 0).
				c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2ProtocolError, Reason: "WINDOW_UPDATE on an idle stream"})
				return
			}
			if se != nil {
				c.h2ResetBad(se.StreamID, se.Code)
				if n > 0 {
					_, _ = c.t.Discard(n)
				}
				continue
			}
			c.h2ConnError(err)
			return
		}
		if n == 0 {
			return
		}
		if f != nil {
			c.h2Frame(f) // f's slices point into buf: used before Discard
		}
		_, _ = c.t.Discard(n)
	}
}

// h2Frame handles one whole frame.
func (c *conn) h2Frame(f *protocol.H2Frame) {
	h := c.h2
	if !h.settings {
		// §3.4: the preface's SETTINGS frame comes first.
		if f.Type != protocol.H2FrameSettings || f.Ack() {
			c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2ProtocolError, Reason: "the first frame is not SETTINGS"})
			return
		}
		h.settings = true
	}
	switch f.Type {
	case protocol.H2FrameSettings, protocol.H2FramePing, protocol.H2FramePriority:
		h.control++
	case protocol.H2FrameWindowUpdate:
		if !c.h2FreeUpdate(f) {
			h.control++
		}
	case protocol.H2FrameData:
		if len(f.Data) == 0 && !f.EndStream() {
			// No data, padding or not (a padded empty frame was free).
			h.control++
		}
	}
	if h.pendSt != nil && (f.Type != protocol.H2FrameData || f.StreamID != h.pendSt.id) {
		c.h2FlushData() // the joined DATA goes before anything else the client sent after it
	}
	if h.control > c.srv().opts.HTTP2MaxControlFrames {
		c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2EnhanceYourCalm, Reason: "control frame flood"})
		return
	}
	switch f.Type {
	case protocol.H2FrameSettings:
		if f.Ack() {
			if t := c.srv().opts.HTTP2HeaderTableSize; t < h2DefaultTableSize {
				// The client must now update its table to at most t
				// (RFC 7541 §4.2); one that does not still gets no more.
				h.dec.SetAllowedMaxDynamicTableSize(uint32(t))
				h.dec.SetMaxDynamicTableSize(uint32(t))
			}
			return
		}
		initWin := h.initWin
		for i := 0; i < f.NumSettings(); i++ {
			st := f.Setting(i)
			switch st.ID {
			case protocol.H2SettingMaxFrameSize:
				h.maxFrame = st.Val
			case protocol.H2SettingInitialWindowSize:
				initWin = int64(st.Val)
			case protocol.H2SettingHeaderTableSize:
				h.enc.SetMaxDynamicTableSizeLimit(st.Val)
			}
		}
		if delta := initWin - h.initWin; delta != 0 {
			// §6.9.2: the change applies to every open stream; once per
			// frame, whatever number of entries set it.
			h.initWin = initWin
			for _, s := range h.streams {
				if s.sendWin += delta; s.sendWin > h2MaxWindow {
					c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2FlowControlError, Reason: "window overflow"})
					return
				}
			}
		}
		c.queue(protocol.AppendH2SettingsAck(nil))
		c.h2FlushBlocked()
	case protocol.H2FramePing:
		if !f.Ack() {
			c.queue(protocol.AppendH2Ping(nil, true, f.PingData))
		}
	case protocol.H2FrameGoAway:
		// §6.8: the client opens no more streams and will close the
		// connection itself; the open streams, and PINGs, go on.
	case protocol.H2FrameWindowUpdate:
		if f.StreamID == 0 {
			if h.sendWin += int64(f.Increment); h.sendWin > h2MaxWindow {
				c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2FlowControlError, Reason: "window overflow"})
				return
			}
		} else if f.StreamID > h.lastID {
			// §5.1: WINDOW_UPDATE on an idle stream.
			c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2ProtocolError, Reason: "WINDOW_UPDATE on an idle stream"})
			return
		} else if st := h.streams[f.StreamID]; st != nil {
			if st.sendWin += int64(f.Increment); st.sendWin > h2MaxWindow {
				c.h2ResetBad(st.id, protocol.H2FlowControlError)
				return
			}
		}
		c.h2FlushBlocked()
	case protocol.H2FrameRSTStream:
		if f.StreamID > h.lastID {
			c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2ProtocolError, Reason: "RST_STREAM on an idle stream"})
			return
		}
		if h.resets++; h.resets > c.srv().opts.HTTP2MaxResets {
			c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2EnhanceYourCalm, Reason: "too many resets"})
			return
		}
		if st := h.streams[f.StreamID]; st != nil {
			c.h2Abandoned(st)
			c.h2Close(st, true)
		}
	case protocol.H2FramePriority:
		if f.Priority.StreamDep == f.StreamID {
			// §5.3.1 (RFC 7540): a stream cannot depend on itself.
			c.h2ResetBad(f.StreamID, protocol.H2ProtocolError)
		}
	case protocol.H2FrameHeaders:
		c.h2Headers(f)
	case protocol.H2FrameContinuation:
		c.h2Block(f.Data, f.EndHeaders())
	case protocol.H2FrameData:
		c.h2Data(f)
	}
}

// h2FreeUpdate reports whether WINDOW_UPDATE f gives back window that
// the proxy's DATA used (at least h2MinFreeUpdate of it), and takes it
// off what is owed: such updates answer the proxy's own output, and so
// are not counted against http2-max-control-frames.
func (c *conn) h2FreeUpdate(f *protocol.H2Frame) bool {
	h := c.h2
	inc := int64(f.Increment)
	if inc < h2MinFreeUpdate {
		return false
	}
	owed := &h.unreturned
	if f.StreamID != 0 {
		owed = &h.closedOwed
		if st := h.streams[f.StreamID]; st != nil {
			owed = &st.unreturned
		}
	}
	if inc > *owed {
		return false
	}
	*owed -= inc
	return true
}

// h2Headers opens a stream (or reads trailers) and starts its field block.
func (c *conn) h2Headers(f *protocol.H2Frame) {
	h := c.h2
	id := f.StreamID
	h.hdrID, h.hdrEnd, h.hdrDrop = id, f.EndStream(), false
	if id%2 == 0 {
		c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2ProtocolError, Reason: "even stream id from a client"})
		return
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		// §5.3.1 (RFC 7540): a stream cannot depend on itself. Its
		// field block is still decoded (and dropped): HPACK's table
		// must stay in step with the client's.
		h.hdrDrop = true
		h.lastID = max(h.lastID, id)
		c.h2ResetBad(id, protocol.H2ProtocolError)
		if c.m != (h2{}) {
			return // that reset was one too many
		}
	} else if id <= h.lastID {
		st := h.streams[id]
		if st == nil && h.resetByUs(id) {
			// Trailers (or a request) in flight when the proxy reset the
			// stream: ignored, the block decoded for HPACK's sake.
			h.hdrDrop = true
		} else if st == nil {
			c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2StreamClosed, Reason: "HEADERS on a closed stream"})
			return
		} else if st.endRecv || !f.EndStream() {
			// One stream's error, not the connection's: HEADERS after the
			// client's END_STREAM (half-closed, §5.1: STREAM_CLOSED), or
			// a second field section that does not end the request
			// (malformed, §8.1: PROTOCOL_ERROR): not the whole
			// connection's. The block is still decoded, for HPACK's
			// table.
			h.hdrDrop = true
			code := protocol.H2ProtocolError
			if st.endRecv {
				code = protocol.H2StreamClosed
			}
			c.h2ResetBad(id, code)
			if c.m != (h2{}) {
				return // that reset was one too many
			}
		} else {
			h.hdrDrop = true // trailers: decoded and dropped (nodes get no trailers)
		}
	} else {
		h.lastID = id
		if h.goaway || len(h.streams) >= c.srv().opts.HTTP2MaxStreams {
			h.hdrDrop = true
			c.h2Refuse(id, protocol.H2RefusedStream)
		}
	}
	h.bld.Reset(id)
	c.h2Block(f.Data, f.EndHeaders())
}

// h2Block decodes a field block fragment; at its end the request starts.
func (c *conn) h2Block(frag []byte, end bool) {
	h := c.h2
	if !end {
		// The fragments of a block split over CONTINUATION frames are
		// decoded together at its end (the reader bounds the block:
		// http2-max-header-block): fed one by one, hpack copies what it
		// holds of a field split across them again at each, and a field
		// split into thousands of tiny fragments cost the square of
		// their number.
		// (Fed in pieces of 4 KiB: what a connection holds of an open
		// block stays small, and the copies few.)
		if h.hdrBuf = append(h.hdrBuf, frag...); len(h.hdrBuf) < h2HeaderFeed {
			return
		}
		frag, h.hdrBuf = h.hdrBuf, h.hdrBuf[:0]
		if _, err := h.dec.Write(frag); err != nil {
			c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2CompressionError, Reason: "HPACK: " + err.Error()})
		}
		return
	}
	if len(h.hdrBuf) > 0 {
		frag = append(h.hdrBuf, frag...)
	}
	h.hdrBuf = nil // an idle connection holds none
	if _, err := h.dec.Write(frag); err != nil {
		c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2CompressionError, Reason: "HPACK: " + err.Error()})
		return
	}
	if err := h.dec.Close(); err != nil {
		c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2CompressionError, Reason: "HPACK: " + err.Error()})
		return
	}
	id := h.hdrID
	h.hdrID = 0
	if h.hdrDrop {
		if st := h.streams[id]; st != nil && h.hdrEnd && !st.endRecv {
			// Trailers with END_STREAM end the request as END_STREAM
			// on DATA does.
			if st.ws {
				c.h2WebSocketData(st, nil, true)
				c.h2WSAccount(st)
			} else {
				c.h2RequestEnd(st)
			}
		}
		return
	}
	req, err := h.bld.Finish()
	c.h2Open(id, req, err)
}

// h2Open routes a new stream's request to a node, as http1's onHead does.
func (c *conn) h2Open(id uint32, r *protocol.Request, err error) {
	s := c.srv()
	h := c.h2
	if err != nil { // errors.As only then: its target would escape
		var se *protocol.H2StreamError
		if errors.As(err, &se) {
			c.h2Refuse(id, se.Code)
			return
		}
	}
	sid, terr := c.l.table.Add(c)
	if terr != nil {
		c.h2Refuse(id, protocol.H2RefusedStream)
		return
	}
	// endRecv from the start: a stream the proxy answers at once (a bad
	// request) must not wait for an END_STREAM the client already sent.
	st := c.l.newH2Stream()
	st.lastIn = s.now()
	st.c, st.id, st.sid, st.sendWin, st.reqCL, st.endRecv = c, id, sid, h.initWin, -1, h.hdrEnd
	st.window = h2InitialWindow
	h.streams[id] = st
	h.bySID[sid] = st
	if s.leaving.Load() && !h.goaway {
		// shutdown-delay (Server.Leaving): a connection opened since
		// serves this stream, and the client takes its next ones to a
		// new connection.
		c.h2GoAway(protocol.H2NoError, false)
	}
	if r != nil {
		c.begin(&st.ex, r, "HTTP/2")
	} else {
		st.ex = exchange{start: c.l.clock()}
	}
	if err != nil {
		pe, ok := err.(*protocol.Error)
		if !ok {
			pe = protocol.ErrBadRequestLine
		}
		c.h2Respond(st, pe.Status, pe.Msg)
		return
	}
	if r.Upgrade != nil && !c.h2WebSocketRequest(st, r) {
		return
	}
	st.reqCL = r.ContentLength
	if h.hdrEnd && !st.ws {
		st.endRecv = true
		if r.ContentLength > 0 {
			c.h2Reset(id, protocol.H2ProtocolError) // §8.1.1: content-length with no DATA
			return
		}
		r.ContentLength = 0
	}
	if !st.endRecv && r.ContentLength < 0 && !st.ws {
		// A body of unknown length: the environ says chunked, as for the
		// same HTTP/1.1 request, so nodes written for the original read
		// body pieces until the empty one.
		r.Headers = append(r.Headers, protocol.Header{Name: []byte("Transfer-Encoding"), Value: []byte("chunked")})
		r.Chunked = true
	}
	st.headReq = string(r.Method) == "HEAD"
	rt := s.rt.Load()
	vh := rt.router.Match(r.Host)
	if vh != nil && !rt.serves(c.ln, vh) {
		vh = nil
	}
	if vh != nil {
		st.ex.vhost = vh // counted under its vhost, whoever answers
	}
	switch {
	case vh == nil:
		c.h2Respond(st, 404, "no virtual host for this Host")
		return
	case string(r.Method) == "TRACE" && !vh.AllowTrace:
		c.h2Respond(st, 405, "TRACE is not allowed")
		return
	case vh.MaxBody > 0 && r.ContentLength > vh.MaxBody:
		c.h2Respond(st, 413, protocol.ErrBodyTooLarge.Msg)
		return
	}
	// The head goes in a pooled buffer, as on HTTP/1.1 (onHead).
	buf := s.bufs.Get(r.HeadLen + 512)
	buf.B, err = protocol.AppendEnviron(buf.B[:0], r, &h.ci)
	if err != nil {
		buf.Release()
		c.h2Respond(st, 431, protocol.ErrUwsgiTooLarge.Msg)
		return
	}
	n := vh.Pick(s.heardAt(s.now()), s.deadAfter, nil)
	if n == nil {
		buf.Release()
		c.h2Respond(st, 503, "no live backend node")
		return
	}
	st.vhost, st.node, st.nodeEpoch = vh, n, n.Epoch()
	n.Bind()
	st.reqSeq = 1
	st.phase = phAwaitHead
	st.answerBy = st.ex.start + int64(vh.Timeout) // begin's clock reading
	st.ex.forwarded(vh, st.ex.start)
	s.stats.Requests.Add(1)
	if !st.ws {
		// Kept for a retry before the message goes: once the bridge has
		// the message, it may give its reference back at any time.
		c.h2Keep(st, buf.B, buf)
	}
	c.h2SendBuf(st, "uwsgi", buf)
	c.h2StartCredit(st)
	if !st.ws && !st.endRecv {
		c.h2OpenWindow(st)
		if r.Expect100 {
			// As on HTTP/1.1, the proxy answers 100-continue once the
			// head went to a node (PROTOCOL.md): an interim HEADERS, for
			// clients that wait for it (Go's ExpectContinueTimeout).
			h.encBuf.Reset()
			_ = h.enc.WriteField(hpack.HeaderField{Name: ":status", Value: "100"})
			c.h2QueueHeaders(st.id, false, h.encBuf.Bytes())
		}
	}
	if st.ws {
		w, _ := protocol.IsWebSocketUpgrade(r)
		if vh.NodeHandshake {
			st.wsAwait = newWSPending(w) // the node's head decides
			return
		}
		st.ex.sentAt = 0 // the proxy answers, not the node
		c.h2WebSocketAccept(st, protocol.ChooseSubprotocol(w.Protocols, vh.WebSocketProtocols))
	}
}

// h2StartCredit opens the stream's credit window when its node speaks
// credits (PROTOCOL.md): the grant follows the request head.
func (c *conn) h2StartCredit(st *h2Stream) {
	st.creditOn = st.node.Credits()
	if st.creditOn {
		st.credit = c.h2CreditWindow()
		c.h2Send(st, "credit", strconv.AppendInt(nil, st.credit, 10))
	}
}

// h2MinCreditWindow is the smallest credit window an HTTP/2 stream gets
// (h2CreditWindow), however many streams share max-pending-output.
const h2MinCreditWindow = 16 << 10

// h2DefaultTableSize is HPACK's dynamic table size before SETTINGS
// change it (RFC 9113 §6.5.2).
const h2DefaultTableSize = 4096

// h2HeaderFeed is how much of an open field block h2Block holds before it
// feeds hpack.
const h2HeaderFeed = 4 << 10

// h2CreditWindow is a stream's credit window: credit-window, but no more
// than the connection's share of max-pending-output among
// http2-max-streams streams (at least 16 KiB), so that a client that
// opens every stream and reads none of them makes its nodes send at
// most about max-pending-output for it, not http2-max-streams windows.
// Between proxy and node, a credit comes back in far less time than the
// client takes for half of even the smaller window.
func (c *conn) h2CreditWindow() int64 {
	o := &c.srv().opts
	return int64(min(o.CreditWindow, max(o.MaxPendingOutput/max(o.HTTP2MaxStreams, 1), h2MinCreditWindow)))
}

// h2Data forwards request body bytes. The connection's window goes back
// once half of it is used; a stream's too, unless its messages wait for
// a stuck node (http2_queue.go): the stream's window then bounds what the
// proxy holds for it while the other streams go on.
func (c *conn) h2Data(f *protocol.H2Frame) {
	h := c.h2
	// §6.9: the whole frame counts, padding included.
	defer c.h2GiveBack(int64(f.Length))
	st := h.streams[f.StreamID]
	if st != nil {
		st.lastIn = c.srv().now()
	}
	if st == nil || st.endRecv {
		if f.StreamID > h.lastID {
			c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2ProtocolError, Reason: "DATA on an idle stream"})
			return
		}
		if st != nil {
			c.h2ResetBad(st.id, protocol.H2StreamClosed) // §5.1: half-closed (remote)
			return
		}
		// Closed: no node works for it, and no reset counts (DATA the
		// client sent before it saw ours may follow any reset). After
		// the proxy's own RST_STREAM it is ignored (§5.1).
		if !h.resetByUs(f.StreamID) {
			c.queue(protocol.AppendH2RSTStream(nil, f.StreamID, protocol.H2StreamClosed))
		}
		return
	}
	if int64(f.Length) > st.window-st.unacked {
		// §6.9.1: past the window it was given (possible only while
		// the stream's is withheld; the connection's always goes back
		// long before a 16 KiB frame could pass it).
		c.h2ResetBad(st.id, protocol.H2FlowControlError)
		return
	}
	if !f.EndStream() {
		st.unacked += int64(f.Length)
	}
	if st.ws {
		c.h2WebSocketData(st, f.Data, f.EndStream())
		c.h2WSAccount(st)
	} else if !c.h2RequestData(st, f) {
		return
	}
	c.h2Ack(st)
}

// h2RequestData forwards a request's DATA to the stream's node; false:
// it went nowhere (the stream was reset or answered for it, or the DATA
// dropped behind the proxy's own answer).
func (c *conn) h2RequestData(st *h2Stream, f *protocol.H2Frame) bool {
	st.recvd += int64(len(f.Data))
	if st.reqCL >= 0 && st.recvd > st.reqCL {
		c.h2ResetBad(st.id, protocol.H2ProtocolError) // malformed (§8.1.1)
		return false
	}
	if st.vhost != nil && st.vhost.MaxBody > 0 && st.recvd > st.vhost.MaxBody {
		// A body of unknown length past max-body breaks no HTTP/2 rule:
		// 413, as over HTTP/1.1, while no response began (not a reset
		// counted against the client's); the node had the request: abandoned, as for a reset (the
		// Rapid Reset budget). Once a response went whole, RST_STREAM
		// NO_ERROR tells the client to stop sending (§8.1); while the
		// proxy's own answer still waits for window, the DATA is
		// dropped; CANCEL while a node's response streams.
		switch {
		case st.phase == phAwaitHead:
			c.h2Abandoned(st)
			if f.EndStream() {
				st.endRecv = true // the 413 then closes the stream
			}
			c.h2Respond(st, 413, protocol.ErrBodyTooLarge.Msg)
		case st.endSent:
			c.h2Reset(st.id, protocol.H2NoError)
		case st.endPending:
		default:
			c.h2Reset(st.id, protocol.H2Cancel)
		}
		return false
	}
	if st.takesBody() && len(f.Data) > 0 {
		if len(f.Data) < coalesceBelow {
			// A small frame joins the small frames after it in this
			// read (h2Frame and h2Traffic flush them): one `body`
			// message, and one pooled buffer kept for retry, per read
			// rather than per frame (one-byte frames cost the node a
			// message each, and the proxy a buffer each).
			c.h2.pendSt = st
			c.l.bodyAcc = append(c.l.bodyAcc, f.Data...)
			if len(c.l.bodyAcc) >= maxCoalesced {
				c.h2FlushData()
			}
		} else {
			c.h2FlushData()
			c.h2ForwardBody(st, f.Data)
		}
		switch st.phase {
		case phAwaitHead:
			st.answerBy = bodyDeadline(st.answerBy, c.srv(), st.vhost.Timeout)
		case phStreaming:
			// The node may be reading the body before it answers more:
			// response-idle-timeout counts from the body's last piece too.
			st.answerBy = c.l.clock() + int64(st.vhost.ResponseIdleTimeout)
		}
	}
	if f.EndStream() {
		c.h2FlushData()
		return c.h2RequestEnd(st)
	}
	return true
}

// h2ForwardBody sends a piece of the request body to the stream's node,
// kept for a retry.
func (c *conn) h2ForwardBody(st *h2Stream, data []byte) {
	buf := c.srv().bufs.Get(len(data))
	copy(buf.B, data)
	c.h2Keep(st, buf.B, buf) // before the send: see h2Open
	c.h2SendBuf(st, "body", buf)
}

// h2FlushData sends the small DATA that h2RequestData joined.
func (c *conn) h2FlushData() {
	h := c.h2
	st := h.pendSt
	if st == nil {
		return
	}
	h.pendSt = nil
	b := c.l.bodyAcc
	c.l.bodyAcc = b[:0]
	if len(b) > 0 && !c.closed && h.streams[st.id] == st && st.takesBody() {
		c.h2ForwardBody(st, b)
	}
}

// takesBody reports whether the stream's node gets what its client
// sends: not once the proxy answered it (nodeEnded), nor after a refused
// WebSocket handshake (noBody).
func (st *h2Stream) takesBody() bool { return st.node != nil && !st.nodeEnded && !st.noBody }

// h2RequestEnd is the client's END_STREAM on a request (on DATA, or on
// trailers): its length is checked, and a body of unknown length ends
// for the node. False: the stream was reset for it.
func (c *conn) h2RequestEnd(st *h2Stream) bool {
	if st.reqCL >= 0 && st.recvd != st.reqCL {
		c.h2ResetBad(st.id, protocol.H2ProtocolError)
		return false
	}
	if st.takesBody() && st.reqCL < 0 {
		c.h2Send(st, "body", []byte{}) // a body of unknown length ends
		c.h2Keep(st, []byte{}, nil)
	}
	if st.phase == phAwaitHead && st.vhost != nil {
		// The request's last byte (an empty DATA or trailers may end
		// it long after the last piece): timeout counts from here.
		st.answerBy = bodyDeadline(st.answerBy, c.srv(), st.vhost.Timeout)
	}
	c.h2EndRecv(st)
	return true
}

// h2GiveBack returns n bytes of connection window once half is used.
func (c *conn) h2GiveBack(n int64) {
	h := c.h2
	if h.unacked += n; h.unacked >= int64(c.srv().opts.HTTP2ConnectionWindow/2) {
		c.queueOwn(c.l.used(protocol.AppendH2WindowUpdate(c.l.arenaRoom(h2WindowUpdateLen), 0, uint32(h.unacked))))
		h.unacked = 0
	}
}

func (c *conn) h2EndRecv(st *h2Stream) {
	st.endRecv = true
	if st.endSent {
		c.h2CloseStream(st)
	}
}

// h2Send queues a message for the stream's node.
// Nothing follows the `end` the proxy sent when it answered the stream
// itself (nodeEnded).
func (c *conn) h2Send(st *h2Stream, typ string, body []byte) {
	if st.nodeEnded {
		return
	}
	c.sendTo(st.node, st.sid, typ, body, nil, st.reqSeq)
}

// h2SendBuf is h2Send for bytes in a pooled buffer: the message takes
// the caller's reference.
func (c *conn) h2SendBuf(st *h2Stream, typ string, buf *bufpool.Buf) {
	if st.nodeEnded {
		buf.Release()
		return
	}
	c.sendTo(st.node, st.sid, typ, buf.B, buf, st.reqSeq)
}

// h2Apply frames a node's reply on its stream.
func (c *conn) h2Apply(r *reply) {
	s := c.srv()
	st := c.h2.bySID[r.sid]
	if st == nil || r.typ == rUndeliverable {
		if st != nil {
			c.h2Undeliverable(r)
		} else {
			s.stats.Stale.Add(1)
		}
		return
	}
	if r.node != st.node {
		s.stats.Unauthorized.Add(1)
		return
	}
	if st.nodeEnded {
		// The proxy answered the stream itself and told the node: what
		// the node sent meanwhile (a WebSocket's 101, a head) is stale.
		s.stats.Stale.Add(1)
		return
	}
	st.nodeSpoke = true
	if st.creditOn {
		switch r.typ {
		case rBody, rChunk, rWebSocket, rWebSocketBinary:
			st.credit -= int64(len(r.body))
		}
	}
	if st.ws {
		c.h2WebSocketApply(st, r)
		return
	}
	switch r.typ {
	case rHeaders:
		c.h2ResponseHead(st, r.body)
	case rUwsgi:
		if st.phase != phAwaitHead {
			s.stats.Unexpected.Add(1)
			return
		}
		head, err := protocol.UwsgiResponseToHead(nil, r.body)
		if err != nil {
			s.stats.BadResponse.Add(1)
			c.h2Respond(st, 502, "malformed response from backend")
			return
		}
		c.h2ResponseHead(st, head)
	case rBody:
		c.h2Body(st, r.body, false)
	case rChunk:
		if len(r.body) == 0 && st.phase == phStreaming && st.mode == modeLength && st.remaining > 0 {
			// The node ended a Content-Length body short: END_STREAM
			// would pass the short body off as whole (RFC 9113 §8.1.1).
			s.stats.BadResponse.Add(1)
			c.h2Reset(st.id, protocol.H2InternalError)
			return
		}
		c.h2Body(st, r.body, len(r.body) == 0)
	case rEnd:
		switch {
		case st.phase == phAwaitHead:
			c.h2Respond(st, 502, "backend ended the session without a response")
		case st.phase == phStreaming && (st.mode == modeChunked || st.mode == modeLength && st.remaining > 0):
			// Cut short: a clean END_STREAM would pass it off as whole
			// (on HTTP/1.1 the connection closes without the last chunk).
			c.h2Reset(st.id, protocol.H2InternalError)
		default:
			c.h2Body(st, nil, true) // ends a body delimited by `end`
		}
	case rRetry:
		if st.phase != phAwaitHead {
			s.stats.Unexpected.Add(1)
			return
		}
		c.h2Failover(st, "no backend node could serve the request")
	default:
		s.stats.Unexpected.Add(1)
	}
	if st.phase == phStreaming {
		// response-idle-timeout counts from the node's last message.
		st.answerBy = c.l.clock() + int64(st.vhost.ResponseIdleTimeout)
	}
}

// h2ResponseHead sends a node's response head as HEADERS.
func (c *conn) h2ResponseHead(st *h2Stream, raw []byte) {
	s := c.srv()
	h := c.h2
	if st.phase != phAwaitHead {
		s.stats.Unexpected.Add(1)
		return
	}
	h.encBuf.Reset()
	hr, err := protocol.EncodeH2ResponseHeadWith(h.enc, &c.l.h2Strings, raw, st.headReq, s.date())
	if err != nil {
		s.stats.BadResponse.Add(1)
		c.h2Respond(st, 502, "malformed response from backend")
		return
	}
	block := h.encBuf.Bytes()
	st.ex.bytes += int64(len(block))
	if hr.Interim {
		c.h2QueueHeaders(st.id, false, block)
		return
	}
	c.l.responded(&st.ex, hr.Status)
	end := !hr.HasBody
	c.h2QueueHeaders(st.id, end, block)
	st.phase = phStreaming
	c.h2DropRetry(st, st.retryLost)
	switch {
	case end:
		st.mode = modeNone
	case hr.ContentLength >= 0:
		st.mode, st.remaining = modeLength, hr.ContentLength
	case hr.Chunked:
		st.mode = modeChunked
	default:
		st.mode = modeClose // until the node's end
	}
	if end {
		st.endSent = true
		c.h2StreamDone(st)
		return
	}
	if rest := raw[hr.HeadLen:]; len(rest) > 0 {
		if st.creditOn {
			st.credit -= int64(len(rest))
		}
		c.h2Body(st, rest, false)
	}
}

// h2Body sends response body bytes as DATA; end ends the stream.
func (c *conn) h2Body(st *h2Stream, b []byte, end bool) {
	if st.phase != phStreaming || st.endSent || st.endPending {
		c.srv().stats.Unexpected.Add(1)
		return
	}
	if st.mode == modeLength {
		if int64(len(b)) > st.remaining {
			b = b[:st.remaining]
		}
		st.remaining -= int64(len(b))
		end = end || st.remaining == 0
	}
	c.h2Write(st, b, end)
	if st.pending == nil {
		c.h2MaybeGrant(st)
	}
}

// h2Write writes DATA within the flow-control windows and h2Room; the
// rest waits in the stream's pending bytes (bounded by h2CheckPending,
// timed by stall-timeout), sent as window and room come back.
func (c *conn) h2Write(st *h2Stream, b []byte, end bool) {
	if c.h2.streams[st.id] != st {
		return // reset meanwhile (h2CheckPending): nothing more goes
	}
	if st.pending != nil {
		c.h2SetPending(st, append(st.pending, b...))
		st.endPending = st.endPending || end
		c.h2CheckPending(st)
		return
	}
	if rest := c.h2Out(st, b, end); len(rest) > 0 {
		c.h2SetPending(st, append([]byte(nil), rest...)) // b lies in a reply's buffer
		st.endPending = end
		st.blockedAt = c.srv().now()
		c.h2CheckPending(st)
	}
}

// h2Out queues as much of b as DATA as the windows and h2Room allow, and
// the END_STREAM when end and all of it went; it returns what did not.
// Queued bytes are referenced, not copied (h2QueueData).
func (c *conn) h2Out(st *h2Stream, b []byte, end bool) (rest []byte) {
	h := c.h2
	for len(b) > 0 {
		n := min(int64(len(b)), st.sendWin, h.sendWin, int64(h.maxFrame), c.h2Room())
		if n <= 0 {
			return b
		}
		last := end && n == int64(len(b))
		c.h2QueueData(st.id, last, b[:n])
		st.ex.bytes += n
		st.sendWin -= n
		h.sendWin -= n
		st.unreturned += n
		h.unreturned += n
		h.turnOut += n
		b = b[n:]
		if last {
			st.endSent = true
		}
	}
	if end && !st.endSent {
		c.h2QueueData(st.id, true, nil)
		st.endSent = true
	}
	if st.endSent {
		c.h2StreamDone(st)
	}
	return nil
}

// h2Room is how many more DATA bytes the connection may frame now: 3/8
// of max-pending-output, less what the client has not read yet (gnet's
// buffer) and what this turn queued. Past it a stream's output waits
// with its node (credits) or in its pending bytes, as when its window is
// closed, instead of piling up in the transport until the connection
// is closed as a slow reader (every stream with it). The 1/8 left below
// half of max-pending-output, where reading pauses (updateReadPause),
// is for frame headers and TLS records; and a frame may always go when
// the transport holds nothing, however small the cap.
func (c *conn) h2Room() int64 {
	ob := int64(c.t.OutboundBuffered()) + c.h2.turnOut
	room := int64(c.srv().opts.MaxPendingOutput)*3/8 - ob
	if ob == 0 {
		room = max(room, int64(c.h2.maxFrame))
	}
	return room
}

// h2SetPending makes p the stream's pending bytes (nil: none), counted
// in the connection's held bytes and in max-pending-output-total.
func (c *conn) h2SetPending(st *h2Stream, p []byte) {
	if len(p) == 0 {
		p = nil
	}
	if d := int64(len(p) - len(st.pending)); d != 0 {
		was := c.holding()
		c.h2.held += d
		if !st.creditOn || st.ws {
			// What credit does not bound: a node's output without it,
			// and a WebSocket's whatever its node speaks (the proxy's
			// own pongs go there too, one per client ping).
			c.h2.heldOwn += d
		}
		c.srv().pendingTotal.Add(d)
		c.countHolder(was)
	}
	st.pending = p
}

// h2CheckPending resets a stream whose output cannot go while its node
// keeps sending (a node that speaks no credits): past max-pending-output
// for the stream, or for the connection's streams together with what
// the transport holds, or past its share of max-pending-output-total
// while that is exceeded. The stream that grew is reset, not the others.
// A credit-speaking node's stream holds at most its credit window, and
// is not reset for the others' under max-pending-output; past
// max-pending-output-total it is, as any stream.
func (c *conn) h2CheckPending(st *h2Stream) {
	s := c.srv()
	limit := int64(s.opts.MaxPendingOutput)
	ob := int64(c.t.OutboundBuffered())
	held := c.h2.heldOwn + ob // credit streams are bounded by their window
	// Past max-pending-output-total, a connection over its fair share
	// loses the stream that grew, credit or not: credit streams' windows
	// (h2CreditWindow) add up too, over many connections.
	if int64(len(st.pending)) > limit || (!st.creditOn || st.ws) && held > limit ||
		s.pendingTotal.Load() > s.opts.MaxPendingOutputTotal && c.h2.held+ob > s.fairShare() {
		c.srv().stats.SlowClients.Add(1)
		c.srv().reject("slow_reader")
		// The client's doing (it reads nothing): counted as its errors
		// are (http2-max-resets), or opening stream after stream that it
		// never reads would make its nodes work without end.
		c.h2ResetBad(st.id, protocol.H2FlowControlError)
	}
}

// h2Flushed follows a flush of the connection's output: the room this
// turn took is the transport's now (h2Room counts it there), and what
// waited for room, not for window, goes; the loop's flush writes it in
// turn, until the room or what waits runs out (else onDrained sends it).
func (c *conn) h2Flushed() {
	h := c.h2
	h.turnOut = 0
	if h.held > 0 && !c.closing && !c.closed && c.m == (h2{}) && c.h2Room() > 0 {
		c.h2FlushBlocked()
	}
}

// h2FlushBlocked sends what waits for window and room, stream by stream,
// from where it lies (what a stream still cannot send stays, uncopied).
func (c *conn) h2FlushBlocked() {
	h := c.h2
	if h.held == 0 {
		return
	}
	now := c.srv().now()
	for _, st := range h.streams {
		if st.pending == nil || st.sendWin <= 0 {
			continue
		}
		if h.sendWin <= 0 || c.h2Room() <= 0 {
			return
		}
		was := len(st.pending)
		rest := c.h2Out(st, st.pending, st.endPending)
		if h.streams[st.id] != st {
			continue // done: closed with the client's half
		}
		if len(rest) < was {
			st.blockedAt = now
			if len(rest) > 0 && cap(rest) > 2*len(rest) && cap(rest) > 64<<10 {
				// What is left would pin the whole array, uncounted:
				// copied (c.out keeps the old one until the flush).
				rest = append([]byte(nil), rest...)
			}
		}
		c.h2SetPending(st, rest)
		if st.pending == nil {
			st.endPending = false
			c.h2MaybeGrant(st)
		}
	}
}

// h2MaybeGrant grants a credit-speaking node more once its stream drained
// half the window into the client's.
func (c *conn) h2MaybeGrant(st *h2Stream) {
	if !st.creditOn || st.endSent || st.node == nil || c.h2.streams[st.id] != st {
		return // (a stream reset meanwhile, h2CheckPending: no node, no credit)
	}
	w := c.h2CreditWindow()
	// Not clamped at 0: a node that sent one WebSocket message over its
	// credit (node/credit.go allows it) is owed the overdraft back, or
	// it would wait for credit for good.
	outstanding := st.credit + int64(len(st.pending))
	if outstanding > w/2 {
		return
	}
	g := w - outstanding
	st.credit += g
	c.h2Send(st, "credit", strconv.AppendInt(nil, g, 10))
	if st.phase == phStreaming {
		st.answerBy = c.l.clock() + int64(st.vhost.ResponseIdleTimeout) // as maybeGrant
	}
}

// h2StreamDone: our half is closed; the stream closes with the client's.
func (c *conn) h2StreamDone(st *h2Stream) {
	st.phase = phIdle
	st.lastIn = c.srv().now() // idle-timeout counts from the response's end at the earliest
	if st.endRecv {
		c.h2CloseStream(st)
		return
	}
	if st.ws {
		// A WebSocket ended by our close frame: RFC 9113 §8.1 lets the
		// server stop the client's half with NO_ERROR, so the stream
		// (and its node's session) need not wait for the client.
		c.h2Reset(st.id, protocol.H2NoError)
		return
	}
	// The response is complete before the request: the stream stays
	// half-closed until the client ends its side (or resets it).
}

// h2Respond answers a stream itself (an error page) and ends it.
func (c *conn) h2Respond(st *h2Stream, status int, msg string) {
	c.h2RespondAs(st, statusReason(status), status, msg)
}

// h2RespondAs is h2Respond counting the rejection under reason.
func (c *conn) h2RespondAs(st *h2Stream, reason string, status int, msg string) {
	c.srv().stats.Rejected.Add(1)
	c.srv().reject(reason)
	c.h2RespondRaw(st, protocol.AppendErrorDate(nil, status, msg, false, c.srv().date()))
}

// h2RespondRaw answers a stream with a whole HTTP/1.1-form response of
// the proxy's own, and ends it.
func (c *conn) h2RespondRaw(st *h2Stream, head []byte) {
	h := c.h2
	if st.node != nil && st.phase == phAwaitHead && !st.nodeEnded {
		// What of it still waits for the node is of no use now: dropped,
		// and the `end` goes at once (or with the loop's orphans), not
		// behind other streams' messages; the stream's window is free.
		c.leaveSession(st.node, st.sid)
		st.nodeEnded = true
	}
	c.h2DropRetry(st, false) // no retry after the proxy's own answer: its pieces go back
	st.wsAwait = nil         // a WebSocket handshake the node was to answer is answered
	if st.wsIn != nil {
		st.wsIn = nil // frames sent before it: no WebSocket follows
		c.h2WSAccount(st)
	}
	st.phase = phStreaming
	st.mode = modeNone
	h.encBuf.Reset()
	hr, err := protocol.EncodeH2ResponseHeadWith(h.enc, &c.l.h2Strings, head, st.headReq, nil)
	if err != nil {
		c.h2Reset(st.id, protocol.H2InternalError)
		return
	}
	body := head[hr.HeadLen:]
	if st.headReq {
		body = nil
	}
	c.l.responded(&st.ex, hr.Status)
	st.ex.bytes += int64(h.encBuf.Len())
	c.h2QueueHeaders(st.id, len(body) == 0, h.encBuf.Bytes())
	if len(body) == 0 {
		st.endSent = true
		c.h2StreamDone(st)
		return
	}
	c.h2Write(st, body, true)
}

// h2Reset resets a stream (a stream error, §5.4.2).
// Only NO_ERROR (a WebSocket closed in good order) keeps what waits for
// its node: an error aborts the exchange.
func (c *conn) h2Reset(id uint32, code protocol.H2ErrCode) {
	c.h2Refuse(id, code)
	if st := c.h2.streams[id]; st != nil {
		c.h2Close(st, code != protocol.H2NoError)
	}
}

// h2Refuse sends RST_STREAM for a stream the proxy will not serve (or no
// longer), and remembers it: what the client sent on it before it saw
// the reset is then ignored.
func (c *conn) h2Refuse(id uint32, code protocol.H2ErrCode) {
	c.queue(protocol.AppendH2RSTStream(nil, id, code))
	h := c.h2
	h.resetIDs[h.resetNext%uint8(len(h.resetIDs))] = id
	h.resetNext++
}

// resetByUs reports whether the proxy reset or refused stream id lately.
func (h *h2Conn) resetByUs(id uint32) bool {
	return id != 0 && slices.Contains(h.resetIDs[:], id)
}

// h2ResetBad resets a stream for the client's error. Such resets count
// with the client's own RST_STREAMs against http2-max-resets: a client
// that makes the proxy reset its streams (CVE-2025-8671, "MadeYouReset"),
// each after its request went to a node, gets ENHANCE_YOUR_CALM as one
// that resets them itself.
func (c *conn) h2ResetBad(id uint32, code protocol.H2ErrCode) {
	if st := c.h2.streams[id]; st != nil {
		c.h2Abandoned(st) // reset for the client's error: as if it reset it
	}
	c.h2Reset(id, code)
	if c.h2.resets++; c.h2.resets > c.srv().opts.HTTP2MaxResets {
		c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2EnhanceYourCalm, Reason: "too many stream errors"})
	}
}

// h2Abandoned counts a stream ended by its client (its RST_STREAM, or an
// error of its that the proxy resets the stream for) while its node
// works on it for nobody ("Rapid Reset", CVE-2023-44487): a connection
// may abandon a burst of http2-max-streams such requests, and a quarter
// of that a sweep (250 ms) after (h2Timeouts); past it, it gets GOAWAY,
// and what it has in flight still completes. The resets' rate alone
// (http2-max-resets a sweep) let one connection keep its nodes busy with
// 800 abandoned requests a second, for good.
//
// A WebSocket the proxy accepted (websocket-handshake = proxy) is
// streaming from its first frame: one the client closes (RST_STREAM, or
// END_STREAM) before its node sent anything counts too, or a client could
// open and close node sessions, a few dozen bytes each, at its line rate.
func (c *conn) h2Abandoned(st *h2Stream) {
	h := c.h2
	if st.phase != phAwaitHead && !(st.ws && !st.nodeSpoke) || st.node == nil || st.nodeEnded || h.goaway || st.abandoned {
		return
	}
	st.abandoned = true
	if h.abandoned++; h.abandoned > c.srv().opts.HTTP2MaxStreams {
		c.srv().reject("h2_abandoned")
		c.h2GoAway(protocol.H2EnhanceYourCalm, false)
	}
}

// h2CloseStream forgets a stream whose exchange is over; its node gets
// `end` (always: the sid is never used again).
func (c *conn) h2CloseStream(st *h2Stream) { c.h2Close(st, false) }

// h2Close is h2CloseStream; abort: the stream was reset, and what still
// waits for its (stuck) node is dropped. (No `end` of an open stream
// waits in outq: the proxy's own answer sends it at once, leaveSession.)
func (c *conn) h2Close(st *h2Stream, abort bool) {
	h := c.h2
	if h.streams[st.id] != st {
		return
	}
	if h.pendSt == st {
		if abort { // reset: its joined DATA is void
			h.pendSt = nil
			c.l.bodyAcc = c.l.bodyAcc[:0]
		} else {
			c.h2FlushData()
		}
	}
	drop := abort && st.waiting > 0 && st.node != nil
	// Out of the maps first: the recount and window give-back that the
	// drop runs must not see it (no WINDOW_UPDATE after its RST_STREAM).
	delete(h.streams, st.id)
	delete(h.bySID, st.sid)
	if drop {
		c.dropQueued(st.node, st.sid)
		if st.endQueued {
			// Its `end` (h2WebSocketClose) was among them: it goes now.
			c.endNow(st.node, st.sid)
		}
		st.waiting = 0 // out of bySID, the recount passed it by
		c.updateReadPause()
	}
	h.closedOwed += st.unreturned
	h.wsHeld -= st.wsHeld
	st.wsHeld = 0
	if h.windowsHeld {
		c.h2GiveWindows() // it may have been the stream the others waited for
	}
	c.l.table.Remove(&st.sid)
	c.l.finish(&st.ex, st.node, st.sid) // status 0 if reset before its response
	if st.node != nil {
		switch {
		case st.nodeEnded: // its `end` went when the proxy answered
		case st.waiting > 0:
			c.h2Send(st, "end", nil) // after its messages that wait
		default:
			// Not behind other sessions' messages for a stuck node:
			// those of a closed stream would fill outq.
			c.endNow(st.node, st.sid)
		}
		st.node.Unbind()
		st.node = nil
	}
	c.h2SetPending(st, nil)
	st.endPending = false
	c.h2DropRetry(st, false) // gives its pooled buffers back
	c.l.h2StreamClosed(st)
	c.h2CloseIfDone()
}

// h2ClientDone is the client's close_notify: it sends nothing more. No
// stream opens (GOAWAY); those whose request it had not ended cannot be
// completed and are reset (CANCEL); the others get their responses, and
// the connection closes after the last.
func (c *conn) h2ClientDone() {
	h := c.h2
	c.h2GoAway(protocol.H2NoError, false)
	for _, st := range h.streams {
		if !st.endRecv {
			c.h2Reset(st.id, protocol.H2Cancel)
		}
	}
	c.h2CloseIfDone()
}

// h2CloseIfDone closes a connection that is going away once its streams
// are done.
func (c *conn) h2CloseIfDone() {
	if c.h2.goaway && len(c.h2.streams) == 0 {
		c.closeAfter = true
		c.l.markDirty(c)
	}
}

// h2GoAway stops new streams (graceful: open ones finish).
func (c *conn) h2GoAway(code protocol.H2ErrCode, now bool) {
	h := c.h2
	if !h.goaway {
		c.queue(protocol.AppendH2GoAway(nil, h.lastID, code, nil))
	}
	h.goaway = true
	if now {
		c.h2Gone()
		c.lingerClose()
		return
	}
	c.h2CloseIfDone()
}

// h2Drain is the server stopping: GOAWAY with the last stream id (the
// open requests finish within shutdown-grace) and WebSocket streams
// closed with 1001, as on HTTP/1.1.
func (c *conn) h2Drain() {
	c.h2GoAway(protocol.H2NoError, false)
	for _, st := range c.h2.streams {
		if st.ws && st.wsAwait == nil { // one awaiting its node's answer has no HEADERS yet
			c.h2WebSocketClose(st, ws.StatusGoingAway, "server shutting down")
		}
	}
}

// h2ConnError ends the connection with GOAWAY (§5.4.1).
func (c *conn) h2ConnError(err error) {
	code := protocol.H2ProtocolError
	reason := "h2_protocol_error"
	var ce *protocol.H2ConnError
	if errors.As(err, &ce) {
		code = ce.Code
		if reason = ce.Metric; reason == "" {
			reason = "h2_" + strings.ToLower(code.String())
		}
	}
	c.srv().stats.Rejected.Add(1)
	c.srv().reject(reason)
	c.h2GoAway(code, true)
}

// h2Undeliverable fails the stream whose message was lost.
func (c *conn) h2Undeliverable(r *reply) {
	st := c.h2.bySID[r.sid]
	if st == nil || r.node != st.node || st.nodeEnded {
		return // nodeEnded: the proxy's own answer is on its way
	}
	switch {
	case st.phase == phAwaitHead && r.headLost:
		c.h2Failover(st, "backend node unreachable") // it never saw the request
	case st.phase == phAwaitHead:
		// The node has the head but lost part of the body: running the
		// request elsewhere could run it twice.
		c.h2Respond(st, 502, "backend node lost part of the request")
	case st.ws:
		c.h2WebSocketClose(st, 1011, "backend node unreachable")
	default:
		c.h2Reset(st.id, protocol.H2InternalError)
	}
}

// h2Timeouts: each stream's response deadline and node, the preface,
// and an idle connection.
func (c *conn) h2Timeouts(now int64) {
	s := c.srv()
	h := c.h2
	if !h.preface && now > c.headBy {
		c.closeNow()
		return
	}
	if !h.settings && now > c.headBy {
		// The preface without its SETTINGS: a stalled client, as an
		// HTTP/1.1 head that never ends.
		c.h2ConnError(&protocol.H2ConnError{Code: protocol.H2SettingsTimeout, Reason: "no SETTINGS after the preface"})
		return
	}
	h.resets, h.control = 0, 0
	h.abandoned = max(0, h.abandoned-max(1, s.opts.HTTP2MaxStreams/4))
	lead := c.h2WSLead()
	for _, st := range h.streams {
		if st.wsBy > 0 && c.h2WebSocketMessageTimeout(st, lead, now) {
			continue
		}
		switch {
		case st.pending != nil && s.opts.StallTimeout > 0 && now-st.blockedAt > int64(s.opts.StallTimeout):
			// Its output has not moved for stall-timeout: the client
			// keeps its window closed, or reads nothing at all.
			s.stats.SlowClients.Add(1)
			s.reject("slow_reader")
			s.opts.Logger.Info("resetting a stalled HTTP/2 stream", "limit", "stall-timeout", "held", len(st.pending),
				"remote", c.t.RemoteAddr().String(), "sid", st.sid.String())
			c.h2Reset(st.id, protocol.H2Cancel)
		case st.phase == phIdle && !st.endRecv && s.opts.IdleTimeout > 0 && now-st.lastIn > int64(s.opts.IdleTimeout):
			// Answered, and its client has sent nothing on it for
			// idle-timeout without ending its half: RFC 9113 §8.1 lets
			// the server end it with NO_ERROR, so that the stream, its
			// node's session and its place under http2-max-streams do
			// not wait for a client that may never end it.
			c.h2Reset(st.id, protocol.H2NoError)
		case st.phase == phAwaitHead && now > st.answerBy:
			if !st.endRecv && !st.ws && st.waiting == 0 && !c.readPaused {
				// Its client stopped sending the body (bodyDeadline).
				c.h2RespondAs(st, "body_timeout", 408, "request body not received in time")
				continue
			}
			s.stats.Timeouts.Add(1)
			c.h2Respond(st, 504, "backend did not answer in time")
		case st.phase == phStreaming && !st.ws && !st.nodeEnded && st.node != nil && st.vhost != nil &&
			responseIdle(s, now, &st.answerBy, st.vhost.ResponseIdleTimeout,
				st.pending != nil || st.creditOn && st.credit <= 0, st.node, st.sid):
			c.h2Reset(st.id, protocol.H2InternalError) // the node gets `end`
		case st.node != nil && st.phase != phIdle && !st.nodeEnded && !st.node.Serves(st.nodeEpoch, s.heardAt(now), s.deadAfter):
			switch {
			case st.phase == phAwaitHead:
				c.h2Failover(st, "backend node failed")
			case st.ws:
				// 1001 as over HTTP/1.1 (wsMachine.timeouts): the
				// client should come back, to another node.
				c.h2WebSocketClose(st, ws.StatusGoingAway, "backend node gone")
			default:
				c.h2Reset(st.id, protocol.H2InternalError)
			}
		}
	}
	if len(h.streams) == 0 && s.opts.IdleTimeout > 0 && now-c.lastActive > int64(s.opts.IdleTimeout) {
		c.h2GoAway(protocol.H2NoError, true)
	}
}

// h2Gone is the connection closing: every stream's node gets `end`.
func (c *conn) h2Gone() {
	for _, st := range c.h2.streams {
		c.h2CloseStream(st)
	}
}
