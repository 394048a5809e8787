package node

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
)

// The ResponseWriter of Serve's handlers, and the goroutine that runs
// one handler.

const (
	// writeBufSize is how many body bytes a response collects before it
	// sends them. A handler that returns without having written more (or
	// flushed) is answered with one `headers` message carrying head and
	// body, with its Content-Length.
	writeBufSize = 32 << 10
	// maxPiece bounds one `body` or `chunk` message.
	maxPiece = 64 << 10
	// sniffLen is what http.DetectContentType reads.
	sniffLen = 512
)

// serveHTTP runs the handler of one request on its own goroutine.
func (s *server) serveHTTP(st *stream) {
	w := &responseWriter{s: s, st: st, header: make(http.Header), clen: -1, isHead: st.req.Method == http.MethodHead}
	returned := false
	defer func() {
		if !returned {
			// runtime.Goexit in the handler (t.FailNow, say): no return,
			// no panic; the request is aborted as a panic's would be.
			w.abort(http.ErrAbortHandler, nil)
		}
		if st.body != nil {
			st.body.Close()
		}
		st.cancel()
		s.enqueue(&op{kind: opExit, st: st})
	}()
	p, stack := w.call()
	returned = true
	if st.body != nil {
		// What the handler left unread goes now, as net/http drops it:
		// not held (MaxBufferTotal) while the response waits for
		// credit, and not over MaxBuffer then, which cut the response.
		st.body.Close()
	}
	if p != nil {
		w.abort(p, stack)
		return
	}
	w.finish()
}

// call runs the handler and recovers its panic.
func (w *responseWriter) call() (p any, stack []byte) {
	defer func() {
		if p = recover(); p != nil && p != http.ErrAbortHandler {
			stack = debug.Stack()
		}
	}()
	w.s.h.ServeHTTP(w, w.st.req)
	return nil, nil
}

// responseWriter is Serve's http.ResponseWriter. It implements
// http.Flusher (and FlushError for http.ResponseController), and
// http.Hijacker, whose Hijack always fails with ErrHijack.
//
// The response goes as PROTOCOL.md's messages: the head as a `headers`
// message, then `body` messages when the handler set Content-Length, or
// `chunk` messages and the final empty chunk when it did not. A handler
// that neither writes more than writeBufSize nor flushes gets one
// `headers` message holding the whole response with its Content-Length.
// Each send waits until the loop has passed it to ZeroMQ, credit
// permitting: a handler writes at the pace of its client.
type responseWriter struct {
	s      *server
	st     *stream
	header http.Header
	isHead bool

	snap     http.Header // header at WriteHeader: the head's fields
	status   int         // the final status; 0 until WriteHeader
	headSent bool        // the final head went to the loop
	chunked  bool        // the body goes as `chunk` messages
	clen     int64       // the handler's Content-Length; -1: none
	written  int64       // body bytes taken by Write
	buf      []byte      // body bytes not sent yet
	err      error       // the session is over: every send fails with it
	ended    bool        // end was called
	closeCh  chan bool   // CloseNotify's
	// closeOnce makes closeCh once, whichever goroutine asks first.
	closeOnce sync.Once
}

func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader sends a 1xx head at once (103 Early Hints, say; the header
// map is not cleared, as with net/http); the first other code is the
// status, later ones are logged and ignored.
func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.status != 0 {
		w.s.logf("node: serve: superfluous WriteHeader(%d) for %s %s", code, w.st.req.Method, w.st.req.URL.Path)
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		if w.err == nil {
			_ = w.send(outMsg{typ: "headers", data: w.head(code, w.header.Clone(), ""), interim: true})
		}
		return
	}
	w.status = code
	w.snap = w.header.Clone()
	if w.snap.Get("Transfer-Encoding") != "" {
		w.snap.Del("Content-Length") // the handler asks for chunks
	} else if cl := w.snap.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			w.s.logf("node: serve: %s %s: dropping bad Content-Length %q", w.st.req.Method, w.st.req.URL.Path, cl)
			w.snap.Del("Content-Length")
		} else {
			w.clen = n
		}
	}
}

