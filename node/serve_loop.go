package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"syscall"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/internal/yield"
)

// The loop: one goroutine owns the Node (every receive and every send)
// and the sessions' state. It sleeps in zmq_poll on the node's sockets
// and an inproc PAIR that handler goroutines ring (enqueue) when they
// hand it an operation, so it answers pings and takes every proxy's
// messages at once, whatever the handlers do. It never waits in a send
// either: what a proxy does not take waits in the loop (serve_out.go).

// recvBatch bounds the messages taken per wakeup before the handlers'
// operations get their turn.
const recvBatch = 1024

// discardLimit is how much request body the node drops, once the handler
// returned without reading it all, before it ends the session (net/http
// reads up to 256 KiB of an unread body to keep a connection). See onBody.
const discardLimit = 256 << 10

type opKind uint8

const (
	opSend   opKind = iota // send msgs in order, each body within credit
	opEnd                  // end the session now (`end`); what waits for credit is dropped
	opExit                 // the session's goroutine returned
	opCancel               // drop the send cancels, unless it (partly) went out
)

// outMsg is one message to the proxy.
type outMsg struct {
	typ  string
	data []byte
	// head, for a `headers` message that carries body bytes: data[:head]
	// is the head. 0: data is all head (or all body, for body types).
	head int
	// interim marks a 1xx head.
	interim bool
}

// op is what a handler goroutine hands the loop. Once enqueued, only the
// loop touches it; the goroutine waits on done (when not nil).
type op struct {
	kind opKind
	st   *stream
	msgs []outMsg
	done chan error // capacity 1; nil: nobody waits
	// cancels is, for opCancel, the send its goroutine gave up on.
	cancels *op
	// endBody is, for opEnd, `end`'s body (a WebSocket's close code).
	endBody []byte

	next     int  // loop: msgs[:next] went out
	off      int  // loop: bytes of msgs[next] that went out
	finished bool // loop: done was told
}

// finish tells the waiting goroutine (once) how the operation ended.
func (o *op) finish(err error) {
	if o.done != nil && !o.finished {
		o.finished = true
		o.done <- err
	}
}

// stream is one request (or WebSocket session) of a sid: from its head to
// its end, or to the next head of the same sid (HTTP/1.x keep-alive).
type stream struct {
	sid  []byte
	key  string // string(sid)
	desc string // method and path, for the loop's log lines
	// req is the handler's from its start on: the loop does not read it.
	req *http.Request
	// ctx is the request's context; cancel ends it (the client went
	// away, the stop's ShutdownTimeout, or the handler returned).
	ctx    context.Context
	cancel context.CancelFunc
	body   *bodyReader // nil: the request has no body
	ws     *WebSocket  // non-nil: a WebSocket session

	// loop only.
	started   bool      // its goroutine was started
	queued    bool      // it waits in server.waiting for a handler slot
	exited    bool      // its goroutine returned
	dead      bool      // ended: its messages are dropped
	finalSent bool      // a final response head went out
	bodyLeft  int64     // request body bytes still to come; -1: until the empty `body`
	discarded int64     // body bytes dropped after the handler returned
	window    int64     // the largest credit seen: the proxy's window
	pending   []*op     // sends waiting (for credit), in order
	heard     time.Time // the session's last message from the proxy (IdleTimeout)
	// waitSince is when it began to wait on its proxy (IdleTimeout): its
	// first pending send, or its handler's return with request body still
	// to come.
	waitSince time.Time
	sock      int // the socket of its proxy (ProxyTimeout)
	// blocked: its socket refused its next message, and it waits in the
	// socket's outQueue for room, since blockedSince (SendTimeout).
	blocked      bool
	blockedSince time.Time
}

// unread is what st holds that its handler has not taken: request body
// bytes not read, WebSocket messages not received.
func (st *stream) unread() int {
	switch {
	case st.ws != nil:
		return st.ws.unread()
	case st.body != nil:
		return st.body.unread()
	}
	return 0
}

