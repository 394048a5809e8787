// Package node is a small Go library for writing BlastBeat backend nodes:
// it connects a ZeroMQ DEALER with the node's identity to one or more
// BlastBeat instances and speaks PROTOCOL.md's [sid, type, body] messages.
//
// A node that calls EnableCredits also speaks the opt-in flow control
// (credit.go): the proxy then grants it response body bytes per session,
// and SendBody keeps within them.
//
// A Node is not safe for concurrent use: like the libzmq socket under it,
// it belongs to one goroutine.
package node

import (
	"errors"
	"fmt"

	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/protocol"
)

// Message is one message from the proxy. Its slices are the caller's:
// Recv does not reuse them.
type Message struct {
	SID  []byte // opaque session id; empty for ping
	Type string // uwsgi, headers, body, websocket, websocket-binary, end, ping; credit with EnableCredits
	Body []byte
}

// Node is a DEALER socket connected to BlastBeat. It is owned by one
// goroutine: no method is safe for concurrent use.
type Node struct {
	sock *zmq.Socket
	// credits holds each session's allowance, by sid, from its request
	// head to its `end`; nil until EnableCredits.
	credits map[string]*allowance
}

// Dial connects to every endpoint with the given identity.
func Dial(identity string, endpoints ...string) (*Node, error) {
	sock, err := zmq.NewSocket(zmq.DEALER)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(sock.SetIdentity(identity), sock.SetLinger(0)); err != nil {
		sock.Close()
		return nil, err
	}
	for _, ep := range endpoints {
		if err := sock.Connect(ep); err != nil {
			sock.Close()
			return nil, fmt.Errorf("node: connect %s: %w", ep, err)
		}
	}
	return &Node{sock: sock}, nil
}

// Close closes the socket.
func (n *Node) Close() error { return n.sock.Close() }

// Socket exposes the DEALER, e.g. for a zmq.Poller.
func (n *Node) Socket() *zmq.Socket { return n.sock }

// Recv waits for the next message (or until the socket's receive timeout,
// zmq's EAGAIN). Pings are answered and skipped: with an empty pong, or
// with the pong body "credits" after EnableCredits. With credits enabled
// it also keeps the allowances (Credit) and returns `credit` messages, so
// that a caller waiting to send can go on; a malformed one comes with
// ErrBadCredit. ErrBadMessage and ErrBadCredit concern one message only.
func (n *Node) Recv() (Message, error) {
	for {
		parts, err := n.sock.RecvMessageBytes(0)
		if err != nil {
			return Message{}, err
		}
		if len(parts) != 3 {
			return Message{}, ErrBadMessage
		}
		m := Message{SID: parts[0], Type: string(parts[1]), Body: parts[2]}
		if m.Type == "ping" {
			var pong []byte
			if n.credits != nil {
				pong = []byte(CreditsFeature)
			}
			if err := n.Send(m.SID, "pong", pong); err != nil {
				return Message{}, err
			}
			continue
		}
		if n.credits != nil {
			return m, n.track(m)
		}
		return m, nil
	}
}

// Send sends one message as it is. With credits enabled it charges the
// message's Cost to the session, even beyond its allowance (Credit goes
// negative; SendBody is the send that keeps within it), and the node's
// own `end` forgets the session.
func (n *Node) Send(sid []byte, typ string, body []byte) error {
	if _, err := n.sock.SendMessage(sid, typ, body); err != nil {
		return err
	}
	if n.credits != nil {
		n.charge(sid, typ, body)
	}
	return nil
}

// Environ decodes a uwsgi packet into a map.
func Environ(pkt []byte) (map[string]string, error) {
	env := make(map[string]string, 24)
	err := protocol.RangeUwsgi(pkt, func(k, v []byte) bool {
		env[string(k)] = string(v)
		return true
	})
	return env, err
}
