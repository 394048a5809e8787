// Package node is a small Go library for writing BlastBeat backend nodes:
// it connects a ZeroMQ DEALER with the node's identity to one or more
// BlastBeat instances and speaks PROTOCOL.md's [sid, type, body] messages.
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

// Message is one message from the proxy.
type Message struct {
	SID  []byte // opaque session id; empty for ping
	Type string // uwsgi, headers, body, websocket, websocket-binary, end, ping
	Body []byte
}

// Node is a DEALER socket connected to BlastBeat.
type Node struct {
	sock *zmq.Socket
}

// ErrBadMessage is returned by Recv for a message without three frames.
var ErrBadMessage = errors.New("node: message without 3 frames")

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

// Recv waits for the next message. Pings are answered and skipped.
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
			if err := n.Send(m.SID, "pong", nil); err != nil {
				return Message{}, err
			}
			continue
		}
		return m, nil
	}
}

// Send sends one message.
func (n *Node) Send(sid []byte, typ string, body []byte) error {
	_, err := n.sock.SendMessage(sid, typ, body)
	return err
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