// waitingSince says whether st waits on its proxy, and since when: sends
// pending (for credit), the rest of a body its handler returned without
// (to drop), or the request body its handler is blocked reading.
func (st *stream) waitingSince() (time.Time, bool) {
	switch {
	case len(st.pending) > 0, st.exited && st.bodyLeft != 0:
		return st.waitSince, true
	case st.started && !st.exited && st.body != nil && st.bodyLeft != 0:
		since := st.body.waitingSince()
		return since, !since.IsZero()
	}
	return time.Time{}, false
}

// run is the loop. It returns nil after a stop, or the error that broke
// the sockets.
func (s *server) run() (err error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			s.killAll()
		}
		s.now = time.Now()
		s.logRefused(true)
		s.flushAll()
		s.close()
	}()
	var yielder yield.Yielder // the loop never parks: see internal/yield
	for {
		if yielder.Due(time.Now()) {
			runtime.Gosched()
		}
		wait := time.Duration(-1)
		if s.sweepEvery > 0 && (len(s.sessions) > 0 || s.outFull()) {
			// A session may go idle, a proxy silent or stuck.
			wait = s.sweepEvery
		}
		wait = s.refusedWait(wait)
		polled, err := s.poller.Poll(wait)
		if err != nil {
			if zmq.AsErrno(err) == zmq.Errno(syscall.EINTR) {
				continue
			}
			return fmt.Errorf("node: serve: poll: %w", err)
		}
		for {
			if _, err := s.wakeRx.RecvBytes(zmq.DONTWAIT); err != nil {
				break
			}
		}
		s.now = time.Now()
		if !s.stopping && s.ctx.Err() != nil {
			// Before the operations: handlers may have seen the stop
			// first, and what they send now is for sessions it ends.
			s.beginStop()
			timer = time.AfterFunc(s.cfg.ShutdownTimeout, s.wake)
		}
		s.flushReady(polled)
		if err := s.receive(); err != nil {
			return fmt.Errorf("node: serve: receive: %w", err)
		}
		for _, o := range s.takeOps() {
			s.apply(o)
		}
		s.logRefused(false)
		if s.sweepEvery > 0 && s.now.Sub(s.swept) >= s.sweepEvery {
			s.swept = s.now
			s.sweepIdle()
			s.sweepProxies()
			s.sweepOut()
		}
		if s.stopping {
			if s.drained() {
				return nil
			}
			if !time.Now().Before(s.deadline) {
				left := len(s.sessions)
				s.endAll()
				if s.running+s.sockets > 0 || left > 0 {
					s.logf("node: serve: stopping after %v with %d sessions cut, %d handlers still running", s.cfg.ShutdownTimeout, left, s.running+s.sockets)
				}
				return nil
			}
		}
	}
}

// receive takes what the proxies sent, up to recvBatch messages.
func (s *server) receive() error {
	for range recvBatch {
		m, from, err := s.n.recv(true) // a pong never waits
		if err != nil {
			switch zmq.AsErrno(err) {
			case errAgain:
				return nil
			case zmq.Errno(syscall.EINTR):
				continue
			}
			if errors.Is(err, ErrBadMessage) || errors.Is(err, ErrBadCredit) {
				s.logf("node: serve: %v", err)
				continue
			}
			return err
		}
		s.dispatch(m, from)
	}
	return nil
}

// dispatch handles m, from the proxy of socket from.
func (s *server) dispatch(m Message, from int) {
	st := s.sessions[string(m.SID)] // one lookup for every type but a head
	if st != nil {
		st.heard = s.now
	}
	switch m.Type {
	case "uwsgi", "headers":
		s.onHead(m, from)
	case "body":
		s.onBody(st, m)
	case "websocket", "websocket-binary":
		if st != nil && st.ws != nil && s.keepTotal(st, len(m.Body)) {
			if !st.ws.push(m.Body, m.Type == "websocket-binary") {
				s.overBuffer(st, fmt.Sprintf("over MaxBuffer (%d bytes) unreceived", s.cfg.MaxBuffer))
			}
		}
	case "credit":
		if st != nil {
			st.window = max(st.window, s.n.Credit(st.sid))
			s.pump(st)
		}
	case "end":
		if st != nil {
			if st.ws != nil {
				st.ws.fail(io.EOF)
			}
			s.kill(st)
		}
	}
}

