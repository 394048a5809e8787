package node

import "errors"

// Errors of one message. None of them is fatal: the Node stays usable and
// the caller may go on receiving and sending.
var (
	// ErrBadMessage is returned by Recv for a message without three
	// frames; the message is dropped.
	ErrBadMessage = errors.New("node: message without 3 frames")

	// ErrBadCredit is returned by Recv, with the message, for a `credit`
	// whose body is not a positive decimal integer; the allowance is
	// left as it was.
	ErrBadCredit = errors.New("node: credit body is not a positive decimal")

	// ErrNoCredit is returned by SendBody when the session's allowance
	// did not cover the message: the bytes it did not send wait for the
	// next `credit` message of that sid (Recv returns it).
	ErrNoCredit = errors.New("node: not enough credit")

	// ErrNotBody is returned by SendBody for a message type that carries
	// no body (heads, end, retry): send those with Send.
	ErrNotBody = errors.New("node: SendBody of a message type without a body")

	// ErrUnknownSession is returned by Send and SendBody of a node with
	// several endpoints for a sid it cannot route: no message of it came
	// through Recv, or it ended (an `end` either way) or was dropped from
	// the table (see Send). Nothing was sent: no proxy would know it.
	ErrUnknownSession = errors.New("node: session not known to any proxy")

	// ErrCloseCode is returned by WebSocket.CloseWith for a close code a
	// peer may not send or a reason that is not at most 123 bytes of
	// UTF-8.
	ErrCloseCode = errors.New("node: invalid WebSocket close code or reason")
)
