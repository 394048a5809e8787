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
// head (a 101): its subprotocol, if any, must be one the client offered.
func (c *conn) nodeAcceptedWebSocket(head []byte) {
	w := c.wsAwait
	c.wsAwait = nil
	proto := string(responseField(head, "sec-websocket-protocol"))
	if proto != "" && protocol.ChooseSubprotocol(w.offered, []string{proto}) == "" {
		c.badResponse() // a subprotocol the client did not offer (RFC 6455 §4.1)
		return
	}
	c.startWebSocket(protocol.WebSocketRequest{Key: w.key}, proto)
}

// responseField returns the value of the first field name (lower case) of
// a head ParseResponseHead accepted, trimmed; nil when absent.
func responseField(head []byte, name string) []byte {
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			i = len(head) - 1
		}
		line := bytes.TrimRight(head[:i+1], "\r\n")
		head = head[i+1:]
		c := bytes.IndexByte(line, ':')
		if c > 0 && asciiEqualFold(line[:c], name) {
			return bytes.TrimSpace(line[c+1:])
		}
	}
	return nil
}