// onHead starts a request. A request that gets no stream (refused,
// retried) leaves no credit behind (forgetCredit): none of it goes on.
func (s *server) onHead(m Message, from int) {
	key := string(m.SID)
	if old := s.sessions[key]; old != nil {
		s.supersede(old)
	}
	if s.stopped() {
		s.send(m.SID, "retry", nil) // another node, if there is one
		s.n.forgetCredit(m.SID)
		return
	}
	var req *http.Request
	var env map[string]string
	var err error
	if m.Type == "uwsgi" {
		if env, err = Environ(m.Body); err == nil {
			req, err = requestFromEnviron(env)
		}
	} else {
		req, err = requestFromHead(m.Body)
	}
	if err != nil {
		s.logf("node: serve: bad request head: %v", err)
		s.send(m.SID, "headers", simpleResponse(http.StatusBadRequest, true))
		s.n.forgetCredit(m.SID)
		return
	}
	if s.running >= s.cfg.MaxConcurrent && s.queued >= s.cfg.MaxWaiting && !isWebSocket(req) {
		s.overloaded(m.SID, req.ContentLength != 0)
		s.n.forgetCredit(m.SID)
		return
	}
	// Not cancelled by Serve's: at the stop, requests in flight finish
	// (beginStop), and only what is left at the deadline is cut.
	ctx, cancel := context.WithCancel(context.WithoutCancel(s.ctx))
	if env != nil {
		ctx = context.WithValue(ctx, environKey{}, env)
	}
	st := &stream{sid: m.SID, key: key, ctx: ctx, cancel: cancel, desc: req.Method + " " + req.URL.Path, heard: s.now, sock: from}
	st.req = req.WithContext(ctx)
	s.sessions[key] = st
	if isWebSocket(req) {
		if s.cfg.WebSocket == nil {
			s.endSession(st, wsCloseBody(1011, "no WebSocket handler"))
			return
		}
		st.ws = newWebSocket(s, st)
		st.started = true
		s.sockets++
		s.live[st] = struct{}{}
		go s.serveWebSocket(st)
		return
	}
	if req.ContentLength != 0 {
		st.bodyLeft = req.ContentLength // -1: chunked
		st.body = newBodyReader(ctx, s.cfg.MaxBuffer, &s.held)
		st.req.Body = st.body
	}
	if s.running < s.cfg.MaxConcurrent {
		s.start(st)
	} else {
		s.wait(st)
	}
}

// wait makes st wait for a handler slot.
func (s *server) wait(st *stream) {
	if len(s.waiting) >= 2*s.queued+64 {
		// Mostly requests ended while they waited (their clients left,
		// or the proxy's timeout): drop them, or the queue would grow
		// while the handlers stay stuck.
		s.waiting = slices.DeleteFunc(s.waiting, func(w *stream) bool { return w.dead })
	}
	s.waiting = append(s.waiting, st)
	st.queued = true
	s.queued++
}

// overloaded answers a request that finds MaxConcurrent handlers running
// and MaxWaiting requests waiting: 503, and the connection closed when a
// body follows (over HTTP/1.x the proxy then stops the upload rather
// than send it for nothing; an HTTP/2 stream takes the rest of its body
// until its client ends it, dropped here). It logs at most once a second
// how many it refused.
func (s *server) overloaded(sid []byte, body bool) {
	s.refused++
	s.logRefused(false)
	s.send(sid, "headers", overloadResponse(body))
}

// logRefused reports the requests overloaded answered since the last
// report, at most once a second; the loop wakes for a count still
// unreported (refusedWait), and the stop reports it (force).
func (s *server) logRefused(force bool) {
	if s.refused == 0 || !force && s.now.Sub(s.refusedLogged) < time.Second {
		return
	}
	s.logf("node: serve: %d handlers running and %d requests waiting (MaxConcurrent, MaxWaiting): %d request(s) answered 503", s.running, s.queued, s.refused)
	s.refused, s.refusedLogged = 0, s.now
}

