package node

import (
	"encoding/binary"
	"math"

	"github.com/blastbeat/blastbeat/protocol"
)

// Credits are BlastBeat's opt-in per-session flow control (PROTOCOL.md,
// "Flow control"): a node that lists the feature token CreditsFeature in
// its `pong` gets `[sid, "credit", "<N>"]` messages, each allowing N more
// response body bytes on that session. The first follows each request
// head and grants the proxy's window; later ones return what the client
// has drained. A node that sends no more than it was granted never makes
// the proxy buffer more than the window for one session.

// CreditsFeature is the token a node lists in its `pong` body to say that
// it speaks credits.
const CreditsFeature = "credits"

// maxCreditDigits bounds a `credit` body: 18 digits always fit an int64.
const maxCreditDigits = 18

// allowance is one session's credit, kept between its request head and
// its `end`.
type allowance struct {
	// left is the number of body bytes the node may still send; negative
	// after an overdraft (Send of more than was granted).
	left int64
	// window is the largest allowance since the head: the proxy's window,
	// reached again only when the client has drained everything.
	window int64
	// sock is the socket of the session's proxy (forgetSocket).
	sock int
}

// EnableCredits makes the node speak credits: from now on Recv answers
// `ping` with the pong body "credits", tracks every session's allowance
// and returns `credit` messages; Send charges body bytes against it and
// SendBody never exceeds it. Call it before the first Recv: a proxy
// learns a node's features from its pongs, and a node it took for a
// legacy one gets no credit for sessions it already routed to it.
// A proxy that predates credits ignores the token and never grants
// credit, so SendBody there sends nothing: enable credits only towards
// proxies that speak them. Not safe for concurrent use, like the Node.
func (n *Node) EnableCredits() {
	if n.credits == nil {
		n.credits = make(map[string]*allowance)
	}
}

// CreditsEnabled reports whether EnableCredits was called.
func (n *Node) CreditsEnabled() bool { return n.credits != nil }

// Credit returns how many more response body bytes sid may send: the
// sum of its `credit` messages since its last request head, less what
// was sent since; negative after an overdraft, 0 for a sid the node does
// not know (no head yet, or after `end`), and math.MaxInt64 when credits
// are not enabled (nothing limits the node).
func (n *Node) Credit(sid []byte) int64 {
	if n.credits == nil {
		return math.MaxInt64
	}
	if a := n.credits[string(sid)]; a != nil {
		return a.left
	}
	return 0
}

// track applies a message from the proxy on socket from to the
// allowances: a request head starts the session at zero (what an earlier
// response of the sid left is void), `credit` adds to it, `end` forgets
// it. A `credit` for a sid without a head is ignored, so the map only
// holds live sessions.
func (n *Node) track(m Message, from int) error {
	switch m.Type {
	case "uwsgi", "headers":
		if a := n.credits[string(m.SID)]; a != nil {
			*a = allowance{sock: from}
		} else {
			n.credits[string(m.SID)] = &allowance{sock: from}
		}
	case "credit":
		k, ok := ParseCredit(m.Body)
		if !ok {
			return ErrBadCredit
		}
		if a := n.credits[string(m.SID)]; a != nil {
			a.left = addSaturated(a.left, k)
			a.window = max(a.window, a.left)
		}
	case "end":
		delete(n.credits, string(m.SID))
	}
	return nil
}

// charge takes what a message to the proxy costs off its session's
// allowance; the node's own `end` forgets the session.
func (n *Node) charge(sid []byte, typ string, body []byte) {
	if typ == "end" {
		delete(n.credits, string(sid))
		return
	}
	if c := Cost(typ, body); c > 0 {
		if a := n.credits[string(sid)]; a != nil {
			a.left -= c
		}
	}
}

// forgetCredit drops sid's allowance: Serve's session of it is over,
// and the next request of the sid starts a new one (its head).
func (n *Node) forgetCredit(sid []byte) {
	delete(n.credits, string(sid))
}

// forgetSocket drops what the Node keeps for the sessions of socket i,
// whose proxy is gone (ServeConfig.ProxyTimeout): their allowances and
// routes. It scans them all: a proxy goes rarely.
func (n *Node) forgetSocket(i int) {
	for sid, a := range n.credits {
		if a.sock == i {
			delete(n.credits, sid)
		}
	}
	if n.routes != nil {
		n.routes.removeSocket(i)
	}
}

// SendBody sends a `body`, `chunk`, `websocket` or `websocket-binary`
// message of sid within its allowance and returns how many bytes of body
// went out. An empty message costs nothing and always goes (an empty
// chunk ends a chunked response). `body` and `chunk` are split: what fits
// goes now. A WebSocket message is one frame and goes whole or not at all:
// it goes when it fits, or when more than half of the proxy's window is
// left (the proxy grants more only once half the window is spent, so a
// message that does not fit then would wait forever), the only overdraft
// SendBody makes, bounded by that one message. When sent < len(body) the error is
// ErrNoCredit: send body[sent:] after the sid's next `credit` message,
// which Recv returns. Without EnableCredits it is Send. Other types give
// ErrNotBody.
func (n *Node) SendBody(sid []byte, typ string, body []byte) (sent int, err error) {
	divisible := false
	switch typ {
	case "body", "chunk":
		divisible = true
	case "websocket", "websocket-binary":
	default:
		return 0, ErrNotBody
	}
	k := len(body)
	if n.credits != nil {
		var a allowance
		if p := n.credits[string(sid)]; p != nil {
			a = *p
		}
		if k > 0 && int64(k) > a.left {
			switch {
			case divisible && a.left > 0:
				k = int(a.left)
			case !divisible && a.window > 0 && 2*a.left > a.window:
				// more than half the window left: no grant comes before
				// this goes (PROTOCOL.md credits, rule 5: an overdraft)
			default:
				return 0, ErrNoCredit
			}
		}
	}
	if err := n.Send(sid, typ, body[:k]); err != nil {
		return 0, err
	}
	if k < len(body) {
		return k, ErrNoCredit
	}
	return k, nil
}

// Cost returns how many credit bytes a message from a node costs
// (PROTOCOL.md, "Flow control"): the whole body of `body`, `chunk`,
// `websocket` and `websocket-binary`; the bytes after the head of a
// `headers` message (where the proxy's own parser ends the head) or after
// the packet of a `uwsgi` one; nothing for any other type.
func Cost(typ string, body []byte) int64 {
	switch typ {
	case "body", "chunk", "websocket", "websocket-binary":
		return int64(len(body))
	case "headers":
		if _, n, err := protocol.ParseResponseHead(body); err == nil {
			return int64(len(body) - n)
		}
	case "uwsgi":
		if len(body) >= 4 {
			if end := 4 + int(binary.LittleEndian.Uint16(body[1:3])); end < len(body) {
				return int64(len(body) - end)
			}
		}
	}
	return 0
}

// ParseCredit parses the body of a `credit` message: a positive decimal
// ASCII integer, digits only, at most 18 of them.
func ParseCredit(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > maxCreditDigits {
		return 0, false
	}
	var k int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		k = k*10 + int64(c-'0')
	}
	return k, k > 0
}

// addSaturated is a+b, capped at math.MaxInt64 (b > 0): a proxy cannot
// wrap an allowance round to a negative one.
func addSaturated(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