// Write takes body bytes; it sends what it collected once that exceeds
// writeBufSize, waiting for credit. It fails with http.ErrBodyNotAllowed
// for a status without a body, with http.ErrContentLength past the
// handler's Content-Length, and with ErrSessionEnded once the client went
// away or the stop's ShutdownTimeout passed. Bytes written to a HEAD request are counted,
// not sent.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err == nil && w.st.ctx.Err() != nil {
		w.err = ErrSessionEnded // the client went away, or Serve stops
	}
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	var tooLong error
	if w.clen >= 0 && w.written+int64(n) > w.clen {
		n, tooLong = int(w.clen-w.written), http.ErrContentLength
	}
	w.written += int64(n)
	if w.isHead {
		// Not sent; its first bytes are kept to sniff the Content-Type
		// as the GET's (net/http does so for HEAD too).
		if k := min(n, sniffLen-len(w.buf)); k > 0 && !w.headSent {
			w.buf = append(w.buf, p[:k]...)
		}
		return n, tooLong
	}
	if len(w.buf)+n <= writeBufSize {
		w.buf = append(w.buf, p[:n]...)
		return n, tooLong
	}
	if err := w.flush(p[:n]); err != nil {
		return 0, err
	}
	return n, tooLong
}

// Flush implements http.Flusher: the head, if it has not gone yet (a
// response without Content-Length then goes chunked), and what the
// handler wrote since the last send.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush that says why it failed (http.ResponseController
// uses it).
func (w *responseWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if w.headSent && len(w.buf) == 0 {
		return nil
	}
	return w.flush(nil)
}

// Hijack implements http.Hijacker, and always fails with ErrHijack: the
// client connection is the proxy's.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, ErrHijack
}

// CloseNotify implements the deprecated http.CloseNotifier, which some
// frameworks assert without checking (gin's Context.Stream): the channel
// receives true once the session ends (the client went away), as the
// request's context is done.
// Every call returns the same channel, as net/http's (a loop that asks
// at each turn made one, and an AfterFunc, per call).
func (w *responseWriter) CloseNotify() <-chan bool {
	w.closeOnce.Do(func() {
		ch := make(chan bool, 1)
		context.AfterFunc(w.st.ctx, func() { ch <- true })
		w.closeCh = ch
	})
	return w.closeCh
}

// EnableFullDuplex is for http.ResponseController: a handler of Serve
// may always read the request body while it writes the response.
func (w *responseWriter) EnableFullDuplex() error { return nil }

// flush sends the head if it has not gone, then buf and extra as body.
func (w *responseWriter) flush(extra []byte) error {
	data := w.buf
	if len(extra) > 0 {
		data = append(data, extra...)
	}
	var msgs []outMsg
	if !w.headSent {
		msgs = append(msgs, w.finalHead(false, data))
	}
	msgs = w.appendBody(msgs, data)
	err := w.send(msgs...)
	w.buf = nil
	if err == nil && cap(data) <= 2*writeBufSize {
		w.buf = data[:0] // the loop is done with it
	}
	return err
}

// finish completes the response once the handler returned.
func (w *responseWriter) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		// Its client went away, or Serve stops: whatever the loop knows
		// yet, the session cannot go on.
		w.end()
		return
	}
	var msgs []outMsg
	if !w.headSent {
		m := w.finalHead(true, w.buf)
		if len(w.buf) > 0 && !w.noBody() {
			m.head = len(m.data)
			m.data = append(m.data, w.buf...)
		}
		msgs = append(msgs, m)
	} else {
		msgs = w.appendBody(msgs, w.buf)
		if w.chunked {
			msgs = append(msgs, outMsg{typ: "chunk"}) // the final empty chunk
		}
	}
	if len(msgs) > 0 && w.send(msgs...) != nil {
		return
	}
	if w.clen >= 0 && w.written < w.clen && !w.noBody() {
		// Short of its Content-Length: ended, so that the client cannot
		// take it for whole.
		w.end()
	}
}

// abort ends a request whose handler panicked: with a 500 when no head
// went out, else by ending the session. http.ErrAbortHandler ends it
// without a log line.
func (w *responseWriter) abort(p any, stack []byte) {
	if p != http.ErrAbortHandler {
		w.s.logf("node: serve: panic serving %s %s for %s: %v\n%s", w.st.req.Method, w.st.req.URL, w.st.req.RemoteAddr, p, stack)
	}
	if w.err != nil {
		w.end()
		return
	}
	if !w.headSent && p != http.ErrAbortHandler {
		w.headSent = true
		_ = w.send(outMsg{typ: "headers", data: simpleResponse(http.StatusInternalServerError, false)})
		return
	}
	if w.headSent && len(w.buf) == 0 && !w.chunked && (w.noBody() || w.clen >= 0 && w.written >= w.clen) {
		// The response went whole: an `end` now would cut the
		// connection the proxy keeps alive (PROTOCOL.md: never after a
		// complete response).
		return
	}
	w.end()
}