// refusedWait shortens the loop's poll wait to when an unreported count
// of refusals is due.
func (s *server) refusedWait(wait time.Duration) time.Duration {
	if s.refused == 0 {
		return wait
	}
	d := max(time.Second-time.Since(s.refusedLogged), time.Millisecond)
	if wait < 0 || d < wait {
		return d
	}
	return wait
}

// supersede retires a sid's request when its next request starts: its
// response is complete (the proxy sends the next head only then), so
// whatever its handler still sends is dropped.
//
// Its handler's context is left alone (unless it never started): as with
// net/http, it ends when the handler returns.
func (s *server) supersede(old *stream) {
	delete(s.sessions, old.key) // first: the sid's credit is the new request's
	if !old.started {
		s.kill(old)
		return
	}
	old.dead = true
	if old.body != nil {
		old.body.dropFail(ErrSessionEnded, false)
	}
	for _, o := range old.pending {
		o.finish(ErrSessionEnded)
	}
	old.pending = nil
}

func (s *server) start(st *stream) {
	st.started = true
	s.running++
	s.live[st] = struct{}{}
	go s.serveHTTP(st)
}

// startWaiting starts waiting requests while slots are free.
func (s *server) startWaiting() {
	for s.running < s.cfg.MaxConcurrent && len(s.waiting) > 0 && !s.stopped() {
		st := s.waiting[0]
		s.waiting[0] = nil
		s.waiting = s.waiting[1:]
		if !st.dead {
			st.queued = false
			s.queued--
			s.start(st)
		}
	}
}

// onBody passes a request body piece to its reader. Once the handler has
// returned, the rest of an unread body is dropped; past discardLimit of
// it, with more to come, the session is ended (the client's connection
// closed) rather than the whole upload read for nothing.
func (s *server) onBody(st *stream, m Message) {
	if st == nil || st.ws != nil || st.bodyLeft == 0 {
		return
	}
	data := m.Body
	eof := false
	if st.bodyLeft < 0 {
		eof = len(data) == 0
	} else {
		if int64(len(data)) > st.bodyLeft {
			data = data[:st.bodyLeft]
		}
		st.bodyLeft -= int64(len(data))
		eof = st.bodyLeft == 0
	}
	if eof {
		st.bodyLeft = 0
	}
	if st.exited {
		st.discarded += int64(len(data))
		if eof {
			s.maybeForget(st)
		} else if st.discarded > discardLimit && (st.bodyLeft < 0 || st.bodyLeft > discardLimit) {
			s.endSession(st, nil)
		}
		return
	}
	if !s.keepTotal(st, len(data)) {
		return
	}
	if !st.body.push(data, eof) {
		s.overBuffer(st, fmt.Sprintf("request body over MaxBuffer (%d bytes) unread", s.cfg.MaxBuffer))
	}
}

// overBuffer fails st, a session holding too much unread: what it holds
// is freed, its request body reads ErrBufferFull and the client gets 413
// (with Connection: close, so that the proxy stops the upload) when no
// response head went out, else the session is ended; a WebSocket is
// closed with 1009.
func (s *server) overBuffer(st *stream, why string) {
	if st.ws != nil {
		s.logf("node: serve: WebSocket %s: %s; ending it", st.desc, why)
		st.ws.fail(ErrBufferFull)
		st.ws.drop()
		s.endSession(st, wsCloseBody(1009, "messages over the node's buffer"))
		return
	}
	s.logf("node: serve: %s: %s; failing the request", st.desc, why)
	st.body.dropFail(ErrBufferFull, true)
	if !st.finalSent {
		s.send(st.sid, "headers", simpleResponse(http.StatusRequestEntityTooLarge, true))
		s.kill(st)
	} else {
		s.endSession(st, nil)
	}
}

// keepTotal makes room for n more bytes for st under MaxBufferTotal:
// past it, the session holding the most unread fails and what it holds
// is freed. It reports whether st may take them (false: st was that
// session).
func (s *server) keepTotal(st *stream, n int) bool {
	if n == 0 || s.held.Load()+int64(n) <= int64(s.cfg.MaxBufferTotal) {
		return true
	}
	most, mostN := st, st.unread()+n // st as it would be
	for _, x := range s.sessions {
		if k := x.unread(); k > mostN {
			most, mostN = x, k
		}
	}
	if mostN == 0 {
		return true // nobody holds anything: nothing to free
	}
	s.overBuffer(most, fmt.Sprintf("the sessions' unread bytes over MaxBufferTotal (%d), this one holding the most (%d)", s.cfg.MaxBufferTotal, mostN))
	return most != st
}

