package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

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

// Node is a node's connection to its proxies: one DEALER socket per
// endpoint given to Dial, each with the node's identity. It is owned by
// one goroutine: no method is safe for concurrent use.
type Node struct {
	// Immutable after Dial.

	// socks holds one DEALER per endpoint, in Dial's order.
	socks []*zmq.Socket
	// poller watches socks for Recv; nil with a single socket, which Recv
	// reads directly.
	poller *zmq.Poller

	// Owned by the goroutine that uses the Node.

	// next is the socket Recv tries first, so that a busy proxy cannot
	// starve the others.
	next int
	// routes maps each session to the socket its messages came from; nil
	// with a single socket, where every message goes to that one.
	routes *routes
	// credits holds each session's allowance, by sid, from its request
	// head to its `end`; nil until EnableCredits.
	credits map[string]*allowance
	// instance is a random token that tells this process from another
	// that would use the same identity (its pongs carry it).
	instance string
	// draining: the pongs say DrainingFeature (SetDraining).
	draining bool
	// recvd counts the messages received on each socket, pings included:
	// Serve tells a silent proxy by it (ServeConfig.ProxyTimeout).
	recvd []uint64
	// sent counts the messages each socket took (Send): Serve tells a
	// session that moved on from one that did not by it.
	sent []uint64
	// pongsDropped counts, by socket, the pongs Serve's receive dropped
	// because the socket took nothing at once (recv).
	pongsDropped []uint64
}

// newNode returns a Node with its instance token.
func newNode() *Node {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Node{instance: hex.EncodeToString(b[:])}
}

// PongBody is the body of this node's pongs (PROTOCOL.md): "credits"
// after EnableCredits, and "instance=TOKEN", a token of this process that
// lets the proxy log two processes sharing one node name.
func (n *Node) PongBody() []byte {
	b := make([]byte, 0, 50)
	if n.credits != nil {
		b = append(b, CreditsFeature+" "...)
	}
	if n.draining {
		b = append(b, DrainingFeature+" "...)
	}
	return append(append(b, "instance="...), n.instance...)
}

// DrainingFeature is the token a stopping node lists in its pongs: it
// finishes its sessions but should get no new ones (PROTOCOL.md, pong).
const DrainingFeature = "draining"

// SetDraining makes every later pong say DrainingFeature: the proxy then
// routes new sessions to the virtual host's other live nodes.
func (n *Node) SetDraining() { n.draining = true }

// Dial connects to BlastBeat with the given identity (the node name that
// virtual hosts list): one DEALER socket per endpoint, each endpoint
// naming a different proxy (see "Several proxies" in the package doc).
// An endpoint given twice is an error: both sockets would reach one
// proxy under one name. With no endpoint the node has one socket that
// connects nowhere (connect it through Socket).
func Dial(identity string, endpoints ...string) (*Node, error) {
	for i, ep := range endpoints {
		if slices.Contains(endpoints[:i], ep) {
			return nil, fmt.Errorf("node: endpoint %s given twice", ep)
		}
	}
	n := newNode()
	for i := range max(len(endpoints), 1) {
		sock, err := zmq.NewSocket(zmq.DEALER)
		if err != nil {
			n.Close()
			return nil, err
		}
		n.socks = append(n.socks, sock)
		if err := errors.Join(sock.SetIdentity(identity), sock.SetLinger(0)); err != nil {
			n.Close()
			return nil, err
		}
		if i < len(endpoints) {
			if err := sock.Connect(endpoints[i]); err != nil {
				n.Close()
				return nil, fmt.Errorf("node: connect %s: %w", endpoints[i], err)
			}
		}
	}
	n.ready()
	return n, nil
}

// ready completes a Node once its sockets are connected: the poller and
// the table of routes of several sockets, the counts of received messages.
func (n *Node) ready() {
	n.recvd = make([]uint64, len(n.socks))
	n.sent = make([]uint64, len(n.socks))
	n.pongsDropped = make([]uint64, len(n.socks))
	if len(n.socks) > 1 {
		n.poller = zmq.NewPoller()
		for _, sock := range n.socks {
			n.poller.Add(sock, zmq.POLLIN)
		}
		n.routes = newRoutes(DefaultMaxSessions)
	}
}

