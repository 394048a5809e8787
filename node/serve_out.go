package node

import (
	"errors"
	"slices"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// What the loop does with a proxy that does not take its messages. The
// loop never waits on a socket: Serve's sockets have a send timeout of 0,
// so a send fails at once with zmq's EAGAIN when the pipe to that proxy
// holds its high-water mark of messages (the proxy is stuck, or dead or
// partitioned: a DEALER keeps its pipe while it reconnects). The message
// then waits in the loop, in the socket's outQueue, and the loop watches
// that socket for room (POLLOUT) while it goes on with every other one:
// one proxy that takes nothing only costs its own sessions.
//
//   - A session whose next message the socket refused is blocked: its
//     sends stay pending, in order, as they do for credit, and it waits
//     in the queue; room resumes the blocked sessions in turn. One that
//     goes SendTimeout without its proxy taking a message of it is ended
//     (its handler's writes fail with ErrSessionEnded).
//   - A message outside any session's order (send: `end`, `retry`, the
//     node's own answers) waits in the socket's backlog, in order, up to
//     SendBacklog of them and for SendTimeout at most; beyond that it is
//     dropped and counted, and the sweep logs the count.
//   - A pong is never queued: one the socket refuses is dropped (the
//     proxy pings again; see Node.recv).
//
// While a socket is full, whatever is for it queues behind what waits,
// even if there is room again before the loop saw it: messages to one
// proxy keep their order.

// outQueue is what waits for room on one socket. Loop only.
type outQueue struct {
	// full: a send got EAGAIN, and no flush since emptied the queue. The
	// poller watches the socket for POLLOUT while it is set.
	full bool
	// pollID is the socket's item in the loop's poller.
	pollID int
	// blocked are the sessions whose next message the socket refused,
	// in turn; a session ended meanwhile (dead) is skipped.
	blocked []*stream
	// backlog are the messages of send that wait, in order.
	backlog []queuedMsg
	// dropped counts the backlog's messages dropped since the last log
	// line; pongs is the Node's count of dropped pongs at that line.
	dropped int
	pongs   uint64
	// ended counts the sessions ended for SendTimeout since the last
	// log line.
	ended int
}

// queuedMsg is one message of send waiting for room.
type queuedMsg struct {
	sid  []byte
	typ  string
	body []byte
	at   time.Time // queued then (SendTimeout)
}

// markFull notes that socket i refused a message: it is watched for
// room from now on.
func (s *server) markFull(i int) {
	q := &s.out[i]
	if !q.full {
		q.full = true
		s.watch(q, zmq.POLLIN|zmq.POLLOUT)
	}
}

// watch sets the events the poller waits for on q's socket.
func (s *server) watch(q *outQueue, events zmq.State) {
	if _, err := s.poller.Update(q.pollID, events); err != nil {
		s.logf("node: serve: poller: %v", err)
	}
}

// block makes st wait for room on its socket, which just refused its
// next message (or is full); a session already waiting keeps its turn.
func (s *server) block(st *stream) {
	s.markFull(st.sock)
	if !st.blocked {
		st.blocked, st.blockedSince = true, s.now
		s.out[st.sock].blocked = append(s.out[st.sock].blocked, st)
	}
}

// send sends a message outside any stream's order; while its socket is
// full it waits in the socket's backlog instead (errors are logged).
func (s *server) send(sid []byte, typ string, body []byte) {
	i, ok := s.n.route(sid)
	if !ok {
		return // no proxy would know it (ErrUnknownSession)
	}
	if !s.out[i].full {
		err := s.n.Send(sid, typ, body)
		if !isAgain(err) {
			s.sendFailed(typ, err)
			return
		}
		s.markFull(i)
	}
	s.queue(i, queuedMsg{sid: sid, typ: typ, body: body, at: s.now})
}

// queue adds m to socket i's backlog, or drops it when SendBacklog wait
// there already.
func (s *server) queue(i int, m queuedMsg) {
	q := &s.out[i]
	if len(q.backlog) >= s.cfg.SendBacklog {
		q.dropped++
		return
	}
	q.backlog = append(q.backlog, m)
}

// sendFailed logs a failed send, but for a session no proxy knows.
func (s *server) sendFailed(typ string, err error) {
	if err != nil && !errors.Is(err, ErrUnknownSession) {
		s.logf("node: serve: sending %s: %v", typ, err)
	}
}

// flushReady flushes the queues of the sockets that have room again.
func (s *server) flushReady(polled []zmq.Polled) {
	for _, p := range polled {
		if p.Events&zmq.POLLOUT == 0 {
			continue
		}
		if i := slices.Index(s.n.socks, p.Socket); i >= 0 {
			s.flush(i)
		}
	}
}

// flush sends what waits for socket i, the backlog first, then the
// blocked sessions in turn, until the socket refuses again; once all of
// it went the socket is no longer watched for room.
func (s *server) flush(i int) {
	q := &s.out[i]
	q.full = false
	s.flushBacklog(q)
	s.flushBlocked(q)
	if !q.full {
		s.watch(q, zmq.POLLIN)
	}
}

// flushBacklog sends q's backlog in order until the socket refuses.
func (s *server) flushBacklog(q *outQueue) {
	for len(q.backlog) > 0 {
		m := q.backlog[0]
		err := s.n.Send(m.sid, m.typ, m.body)
		if isAgain(err) {
			q.full = true
			return
		}
		s.sendFailed(m.typ, err)
		q.backlog[0] = queuedMsg{}
		q.backlog = q.backlog[1:]
	}
}

// flushBlocked resumes q's blocked sessions in turn until the socket
// refuses. A session that sent something before it was refused again
// goes to the back, its SendTimeout counted afresh; one that sent
// nothing keeps its place and its time.
func (s *server) flushBlocked(q *outQueue) {
	for len(q.blocked) > 0 && !q.full {
		st := q.blocked[0]
		q.blocked[0] = nil
		q.blocked = q.blocked[1:]
		if st.dead {
			st.blocked = false
			continue
		}
		since, sent := st.blockedSince, s.n.sent[st.sock]
		st.blocked = false
		s.pumpNow(st) // refused again: block puts it at the back
		if st.blocked && s.n.sent[st.sock] == sent {
			q.blocked = slices.Insert(q.blocked[:len(q.blocked)-1], 0, st)
			st.blockedSince = since
		}
	}
}

// sweepOut ends the blocked sessions whose proxy took nothing of them
// for SendTimeout, drops the backlog's messages older than that, and
// logs what was dropped and ended since the last sweep, once per socket.
func (s *server) sweepOut() {
	for i := range s.out {
		q := &s.out[i]
		if s.cfg.SendTimeout > 0 {
			s.expireBlocked(q)
			s.expireBacklog(q)
		}
		s.logOut(i)
	}
}

// expireBlocked ends q's blocked sessions that waited for SendTimeout
// since their socket last took a message of theirs, and drops the dead.
// Their `end` waits in the backlog, for a proxy that may yet come back.
func (s *server) expireBlocked(q *outQueue) {
	var expired []*stream
	q.blocked = slices.DeleteFunc(q.blocked, func(st *stream) bool {
		idle := st.dead || len(st.pending) == 0 // a withdrawn send (cancelSend): nothing waits
		if !idle && s.now.Sub(st.blockedSince) <= s.cfg.SendTimeout {
			return false
		}
		st.blocked = false
		if !idle {
			expired = append(expired, st)
		}
		return true
	})
	for _, st := range expired {
		s.endSession(st, nil)
	}
	q.ended += len(expired)
}

// expireBacklog drops the backlog's messages that waited for
// SendTimeout (the oldest come first).
func (s *server) expireBacklog(q *outQueue) {
	k := 0
	for k < len(q.backlog) && s.now.Sub(q.backlog[k].at) > s.cfg.SendTimeout {
		k++
	}
	if k > 0 {
		q.dropped += k
		q.backlog = slices.Delete(q.backlog, 0, k)
	}
}

// logOut reports what the sweeps ended and dropped for socket i's proxy
// since its last report, in one line.
func (s *server) logOut(i int) {
	q := &s.out[i]
	pongs := s.n.pongsDropped[i] - q.pongs
	if q.ended == 0 && q.dropped == 0 && pongs == 0 {
		return
	}
	s.logf("node: serve: proxy %s takes no messages (its pipe is full: stuck, dead or unreachable): ended %d session(s) it took nothing of for %v (SendTimeout), dropped %d message(s) (SendBacklog %d, SendTimeout) and %d pong(s)",
		s.cfg.Endpoints[i], q.ended, s.cfg.SendTimeout, q.dropped, s.cfg.SendBacklog, pongs)
	q.ended, q.dropped, q.pongs = 0, 0, s.n.pongsDropped[i]
}

// outFull reports whether some socket is full: the sweeps then have
// work whatever the sessions.
func (s *server) outFull() bool {
	return slices.ContainsFunc(s.out, func(q outQueue) bool { return q.full })
}

// forgetOut drops what waits for socket i, whose proxy is gone
// (ProxyTimeout): its sessions were ended, and their messages are for
// nobody.
func (s *server) forgetOut(i int) {
	q := &s.out[i]
	for _, st := range q.blocked {
		st.blocked = false
	}
	q.blocked, q.backlog = nil, nil
}

// flushAll tries once more, at the stop, what waits for every full
// socket: what goes now has serveLinger to reach its proxy.
func (s *server) flushAll() {
	for i := range s.out {
		if s.out[i].full {
			s.flush(i)
		}
	}
}
