package node

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/blastbeat/blastbeat/protocol"
)

// WebSocket is one WebSocket session of Serve, handed to
// ServeConfig.WebSocket. The proxy has done the handshake (and answers
// pings, fragments and close frames itself): the session is whole
// messages, text or binary, both ways.
//
// Receive is for one goroutine at a time; Send and Close may be called
// from any goroutine, also while another one receives.
type WebSocket struct {
	s     *server
	st    *stream
	limit int
	ready chan struct{} // capacity 1: something changed

	mu     sync.Mutex
	inbox  []wsMessage // received, not taken yet
	size   int         // bytes in inbox
	err    error       // why the session is over (io.EOF: the client closed it)
	closed bool        // Close was called
}

type wsMessage struct {
	data   []byte
	binary bool
}

func newWebSocket(s *server, st *stream) *WebSocket {
	return &WebSocket{s: s, st: st, limit: s.cfg.MaxBuffer, ready: make(chan struct{}, 1)}
}

// Request returns the handshake's request (its path, query, cookies and
// other header fields; its Body is empty). Its context is Context.
func (ws *WebSocket) Request() *http.Request { return ws.st.req }

// Context is the session's: done once the client went away, Close was
// called, the callback returned or Serve stopped.
func (ws *WebSocket) Context() context.Context { return ws.st.ctx }

// Receive returns the next message from the client and whether it is
// binary, waiting for one. Once the client closed the session it returns
// io.EOF (after the messages that came before); after Close
// net.ErrClosed; after Serve stopped ErrSessionEnded; after more than
// ServeConfig.MaxBuffer bytes of messages waited unreceived
// ErrBufferFull (the session is ended then). When ctx is done first it
// returns ctx's error.
func (ws *WebSocket) Receive(ctx context.Context) (msg []byte, binary bool, err error) {
	for {
		ws.mu.Lock()
		switch {
		case ws.closed:
			ws.mu.Unlock()
			return nil, false, net.ErrClosed
		case len(ws.inbox) > 0:
			m := ws.inbox[0]
			ws.inbox[0] = wsMessage{}
			ws.inbox = ws.inbox[1:]
			ws.size -= len(m.data)
			ws.s.held.Add(int64(-len(m.data)))
			ws.mu.Unlock()
			return m.data, m.binary, nil
		case ws.err != nil:
			err := ws.err
			ws.mu.Unlock()
			return nil, false, err
		}
		ws.mu.Unlock()
		select {
		case <-ws.ready:
		case <-ctx.Done():
			// The session's end cancels its context (often ctx itself)
			// just after saying why: what was said wins, as the
			// messages before it do (select picks at random among
			// ready cases, and the client's close came back as
			// "context canceled" instead of io.EOF).
			ws.mu.Lock()
			said := len(ws.inbox) > 0 || ws.err != nil || ws.closed
			ws.mu.Unlock()
			if said {
				continue
			}
			return nil, false, ctx.Err()
		case <-ws.st.ctx.Done():
			// The loop says why before it cancels; this covers a session
			// whose loop is gone.
			ws.fail(ErrSessionEnded)
		}
	}
}

// Send sends one message to the client: a text message (which must be
// UTF-8), or a binary one. It waits until the message went out to the
// proxy (with credits, until the client has read enough of what came
// before). It fails with ErrSessionEnded once the session is over and
// net.ErrClosed after Close. When ctx is done before the message went
// out, Send returns ctx's error and the message is dropped: it never goes
// out, and nothing of it stays queued, so a short timeout per message
// drops messages to a client that reads too slowly instead of piling
// them up. If it went out meanwhile (the node's loop sent it as ctx
// ended), Send returns nil. Either way it returns once the node's loop
// has taken the message back, at once (the loop never waits on a
// proxy). Only the messages of Sends still waiting are queued: what a
// session holds is bounded by its callers.
func (ws *WebSocket) Send(ctx context.Context, msg []byte, binary bool) error {
	ws.mu.Lock()
	closed := ws.closed
	ws.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	if ws.st.ctx.Err() != nil {
		return ErrSessionEnded
	}
	typ := "websocket"
	if binary {
		typ = "websocket-binary"
	}
	done := make(chan error, 1)
	o := &op{kind: opSend, st: ws.st, msgs: []outMsg{{typ: typ, data: append([]byte(nil), msg...)}}, done: done}
	if !ws.s.enqueue(o) {
		return ErrSessionEnded
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ws.withdraw(ctx, o)
	case <-ws.st.ctx.Done():
		select {
		case err := <-done:
			return err
		default:
			return ErrSessionEnded
		}
	}
}

