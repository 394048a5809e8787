package tlsmem

import (
	"errors"
	"net"
)

// Error is a condition this package detects itself, with a stable metric
// name under which the caller counts it. Sentinels are compared by identity.
type Error struct {
	Msg    string // short reason
	Metric string // stable counter name
}

func (e *Error) Error() string { return "tlsmem: " + e.Msg }

var (
	// ErrHandshaking is returned by Write and Writev before the handshake
	// has completed. It is a caller bug: a server has nothing to say before
	// the client has spoken over an established connection.
	ErrHandshaking = &Error{"write before the handshake completed", "tls_write_early"}

	// ErrClientHelloTooLarge ends a handshake whose ClientHello is longer
	// than Options.MaxClientHello (wrapped in a HandshakeError).
	ErrClientHelloTooLarge = &Error{"ClientHello longer than the limit", "tls_client_hello_too_large"}
)

// HandshakeError wraps the error that ended a failed handshake (a bad
// ClientHello, no common version or cipher, a bad certificate, an alert from
// the client, …). Read returns it, every time, once the handshake has
// failed; the caller closes the connection and counts it under Metric.
// errors.As reaches crypto/tls's own types through Unwrap (for example
// tls.RecordHeaderError when the client did not speak TLS at all).
type HandshakeError struct {
	Err error
}

// Metric is the stable counter name for failed handshakes.
func (*HandshakeError) Metric() string { return "tls_handshake_failed" }

func (e *HandshakeError) Error() string { return "tlsmem: handshake: " + e.Err.Error() }
func (e *HandshakeError) Unwrap() error { return e.Err }

// wouldBlock is what the transport's Read returns after the handshake when
// no ciphertext is buffered. crypto/tls leaves its record state untouched
// when a read fails with a net.Error whose Temporary() is true
// (readRecordOrCCS, crypto/tls/conn.go, Go 1.26: "if e, ok :=
// err.(net.Error); !ok || !e.Temporary() { c.in.setErrorLocked(err) }",
// both around the header read and the body read), and a record half read
// stays in its rawInput buffer (bytes.Buffer.ReadFrom keeps what it got
// before the error). Timeout() is true as well so that anything treating it
// as a deadline does the right thing; crypto/tls itself only looks at
// Temporary().
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "tlsmem: no ciphertext buffered" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

var errWouldBlock net.Error = wouldBlock{}

// isWouldBlock reports whether err is errWouldBlock. crypto/tls hands it
// up unchanged (readFromUntil and Read return the transport's error as is);
// errors.Is also covers a wrapped one and does not allocate.
func isWouldBlock(err error) bool { return errors.Is(err, errWouldBlock) }
