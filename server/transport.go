package server

import (
	"net"
	"net/netip"
)

// transport is how a connection reaches its client: the bytes read and
// not yet consumed, and the output. A plain connection's transport is the
// gnet.Conn itself; a TLS connection's is tlsTransport, which decrypts
// into a buffer of its own and encrypts on write, over the gnet.Conn.
// Every method runs on the connection's loop; slices from Peek are valid
// until the next Discard or the end of the loop callback.
type transport interface {
	// Peek returns n buffered bytes (-1: all of them).
	Peek(n int) ([]byte, error)
	// Discard consumes n buffered bytes.
	Discard(n int) (int, error)
	// InboundBuffered is how many bytes Peek can return.
	InboundBuffered() int
	// Writev queues bs for the client, in order.
	Writev(bs [][]byte) (int, error)
	// OutboundBuffered is the output not yet written to the socket.
	OutboundBuffered() int
	// PauseRead and ResumeRead stop and restart reading from the socket.
	PauseRead() error
	ResumeRead() error
	// Close closes the connection (the handler's OnClose follows).
	Close() error
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
	// RemoteAddrPort is the client's address as a value (nothing is
	// allocated); the zero AddrPort for a unix-socket client.
	RemoteAddrPort() netip.AddrPort
}
