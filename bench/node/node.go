package main

import (
	"bytes"
	"sync/atomic"

	bbnode "github.com/blastbeat/blastbeat/node"
)

// The canned responses. Each whole small response is one `headers` message
// whose body follows the head (the EXTENSION the bench relies on), so the
// node crosses cgo once per request.
var (
	helloResponse    = []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!")
	notFoundResponse = []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\nNot Found\n")
	badResponse      = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nBad Request\n")
	streamHead       = []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")
	streamChunk      = bytes.Repeat([]byte("x"), streamChunkSize)
)

// The canned responses as messages, with their credit cost (the body
// bytes after each head) worked out once.
var (
	helloMsg    = headersMsg(helloResponse)
	notFoundMsg = headersMsg(notFoundResponse)
	badMsg      = headersMsg(badResponse)
	streamMsg   = headersMsg(streamHead)
)

const (
	streamChunkSize  = 1024 // bytes in each `chunk` of /stream
	streamChunkCount = 16   // chunks before the final empty one

	// maxQueued bounds the body bytes one session may hold waiting for
	// credit (with -credits): a WebSocket client that sends but does not
	// read would otherwise grow the node without end. Past it the node
	// ends the session. /stream never comes near it.
	maxQueued = 8 << 20
)

// sender sends one 3-frame message [sid, typ, body] to the proxy. body is
// not retained after the call.
type sender func(sid []byte, typ string, body []byte) error

// outMsg is one message to the proxy, waiting for credit (with -credits).
type outMsg struct {
	typ   string
	body  []byte // what is still to send
	cost  int64  // credit the rest takes (bbnode.Cost)
	split bool   // body or chunk: may go in pieces
	alias bool   // body aliases the receive batch: copy it before keeping it
}

func headersMsg(b []byte) outMsg {
	return outMsg{typ: "headers", body: b, cost: bbnode.Cost("headers", b)}
}

// session is the per-sid state the node keeps between messages: without
// -credits only while a /post body streams in; with -credits from the
// sid's first request head to its `end`, holding its allowance and the
// messages waiting for credit.
type session struct {
	// remaining is the number of request body bytes still awaited for
	// /post, -1 when the length is unknown (the body ends with an empty
	// `body` message), 0 when no body is awaited.
	remaining int64

	// credit is what the node may still send (PROTOCOL.md, "Flow
	// control"): the sum of `credit` messages since the last request
	// head, less what was sent; negative after a whole message larger
	// than the window. window is the largest credit since the head.
	credit, window int64
	// queue[head:] waits for credit, in order; queued is its body bytes.
	queue  []outMsg
	head   int
	queued int
}

// reset starts the session over for a new request head: what an earlier
// response left, credit and queue, is void.
func (s *session) reset() {
	clear(s.queue)
	*s = session{queue: s.queue[:0]}
}

// stats counts what the node saw; printed at exit from the signal
// goroutine, hence atomic (uncontended: one writer).
type stats struct {
	requests, bodies, wsMessages, pings, ends, dropped atomic.Uint64
	// credits counts `credit` messages, waits the messages that could not
	// go at once for want of credit, overflows the sessions ended for
	// holding more than maxQueued.
	credits, waits, overflows atomic.Uint64
}

// node is the bench backend's state machine. It is driven by one receive
// loop and is not safe for concurrent use.
type node struct {
	send sender
	// credits: the node speaks flow control (-credits): it says so in
	// its pongs and never sends more body bytes than a session was
	// granted; what does not fit waits in the session, so one slow
	// client holds up no other session.
	credits  bool
	sessions map[string]*session
	stats    stats
}

func newNode(send sender, credits bool) *node {
	return &node{send: send, credits: credits, sessions: make(map[string]*session)}
}

// creditsPong is the pong body of a node that speaks credits.
var creditsPong = []byte(bbnode.CreditsFeature)

// handle processes one message from the proxy. The frames alias the
// receive buffer and are not retained.
func (n *node) handle(msg [][]byte) error {
	if len(msg) != 3 {
		n.stats.dropped.Add(1)
		return nil
	}
	sid, typ, body := msg[0], msg[1], msg[2]
	switch string(typ) {
	case "ping":
		n.stats.pings.Add(1)
		if n.credits {
			return n.send(sid, "pong", creditsPong)
		}
		return n.send(sid, "pong", nil)
	case "uwsgi":
		n.stats.requests.Add(1)
		return n.request(sid, body)
	case "body":
		n.stats.bodies.Add(1)
		return n.body(sid, body)
	case "websocket", "websocket-binary":
		n.stats.wsMessages.Add(1)
		s := n.sessions[string(sid)]
		if n.credits && s == nil {
			return nil // ended (overflow) or never opened: nobody to echo to
		}
		return n.out(sid, s, outMsg{typ: string(typ), body: body, cost: int64(len(body)), alias: true})
	case "credit":
		if !n.credits {
			n.stats.dropped.Add(1)
			return nil
		}
		return n.credit(sid, body)
	case "end":
		n.stats.ends.Add(1)
		delete(n.sessions, string(sid))
	default:
		n.stats.dropped.Add(1)
	}
	return nil
}