// Close closes every socket.
func (n *Node) Close() error {
	var errs []error
	for _, sock := range n.socks {
		errs = append(errs, sock.Close())
	}
	return errors.Join(errs...)
}

// Socket returns the first endpoint's DEALER, e.g. for a zmq.Poller or to
// set an option. With one endpoint it is the node's only socket, and a
// caller may receive on it directly and then Send. With several,
// receive through Recv (Send only knows sessions Recv has seen) and set
// options on every socket (Sockets, SetRecvTimeout, SetSendTimeout).
func (n *Node) Socket() *zmq.Socket { return n.socks[0] }

// Sockets returns the DEALERs, one per endpoint in Dial's order (a new
// slice; the sockets stay the Node's).
func (n *Node) Sockets() []*zmq.Socket { return slices.Clone(n.socks) }

// SetRecvTimeout sets ZMQ_RCVTIMEO on every socket: Recv then gives up
// after d with zmq's EAGAIN (a negative d waits for ever, the default).
func (n *Node) SetRecvTimeout(d time.Duration) error {
	var errs []error
	for _, sock := range n.socks {
		errs = append(errs, sock.SetRcvtimeo(d))
	}
	return errors.Join(errs...)
}

// SetSendTimeout sets ZMQ_SNDTIMEO on every socket: a Send to a proxy
// that does not take the message within d fails with zmq's EAGAIN (a
// negative d waits for ever, the default).
func (n *Node) SetSendTimeout(d time.Duration) error {
	var errs []error
	for _, sock := range n.socks {
		errs = append(errs, sock.SetSndtimeo(d))
	}
	return errors.Join(errs...)
}

// Recv waits for the next message from any proxy, for at most the
// receive timeout of Socket() (zmq's EAGAIN after it; SetRecvTimeout sets
// it). With several proxies it takes from each in turn, so that a busy
// one does not starve the others. Pings are answered, on the socket they
// came from, and skipped: with an empty pong, or with the pong body
// "credits" after EnableCredits. With credits enabled it also keeps the
// allowances (Credit) and returns `credit` messages, so that a caller
// waiting to send can go on; a malformed one comes with ErrBadCredit.
// ErrBadMessage and ErrBadCredit concern one message only.
func (n *Node) Recv() (Message, error) {
	m, _, err := n.recv(false)
	return m, err
}

// recv is Recv that also says which socket the message came from. With
// dropPongs (Serve's receive, whose loop never waits on a socket) a pong
// goes only if its socket takes it at once, else it is dropped and
// counted (pongsDropped): the proxy pings again. Without, a pong that
// fails fails recv, as Recv documents.
func (n *Node) recv(dropPongs bool) (Message, int, error) {
	for {
		parts, from, err := n.recvParts()
		if err != nil {
			return Message{}, from, err
		}
		n.recvd[from]++
		if len(parts) != 3 {
			return Message{}, from, ErrBadMessage
		}
		m := Message{SID: parts[0], Type: string(parts[1]), Body: parts[2]}
		if m.Type == "ping" {
			if err := n.pong(from, m.SID, dropPongs); err != nil {
				return Message{}, from, err
			}
			continue
		}
		if n.routes != nil {
			if m.Type == "end" {
				n.routes.remove(m.SID)
			} else {
				n.routes.put(m.SID, from)
			}
		}
		if n.credits != nil {
			return m, from, n.track(m, from)
		}
		return m, from, nil
	}
}

// pong answers a ping on socket i. With dropIfFull it does not wait: a
// pong the socket does not take at once is dropped and counted.
func (n *Node) pong(i int, sid []byte, dropIfFull bool) error {
	if !dropIfFull {
		_, err := n.socks[i].SendMessage(sid, "pong", n.PongBody())
		return err
	}
	_, err := n.socks[i].SendMessageDontwait(sid, "pong", n.PongBody())
	if isAgain(err) {
		n.pongsDropped[i]++
		return nil
	}
	return err
}

