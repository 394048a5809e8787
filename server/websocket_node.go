package server

import (
	"bytes"

	"github.com/blastbeat/blastbeat/protocol"
)

// The node-decided WebSocket handshake (a vhost's websocket-handshake =
// node): the handshake's environ goes to the node as for the automatic
// one, but the proxy waits for the node's response head. A 101 accepts
// (the proxy writes the 101 with Sec-WebSocket-Accept itself, naming the
// subprotocol the node chose); any other final status is sent to the
// client as an ordinary response, and the connection stays HTTP.

// wsPending is what a handshake awaiting its node keeps of the request.
type wsPending struct {
	key     []byte
	offered []byte // the client's Sec-WebSocket-Protocol list
}

func newWSPending(w protocol.WebSocketRequest) *wsPending {
	return &wsPending{key: bytes.Clone(w.Key), offered: bytes.Clone(w.Protocols)}
}

// nodeAcceptedWebSocket completes a handshake the node answered with
// head (a 101).
func (c *conn) nodeAcceptedWebSocket(head []byte) {
	w := c.wsAwait
	c.wsAwait = nil
	proto, ok := w.subprotocol(head)
	if !ok {
		c.badResponse()
		return
	}
	c.startWebSocket(protocol.WebSocketRequest{Key: w.key}, proto)
	if c.t.InboundBuffered() > 0 {
		// Frames the client sent before the 101 (read, and left unparsed
		// while the handshake waited): parsed now, not at its next packet.
		c.l.resume = append(c.l.resume, c)
	}
}

// subprotocol is the one the node's 101 head names ("" for none); ok is
// false when the client did not offer it (RFC 6455 §4.1).
func (w *wsPending) subprotocol(head []byte) (proto string, ok bool) {
	proto = string(protocol.HeadField(head, "sec-websocket-protocol"))
	return proto, proto == "" || protocol.ChooseSubprotocol(w.offered, []string{proto}) != ""
}
