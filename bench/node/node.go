package main

import (
	"bytes"
	"sync/atomic"
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

const (
	streamChunkSize  = 1024 // bytes in each `chunk` of /stream
	streamChunkCount = 16   // chunks before the final empty one
)

// sender sends one 3-frame message [sid, typ, body] to the proxy.
type sender func(sid []byte, typ string, body []byte) error

// session is the per-sid state the node keeps between messages.
type session struct {
	// remaining is the number of request body bytes still awaited for
	// /post, or -1 when the length is unknown (the body ends with an
	// empty `body` message).
	remaining int64
}

// stats counts what the node saw; printed at exit from the signal
// goroutine, hence atomic (uncontended: one writer).
type stats struct {
	requests, bodies, wsMessages, pings, ends, dropped atomic.Uint64
}

// node is the bench backend's state machine. It is driven by one receive
// loop and is not safe for concurrent use.
type node struct {
	send     sender
	sessions map[string]session
	stats    stats
}

func newNode(send sender) *node {
	return &node{send: send, sessions: make(map[string]session)}
}

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
		return n.send(sid, "pong", nil)
	case "uwsgi":
		n.stats.requests.Add(1)
		return n.request(sid, body)
	case "body":
		n.stats.bodies.Add(1)
		return n.body(sid, body)
	case "websocket", "websocket-binary":
		n.stats.wsMessages.Add(1)
		return n.send(sid, string(typ), body)
	case "end":
		n.stats.ends.Add(1)
		delete(n.sessions, string(sid))
	default:
		n.stats.dropped.Add(1)
	}
	return nil
}

func (n *node) request(sid, pkt []byte) error {
	req, err := parseRequest(pkt)
	if err != nil {
		return n.send(sid, "headers", badResponse)
	}
	if req.websocket {
		// The proxy completes the handshake itself; the node only sees
		// the session's messages from now on.
		return nil
	}
	switch req.path {
	case "/":
		return n.send(sid, "headers", helloResponse)
	case "/post":
		if req.contentLength == 0 {
			return n.send(sid, "headers", helloResponse)
		}
		n.sessions[string(sid)] = session{remaining: req.contentLength}
		return nil
	case "/stream":
		if err := n.send(sid, "headers", streamHead); err != nil {
			return err
		}
		for range streamChunkCount {
			if err := n.send(sid, "chunk", streamChunk); err != nil {
				return err
			}
		}
		return n.send(sid, "chunk", nil)
	default:
		return n.send(sid, "headers", notFoundResponse)
	}
}

func (n *node) body(sid, body []byte) error {
	s, ok := n.sessions[string(sid)]
	if !ok {
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
			n.sessions[string(sid)] = s
			return nil
		}
	default:
		return nil // unknown length: wait for the empty body
	}
	delete(n.sessions, string(sid))
	return n.send(sid, "headers", helloResponse)
}
