package server

import "github.com/blastbeat/blastbeat/zmqbridge"

// ringSender is what the event loops need of the bridge: the two calls
// that put a message for a node on the loops→bridge ring. *zmqbridge.Bridge
// satisfies it; tests substitute a fake that records messages and can
// refuse them (a full ring, a stuck node). Both methods must be safe from
// any goroutine, as the bridge's are.
type ringSender interface {
	// TrySend queues m for its node without waiting; false: the ring or
	// the node is full, and the caller keeps m (see zmqbridge.TrySend).
	TrySend(m *zmqbridge.Msg) bool
	// TrySendDeferred is TrySend without waking the bridge; Kick wakes
	// it for what was queued so (an event loop, at the end of its turn).
	TrySendDeferred(m *zmqbridge.Msg) bool
	Kick()
	// NodeFull reports whether TrySend refuses messages for node n now.
	NodeFull(n int) bool
	// WantRoomFor asks for Room once a message for node n may go: once
	// n takes messages again when it is full, else once the ring it goes
	// through has room; called after the waiter is recorded.
	WantRoomFor(n int)
}

var _ ringSender = (*zmqbridge.Bridge)(nil)