// apply carries out an operation of a handler goroutine.
func (s *server) apply(o *op) {
	st := o.st
	switch o.kind {
	case opExit:
		st.exited = true
		delete(s.live, st)
		if len(st.pending) == 0 {
			st.waitSince = s.now // for the rest of its body, if any
		}
		if st.ws != nil {
			s.sockets--
		} else {
			s.running--
			s.startWaiting()
		}
		s.maybeForget(st)
	case opEnd:
		if !st.dead {
			s.endSession(st, o.endBody)
		}
		o.finish(nil)
	case opSend:
		if st.dead {
			o.finish(ErrSessionEnded)
			return
		}
		if len(st.pending) == 0 {
			st.waitSince = s.now
		}
		st.pending = append(st.pending, o)
		if len(st.pending) == 1 {
			s.pump(st)
		}
	case opCancel:
		s.cancelSend(o.cancels)
	}
}

// cancelSend drops a send whose goroutine gave up waiting for it
// (WebSocket.Send's ctx ended), and tells it so (errSendCancelled).
// A send that is over (it went out, or failed) or that went out in part
// is left alone: its goroutine gets its outcome. Every send it is given
// was applied before it (ops go in order), so it is over or pending.
func (s *server) cancelSend(o *op) {
	st := o.st
	i := slices.Index(st.pending, o)
	if o.finished || i < 0 || i == 0 && (o.next > 0 || o.off > 0) {
		return
	}
	st.pending = slices.Delete(st.pending, i, i+1)
	o.finish(errSendCancelled)
	if i == 0 {
		s.pump(st) // what follows may go now
	}
}

// pump sends what a stream has pending, in order, as far as its credit
// and its proxy go; a `credit` message calls it again, and so does room
// on its socket for a stream that waits for it (flushBlocked).
func (s *server) pump(st *stream) {
	if st.blocked {
		return // its turn comes with room on its socket
	}
	s.pumpNow(st)
}

// pumpNow is pump for a stream that is not, or no longer, blocked: what
// its socket refuses, or would (it is full), makes it wait (block).
func (s *server) pumpNow(st *stream) {
	for len(st.pending) > 0 {
		if s.out[st.sock].full {
			s.block(st) // behind what waits for the socket already
			return
		}
		o := st.pending[0]
		for o.next < len(o.msgs) {
			sent, err := s.sendMsg(st, &o.msgs[o.next], &o.off)
			if isAgain(err) {
				s.block(st)
				return
			}
			if err != nil {
				s.sendFailed(o.msgs[o.next].typ, err)
				s.kill(st)
				return
			}
			if !sent {
				return // waiting for credit
			}
			o.next++
			o.off = 0
		}
		st.pending[0] = nil
		st.pending = st.pending[1:]
		o.finish(nil)
	}
	s.maybeForget(st)
}

// sendMsg sends m, or what credit allows of it from *off on; sent says
// whether it all went.
func (s *server) sendMsg(st *stream, m *outMsg, off *int) (sent bool, err error) {
	switch m.typ {
	case "body", "chunk", "websocket", "websocket-binary":
		if len(m.data) == 0 {
			return true, s.n.Send(st.sid, m.typ, nil) // the final empty chunk
		}
		k, err := s.n.SendBody(st.sid, m.typ, m.data[*off:])
		*off += k
		if errors.Is(err, ErrNoCredit) {
			// A WebSocket message that does not fit goes whole once more
			// than half the window is left (SendBody's overdraft); else
			// it waits for the next credit, as what is left of a body.
			return false, nil
		}
		return err == nil, err
	case "headers":
		if rest := len(m.data) - m.head; m.head > 0 && rest > 0 && s.n.Credit(st.sid) < int64(rest) {
			if st.window == 0 {
				// The proxy's first credit follows the request head: a
				// handler that answered before it came waits for it, and
				// the response stays one message.
				return false, nil
			}
			// Not enough credit for head and body in one message: the head
			// now, the body as credit comes.
			if err := s.n.Send(st.sid, "headers", m.data[:m.head]); err != nil {
				return false, err
			}
			st.finalSent = true
			*m = outMsg{typ: "body", data: m.data[m.head:]}
			return s.sendMsg(st, m, off)
		}
		if err := s.n.Send(st.sid, m.typ, m.data); err != nil {
			return false, err
		}
		st.finalSent = st.finalSent || !m.interim
		return true, nil
	}
	return true, s.n.Send(st.sid, m.typ, m.data)
}

