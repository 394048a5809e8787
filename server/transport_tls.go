package server

import (
	"crypto/tls"
	"io"

	"github.com/panjf2000/gnet/v2"

	"github.com/blastbeat/blastbeat/internal/tlsmem"
)

// tlsTransport is a TLS connection's transport: the ciphertext gnet reads
// is fed to crypto/tls (through tlsmem, on the loop once the handshake is
// done), the plaintext waits here for the protocol machine, and what the
// machine writes is encrypted into gnet's output. The handshake runs on a
// goroutine of tlsmem's, which ends with it: an idle TLS connection holds
// no goroutine. Owned by the connection's loop.
type tlsTransport struct {
	gnet.Conn // output, pausing, addresses: the socket's
	tc        *tlsmem.Conn
	l         *loop

	// in is the plaintext not yet consumed: during one OnTraffic it may
	// be the loop's scratch buffer; settle copies what is left of it.
	in        []byte
	inScratch bool  // in is (part of) the loop's scratch buffer
	open      bool  // the handshake completed
	failed    bool  // the handshake's failure was counted (TLSFailures)
	counted   bool  // holds one of the loop's handshake slots
	queued    bool  // waits for one (loop.hsWait), unread
	slotAt    int64 // when it got its slot (counted)
	busy      int   // inside a tlsmem call (re-entrant Close waits)
	closeIn   bool  // Close was asked while busy
	abort     bool  // close without close_notify (conn.cutShort)
}

// newTLSTransport: maxHello is max-client-hello (0: tlsmem's default).
func newTLSTransport(gc gnet.Conn, l *loop, cfg *tls.Config, maxHello int) *tlsTransport {
	t := &tlsTransport{Conn: gc, l: l}
	t.tc = tlsmem.Server(cfg, tlsmem.Options{
		Out: func(b [][]byte) error {
			_, err := gc.Writev(b)
			return err
		},
		Wake:           func() { _ = gc.Wake(nil) }, // OnTraffic runs the pump
		LocalAddr:      gc.LocalAddr(),
		RemoteAddr:     gc.RemoteAddr(),
		MaxClientHello: maxHello,
	})
	return t
}

// pump feeds what gnet read to crypto/tls and takes out the plaintext.
// It reports whether the handshake completed during this call; an error
// is final (a failed handshake, a bad record, close_notify: io.EOF).
func (t *tlsTransport) pump() (opened bool, err error) {
	t.busy++
	defer t.unbusy()
	if len(t.in) == 0 {
		t.in, t.inScratch = t.l.tlsScratch[:0], true
	}
	for {
		buf, _ := t.Conn.Peek(-1)
		n, ferr := t.tc.Feed(buf)
		if n > 0 {
			_, _ = t.Conn.Discard(n) // never 0: gnet's Discard(0) drops everything
		}
		t.in, err = t.tc.Read(t.in)
		if t.inScratch && cap(t.in) > cap(t.l.tlsScratch) {
			t.l.tlsScratch = t.in[:0] // keep the grown scratch for the loop
		}
		if err == nil {
			err = ferr
		}
		if err != nil {
			// The handshake may have completed in this very pump (a
			// client's first records and close_notify in one read).
			if !t.open && t.tc.State() == tlsmem.StateOpen {
				t.open, opened = true, true
			}
			return opened, err
		}
		if n == 0 || n == len(buf) {
			break
		}
	}
	if !t.open && t.tc.State() == tlsmem.StateOpen {
		t.open = true
		return true, nil
	}
	return false, nil
}

// settle ends an OnTraffic: plaintext left unconsumed in the loop's
// scratch buffer is copied out of it; none keeps no buffer.
func (t *tlsTransport) settle() {
	switch {
	case len(t.in) == 0:
		t.in = nil
	case t.inScratch:
		t.in = append([]byte(nil), t.in...)
	}
	t.inScratch = false
}

func (t *tlsTransport) unbusy() {
	t.busy--
	if t.busy == 0 && t.closeIn {
		t.closeIn = false
		t.closeTLS()
	}
}

// Peek returns n plaintext bytes (-1: all).
func (t *tlsTransport) Peek(n int) ([]byte, error) {
	if n < 0 || n >= len(t.in) {
		if n > len(t.in) {
			return t.in, io.ErrShortBuffer
		}
		return t.in, nil
	}
	return t.in[:n], nil
}

// Discard consumes n plaintext bytes (n < 0: all of them; the conn never
// asks for 0, which gnet reads as all).
func (t *tlsTransport) Discard(n int) (int, error) {
	if n < 0 || n > len(t.in) {
		n = len(t.in)
	}
	t.in = t.in[n:]
	return n, nil
}

// InboundBuffered is the plaintext waiting.
func (t *tlsTransport) InboundBuffered() int { return len(t.in) }

// Writev encrypts bs into gnet's output.
func (t *tlsTransport) Writev(bs [][]byte) (int, error) {
	t.busy++
	defer t.unbusy()
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	if !t.open {
		return 0, tlsmem.ErrHandshaking
	}
	return n, t.tc.Writev(bs)
}

// Close sends close_notify when it can, then closes the socket.
func (t *tlsTransport) Close() error {
	t.closeTLS()
	return t.Conn.Close()
}

// closeTLS ends the TLS side: close_notify, or the handshake goroutine.
// From inside a tlsmem call (gnet closes a connection synchronously when
// a write fails) it waits until that call returns.
func (t *tlsTransport) closeTLS() {
	if t.busy > 0 {
		t.closeIn = true
		return
	}
	if t.abort {
		t.tc.Abort()
		return
	}
	t.tc.Close()
}

// tlsState is what the environ and the logs need of the session.
func (t *tlsTransport) state() tls.ConnectionState { return t.tc.ConnectionState() }