func (n *node) request(sid, pkt []byte) error {
	var s *session
	if n.credits {
		if s = n.sessions[string(sid)]; s != nil {
			s.reset()
		} else {
			s = &session{}
			n.sessions[string(sid)] = s
		}
	}
	req, err := parseRequest(pkt)
	if err != nil {
		return n.out(sid, s, badMsg)
	}
	if req.websocket {
		// The proxy completes the handshake itself; the node only sees
		// the session's messages from now on.
		return nil
	}
	switch req.path {
	case "/":
		return n.out(sid, s, helloMsg)
	case "/post":
		if req.contentLength == 0 {
			return n.out(sid, s, helloMsg)
		}
		if s == nil {
			s = &session{}
			n.sessions[string(sid)] = s
		}
		s.remaining = req.contentLength
		return nil
	case "/stream":
		if err := n.out(sid, s, streamMsg); err != nil {
			return err
		}
		for range streamChunkCount {
			if err := n.out(sid, s, outMsg{typ: "chunk", body: streamChunk, cost: streamChunkSize, split: true}); err != nil {
				return err
			}
		}
		return n.out(sid, s, outMsg{typ: "chunk"})
	default:
		return n.out(sid, s, notFoundMsg)
	}
}

func (n *node) body(sid, body []byte) error {
	s := n.sessions[string(sid)]
	if s == nil || s.remaining == 0 {
		return nil // a body nobody waits for (e.g. GET with a body)
	}
	switch {
	case len(body) == 0:
		if s.remaining > 0 {
			return nil // an empty piece, not the end of a sized body
		}
	case s.remaining > 0:
		s.remaining -= int64(len(body))
		if s.remaining > 0 {
			return nil
		}
	default:
		return nil // unknown length: wait for the empty body
	}
	s.remaining = 0
	if !n.credits {
		delete(n.sessions, string(sid))
	}
	return n.out(sid, s, helloMsg)
}

// credit adds a `credit` message's allowance to the session and sends
// what waited for it. A credit for an unknown sid (ended) is dropped.
func (n *node) credit(sid, body []byte) error {
	k, ok := bbnode.ParseCredit(body)
	s := n.sessions[string(sid)]
	if !ok || s == nil {
		n.stats.dropped.Add(1)
		return nil
	}
	n.stats.credits.Add(1)
	if s.credit > 1<<62-k {
		s.credit = 1 << 62 // a proxy cannot wrap it round
	} else {
		s.credit += k
	}
	s.window = max(s.window, s.credit)
	return n.pump(sid, s)
}

// out sends m, or without the credit for it (with -credits), queues it
// behind what already waits in s, copying a body that aliases the
// receive batch. Without -credits s may be nil.
func (n *node) out(sid []byte, s *session, m outMsg) error {
	if !n.credits {
		return n.send(sid, m.typ, m.body)
	}
	if s.head == len(s.queue) {
		done, err := n.try(sid, s, &m)
		if done || err != nil {
			return err
		}
	}
	n.stats.waits.Add(1)
	if s.queued+len(m.body) > maxQueued {
		// A client that does not read what it asked for: end it rather
		// than grow without a bound.
		n.stats.overflows.Add(1)
		delete(n.sessions, string(sid))
		return n.send(sid, "end", nil)
	}
	if m.alias {
		m.body, m.alias = bytes.Clone(m.body), false
	}
	s.queue = append(s.queue, m)
	s.queued += len(m.body)
	return nil
}

// pump sends what waits in s, in order, as far as its credit goes.
func (n *node) pump(sid []byte, s *session) error {
	for s.head < len(s.queue) {
		m := &s.queue[s.head]
		before := len(m.body)
		done, err := n.try(sid, s, m)
		if done {
			s.queued -= before
			s.queue[s.head] = outMsg{}
			s.head++
		} else {
			s.queued -= before - len(m.body)
		}
		if err != nil || !done {
			return err
		}
	}
	s.queue, s.head = s.queue[:0], 0
	return nil
}

// try sends as much of m as s's credit allows and reports whether all of
// it went; m keeps the rest. A message that costs nothing always goes; a
// body or chunk goes in pieces; any other message goes whole, or when it
// is larger than the window, alone once the whole window is back (the
// one overdraft, bounded by that message).
func (n *node) try(sid []byte, s *session, m *outMsg) (done bool, err error) {
	switch {
	case m.cost == 0 || m.cost <= s.credit:
	case m.split && s.credit > 0:
		k := s.credit
		if err := n.send(sid, m.typ, m.body[:k]); err != nil {
			return false, err
		}
		m.body, m.cost, s.credit = m.body[k:], m.cost-k, 0
		return false, nil
	case !m.split && s.window > 0 && s.credit >= s.window && m.cost > s.window:
	default:
		return false, nil
	}
	if err := n.send(sid, m.typ, m.body); err != nil {
		return false, err
	}
	s.credit -= m.cost
	return true, nil
}