// endSession sends `end` for st (with body: a WebSocket's close code) and
// drops it.
func (s *server) endSession(st *stream, body []byte) {
	if !st.dead {
		s.send(st.sid, "end", body)
	}
	s.kill(st)
}

// kill drops a stream: its context is cancelled, its body and WebSocket
// fail (unless an earlier fail said why), its pending sends fail, and its
// sid is forgotten.
func (s *server) kill(st *stream) {
	if st.dead {
		return
	}
	st.dead = true
	st.cancel()
	if st.queued {
		st.queued = false
		s.queued--
	}
	if st.body != nil {
		// A body cut short is freed (MaxBufferTotal: it counts until
		// the handler returns otherwise); a whole one stays readable,
		// unless no handler will ever read it.
		st.body.dropFail(ErrSessionEnded, !st.started)
	}
	if st.ws != nil {
		st.ws.fail(ErrSessionEnded) // what came before stays receivable
	}
	for _, o := range st.pending {
		o.finish(ErrSessionEnded)
	}
	st.pending = nil
	s.forget(st)
}

// forget drops st from the sessions, and the sid's credit with it,
// unless a newer request of the sid took its place (supersede).
func (s *server) forget(st *stream) {
	if s.sessions[st.key] == st {
		delete(s.sessions, st.key)
		s.n.forgetCredit(st.sid)
	}
}