// errAgain is what a receive that timed out returns, as zmq's own, and
// what a send returns that the socket did not take in time (its pipe to
// the proxy holds its high-water mark of messages).
var errAgain = zmq.Errno(syscall.EAGAIN)

// isAgain reports whether err is zmq's EAGAIN.
func isAgain(err error) bool {
	return err != nil && zmq.AsErrno(err) == errAgain
}

// recvParts receives one message and says which socket it came from.
// With one socket it blocks in libzmq under the socket's receive
// timeout; with several it tries each without waiting, starting after
// the last that gave one, then polls them all until the first socket's
// receive timeout has passed in total.
func (n *Node) recvParts() (parts [][]byte, from int, err error) {
	if n.poller == nil {
		parts, err = n.socks[0].RecvMessageBytes(0)
		return parts, 0, err
	}
	wait, err := n.socks[0].GetRcvtimeo()
	if err != nil {
		return nil, 0, err
	}
	deadline := time.Now().Add(wait)
	for {
		for k := range n.socks {
			i := (n.next + k) % len(n.socks)
			parts, err := n.socks[i].RecvMessageBytes(zmq.DONTWAIT)
			if err == nil {
				n.next = (i + 1) % len(n.socks)
				return parts, i, nil
			}
			if zmq.AsErrno(err) != errAgain {
				return nil, i, err
			}
		}
		if wait >= 0 {
			if wait = time.Until(deadline); wait <= 0 {
				return nil, 0, errAgain
			}
			// zmq_poll counts whole milliseconds: round up, not down to
			// a busy 0.
			wait = (wait + time.Millisecond - 1).Truncate(time.Millisecond)
		}
		if _, err := n.poller.Poll(wait); err != nil {
			return nil, 0, err
		}
	}
}

// Send sends one message as it is, on the socket that sid's messages
// came from.
//
// With one endpoint every message goes to its one socket, whatever the
// sid. With several, the Node keeps a table from sid to socket: Recv
// enters every session it returns a message of, and forgets it at the
// proxy's `end`; the node's own `end` forgets it too, once sent. Send of
// a sid not in the table (never received, or already ended) fails with
// ErrUnknownSession and sends nothing: no proxy would know the session.
// The table holds one entry (some 64 bytes) per open session. A proxy
// that dies, or drops an `end` it could not deliver, leaves entries no
// `end` will remove; so that they cannot pile up, the table is bounded by
// DefaultMaxSessions (SetMaxSessions) in two generations: when the newer
// one reaches half the bound it becomes the older, and the entries of
// the older one that no message (either way) touched since it was the
// newer are dropped. Only a session idle in both directions while half
// the bound of new sessions opened and stayed open can be forgotten that
// way; RoutedSessions says how full the table is.
//
// With credits enabled it charges the message's Cost to the session,
// even beyond its allowance (Credit goes negative; SendBody is the send
// that keeps within it), and the node's own `end` forgets the session.
func (n *Node) Send(sid []byte, typ string, body []byte) error {
	from, ok := n.route(sid)
	if !ok {
		return ErrUnknownSession
	}
	if _, err := n.socks[from].SendMessage(sid, typ, body); err != nil {
		return err
	}
	n.sent[from]++
	if n.routes != nil && typ == "end" {
		n.routes.remove(sid)
	}
	if n.credits != nil {
		n.charge(sid, typ, body)
	}
	return nil
}

// route returns the socket that Send puts sid's messages on (a use of
// its entry in the table, as Send); false when Send would fail with
// ErrUnknownSession.
func (n *Node) route(sid []byte) (int, bool) {
	if n.routes == nil {
		return 0, true
	}
	return n.routes.get(sid)
}

// RoutedSessions returns how many sessions Send's table holds (see
// Send); always 0 with a single endpoint, which needs no table.
func (n *Node) RoutedSessions() int {
	if n.routes == nil {
		return 0
	}
	return n.routes.len()
}

// SetMaxSessions bounds Send's table of sessions to limit entries (at
// least 2; DefaultMaxSessions until called); see Send. It has no effect
// with a single endpoint.
func (n *Node) SetMaxSessions(limit int) {
	if n.routes != nil {
		n.routes.setMax(limit)
	}
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