// errSendCancelled is what the loop tells a send it dropped (cancelSend);
// Send returns its ctx's error instead.
var errSendCancelled = errors.New("node: send cancelled")

// withdraw takes back the send o, whose ctx ended before it went out: the
// loop drops it, unless it went out meanwhile (then Send succeeded).
func (ws *WebSocket) withdraw(ctx context.Context, o *op) error {
	var err error
	if !ws.s.enqueue(&op{kind: opCancel, st: ws.st, cancels: o}) {
		// The loop is gone, and failed what it had.
		select {
		case err = <-o.done:
		default:
			err = ErrSessionEnded
		}
	} else {
		select {
		case err = <-o.done:
		case <-ws.st.ctx.Done():
			select {
			case err = <-o.done:
			default:
				err = ErrSessionEnded
			}
		}
	}
	if err == errSendCancelled {
		return ctx.Err()
	}
	return err
}

// Close ends the session: the proxy sends the client a close frame (1000)
// and closes the connection. Messages not received yet are dropped.
// Closing again does nothing. The callback's return closes it too.
func (ws *WebSocket) Close() error { return ws.close(nil) }

// CloseWith is Close with the close frame's code and reason: a code a
// peer may send (1000–1003, 1007–1014 or 3000–4999, RFC 6455 §7.4) and at
// most 123 bytes of UTF-8, or it returns ErrCloseCode and does nothing.
// It needs a proxy that reads `end`'s body (BlastBeat since 2026-11);
// an older one closes with 1000.
func (ws *WebSocket) CloseWith(code uint16, reason string) error {
	body := wsCloseBody(code, reason)
	if _, err := protocol.CheckCloseBody(body); err != nil || len(reason) > 123 {
		return ErrCloseCode
	}
	return ws.close(body)
}

// wsCloseBody is `end`'s body that closes a WebSocket with code and
// reason (PROTOCOL.md; a proxy that does not read it closes with 1000).
func wsCloseBody(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// close ends the session with endBody as `end`'s body.
func (ws *WebSocket) close(endBody []byte) error {
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		return nil
	}
	ws.closed = true
	ws.s.held.Add(int64(-ws.size))
	ws.inbox, ws.size = nil, 0
	ws.mu.Unlock()
	ws.signal()
	ws.s.enqueue(&op{kind: opEnd, st: ws.st, endBody: endBody})
	return nil
}

// push adds a message from the client; false when it would take what
// waits over the limit (one message alone always fits).
func (ws *WebSocket) push(data []byte, binary bool) bool {
	ws.mu.Lock()
	defer ws.signal()
	defer ws.mu.Unlock()
	if ws.closed || ws.err != nil {
		return true // dropped
	}
	if ws.size > 0 && ws.size+len(data) > ws.limit {
		return false
	}
	ws.inbox = append(ws.inbox, wsMessage{data: data, binary: binary})
	ws.size += len(data)
	ws.s.held.Add(int64(len(data)))
	return true
}

// unread returns the bytes of messages not received yet.
func (ws *WebSocket) unread() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.size
}

// drop frees the messages not received yet (MaxBufferTotal).
func (ws *WebSocket) drop() {
	ws.mu.Lock()
	ws.s.held.Add(int64(-ws.size))
	ws.inbox, ws.size = nil, 0
	ws.mu.Unlock()
}

// fail ends the session's receiving with err; the first reason stays.
func (ws *WebSocket) fail(err error) {
	ws.mu.Lock()
	if ws.err == nil {
		ws.err = err
	}
	ws.mu.Unlock()
	ws.signal()
}

func (ws *WebSocket) signal() {
	select {
	case ws.ready <- struct{}{}:
	default:
	}
}

// serveWebSocket runs ServeConfig.WebSocket for one session on its own
// goroutine, and closes the session when it returns.
func (s *server) serveWebSocket(st *stream) {
	ws := st.ws
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				s.logf("node: serve: panic serving WebSocket %s for %s: %v\n%s", st.req.URL, st.req.RemoteAddr, p, debug.Stack())
			}
			_ = ws.close(wsCloseBody(1011, "internal error"))
		}
		ws.Close()
		st.cancel()
		s.enqueue(&op{kind: opExit, st: st})
	}()
	s.cfg.WebSocket(ws)
}