// sweepIdle ends the sessions that have waited on their proxy (see
// waitingSince) for IdleTimeout, hearing nothing from it meanwhile: the
// proxy went away, or forgot them. The time counts from the later of the
// wait's start and the session's last message, so a handler that was
// busy (or quiet) for long and only now waits gets the whole IdleTimeout.
func (s *server) sweepIdle() {
	if s.cfg.IdleTimeout <= 0 {
		return
	}
	for _, st := range s.sessions {
		since, waits := st.waitingSince()
		if waits && s.now.Sub(later(since, st.heard)) > s.cfg.IdleTimeout {
			s.logf("node: serve: %s: waited %v on the proxy, which sent nothing for it meanwhile (IdleTimeout); ending the session", st.desc, s.cfg.IdleTimeout)
			s.endSession(st, nil)
		}
	}
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sweepProxies ends the sessions of each proxy that has sent nothing,
// not even a ping, for ProxyTimeout (proxyGone). The Node counts what
// each socket received; a sweep that finds a count moved takes the proxy
// as heard then, which is never before it spoke: a proxy that pings is
// never taken for gone, however idle.
func (s *server) sweepProxies() {
	if s.cfg.ProxyTimeout <= 0 {
		return
	}
	for i := range s.proxies {
		p := &s.proxies[i]
		if c := s.n.recvd[i]; c != p.recvd {
			p.recvd, p.heard, p.gone = c, s.now, false
		} else if !p.gone && s.now.Sub(p.heard) > s.cfg.ProxyTimeout {
			p.gone = true
			s.proxyGone(i)
		}
	}
}

// proxyGone ends the sessions of the proxy of socket i, silent for
// ProxyTimeout, without a message (it would not take one, or would not
// know them): their handlers' contexts are cancelled, their reads and
// sends fail, and the Node forgets their credit and routes.
func (s *server) proxyGone(i int) {
	ended := 0
	for _, st := range s.sessions {
		if st.sock == i {
			s.kill(st)
			ended++
		}
	}
	s.n.forgetSocket(i)
	s.forgetOut(i)
	if ended > 0 {
		s.logf("node: serve: proxy %s sent nothing, not even a ping, for %v (ProxyTimeout): ending its %d session(s)", s.cfg.Endpoints[i], s.cfg.ProxyTimeout, ended)
	}
}

// killAll drops every stream without a message (the sockets failed).
func (s *server) killAll() {
	for _, st := range s.sessions {
		s.kill(st)
	}
	s.cancelLive()
	s.waiting, s.queued = nil, 0
}

// cancelLive cancels the context of every handler still running, those
// of sessions a newer request of their sid superseded included (they
// are in no session any more).
func (s *server) cancelLive() {
	for st := range s.live {
		st.cancel()
	}
}

// maybeForget drops a stream that has nothing left to do: its goroutine
// returned, its response went out and its request body is all in. The
// next request of its sid (keep-alive) starts afresh.
func (s *server) maybeForget(st *stream) {
	if st.exited && len(st.pending) == 0 && st.bodyLeft == 0 {
		s.forget(st)
	}
}

// stopped reports whether Serve is stopping: its context may be done a
// little before the loop sees it (beginStop), and nothing may start then.
func (s *server) stopped() bool { return s.stopping || s.ctx.Err() != nil }

// beginStop starts the stop: requests not started yet go back to the
// proxy (`retry`: another node serves them), as new ones will; WebSockets
// are closed with 1001 (the client should come back, to another node, as
// when the proxy stops; 1000 told it all was done). Requests in flight
// finish, as with net/http's Shutdown: their handlers keep their
// contexts, their responses and bodies go on, until ShutdownTimeout
// (endAll).
func (s *server) beginStop() {
	s.stopping = true
	s.deadline = time.Now().Add(s.cfg.ShutdownTimeout)
	// Tell every proxy first (a pong saying draining): while the drain
	// lasts, it would otherwise prefer this node, the one with the fewest
	// sessions, for every new session, and each would come back (retry).
	s.n.SetDraining()
	for i := range s.n.Sockets() {
		if err := s.n.pong(i, nil, true); err != nil {
			s.logf("node: serve: telling a proxy that the node drains: %v", err)
		}
	}
	for _, st := range s.sessions {
		switch {
		case !st.started:
			s.send(st.sid, "retry", nil)
			s.kill(st)
		case st.ws != nil:
			if !st.exited {
				s.send(st.sid, "end", wsCloseBody(1001, "node shutting down"))
			}
			s.kill(st)
		}
	}
	s.waiting, s.queued = nil, 0
}

// endAll ends, at the stop's deadline, the sessions the drain left: a
// handler still running, a response still waiting for credit. Their
// handlers' contexts are cancelled.
func (s *server) endAll() {
	for _, st := range s.sessions {
		if !st.exited || len(st.pending) > 0 {
			s.send(st.sid, "end", nil)
		}
		s.kill(st)
	}
	s.cancelLive()
}

// drained reports whether the stop's drain is done: no handler runs and
// no response waits to go out (a session whose handler returned and that
// only waits for the rest of a body it left unread does not count; nor
// does a socket's backlog, which a stuck proxy may never take).
func (s *server) drained() bool {
	if s.running+s.sockets > 0 {
		return false
	}
	for _, st := range s.sessions {
		if len(st.pending) > 0 {
			return false
		}
	}
	return true
}

// simpleResponse is a whole small text/plain response of the node's own.
func simpleResponse(code int, closeConn bool) []byte {
	return simpleResponseWith(code, closeConn, "")
}

// overloadResponse is overloaded's 503.
func overloadResponse(closeConn bool) []byte {
	return simpleResponseWith(http.StatusServiceUnavailable, closeConn, "Retry-After: 1\r\n")
}

// simpleResponseWith is simpleResponse with extra header lines (each
// ending in CRLF).
func simpleResponseWith(code int, closeConn bool, extra string) []byte {
	body := http.StatusText(code) + "\n"
	conn := ""
	if closeConn {
		conn = "Connection: close\r\n"
	}
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\n%s%sContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\n\r\n%s",
		code, http.StatusText(code), conn, extra, len(body), body)
}