// end ends the session (`end`, unless it is over already): the client
// connection closes (HTTP/1.x) or the stream ends (HTTP/2).
func (w *responseWriter) end() {
	if !w.ended {
		w.ended = true
		w.err = ErrSessionEnded
		w.s.enqueue(&op{kind: opEnd, st: w.st})
	}
}

// send hands msgs to the loop and waits until they went out (or the
// session is over).
func (w *responseWriter) send(msgs ...outMsg) error {
	if w.err == nil && w.st.ctx.Err() != nil {
		w.err = ErrSessionEnded
	}
	if w.err != nil {
		return w.err
	}
	done := make(chan error, 1)
	if !w.s.enqueue(&op{kind: opSend, st: w.st, msgs: msgs, done: done}) {
		w.err = ErrSessionEnded
		return w.err
	}
	var err error
	select {
	case err = <-done:
	case <-w.st.ctx.Done():
		select {
		case err = <-done:
		default:
			err = ErrSessionEnded
		}
	}
	if err != nil {
		w.err = err
	}
	return err
}

// noBody reports whether the response has no body: HEAD, 1xx, 204, 304.
func (w *responseWriter) noBody() bool {
	return w.isHead || !bodyAllowedForStatus(w.status)
}

// appendBody appends data as body messages (none for a response without
// a body).
func (w *responseWriter) appendBody(msgs []outMsg, data []byte) []outMsg {
	if w.noBody() {
		return msgs
	}
	typ := "body"
	if w.chunked {
		typ = "chunk"
	}
	for len(data) > 0 {
		k := min(len(data), maxPiece)
		msgs = append(msgs, outMsg{typ: typ, data: data[:k]})
		data = data[k:]
	}
	return msgs
}

// finalHead builds the final head and decides the framing: the
// handler's Content-Length; or, when the handler is done (whole is set),
// the length of body; or else chunks. A response without a body gets
// neither (HEAD keeps a Content-Length the handler set or wrote).
func (w *responseWriter) finalHead(whole bool, body []byte) outMsg {
	w.headSent = true
	h := w.snap
	framing := ""
	switch {
	case w.status < 200 || w.status == http.StatusNoContent:
		h.Del("Content-Length")
	case w.clen >= 0:
		framing = "Content-Length: " + strconv.FormatInt(w.clen, 10) + "\r\n"
	case w.noBody():
		if w.isHead && whole && w.written > 0 && bodyAllowedForStatus(w.status) {
			framing = "Content-Length: " + strconv.FormatInt(w.written, 10) + "\r\n"
		}
	case whole:
		framing = "Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
	default:
		w.chunked = true
		framing = "Transfer-Encoding: chunked\r\n"
	}
	sniff := !w.noBody() || w.isHead && bodyAllowedForStatus(w.status)
	if _, typed := h["Content-Type"]; !typed && sniff && len(body) > 0 && h.Get("Content-Encoding") == "" {
		h.Set("Content-Type", http.DetectContentType(body))
	}
	return outMsg{typ: "headers", data: w.head(w.status, h, framing)}
}

// head renders a response head: the status line, h's fields but the
// framing and hop-by-hop ones, framing, and Connection: close when the
// handler asked for it (the proxy then closes the client connection
// after the response, as net/http would).
func (w *responseWriter) head(code int, h http.Header, framing string) []byte {
	var b bytes.Buffer
	reason := http.StatusText(code)
	if reason == "" {
		reason = "status code " + strconv.Itoa(code)
	}
	fmt.Fprintf(&b, "HTTP/1.1 %03d %s\r\n", code, reason)
	_ = h.WriteSubset(&b, w.s.exclude)
	b.WriteString(framing)
	if hasToken(h, "Connection", "close") {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// bodyAllowedForStatus is net/http's rule.
func bodyAllowedForStatus(status int) bool {
	switch {
	case status >= 100 && status <= 199:
		return false
	case status == http.StatusNoContent, status == http.StatusNotModified:
		return false
	}
	return true
}

// headExclude lists the fields a head never takes from the handler's
// header: the framing (the writer sets it) and hop-by-hop fields.
func headExclude() map[string]bool {
	return map[string]bool{
		"Content-Length": true, "Transfer-Encoding": true, "Connection": true,
		"Keep-Alive": true, "Proxy-Connection": true, "Upgrade": true, "Te": true, "Trailer": true,
	}
}
