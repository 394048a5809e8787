package tlsmem

import (
	"crypto/tls"
	"io"
	"net"
	"slices"
	"sync/atomic"
)

// Limits. Each can be reached only by the peer sending or the caller writing
// that much; none is a per-connection allocation.
const (
	// DefaultMaxBuffered caps the ciphertext fed but not yet consumed;
	// Feed takes no more and leaves the rest with the caller. After the
	// handshake each Read drains what was fed, so it only sizes the
	// batches. During the handshake it bounds what a client can park
	// here: what it sends behind its Finished (a request, an upload)
	// before the goroutine has checked that Finished, or a flight the
	// goroutine has not read yet. Two of gnet's default 64 KiB reads.
	DefaultMaxBuffered = 128 << 10

	// DefaultMaxClientHello caps the ClientHello's length. crypto/tls
	// takes one of up to 64 KiB, and the buffer it gathers it in keeps
	// that size for the connection's life: a client could pin 64 KiB
	// per idle connection. Browsers' are about 2 KiB, post-quantum key
	// shares and resumption tickets included.
	DefaultMaxClientHello = 16 << 10

	// flushAt bounds the pending output: a large Write is encrypted and
	// handed to Out in batches of about this size, so the pooled output
	// buffer stays small.
	flushAt = 64 << 10

	// gatherBelow: Writev copies buffers shorter than this together into
	// one record (up to maxPlaintext), sparing a record header, nonce and
	// tag per small buffer (HTTP/1 heads, HTTP/2 frame headers). Longer
	// ones are encrypted in place.
	gatherBelow = 2 << 10

	// maxPlaintext is the largest TLS record payload (RFC 8446 §5.1).
	maxPlaintext = 16 << 10
)

// handshakeGoroutines counts handshake goroutines alive in the process.
var handshakeGoroutines atomic.Int64

// HandshakeGoroutines returns the number of handshake goroutines currently
// alive in the process, over all Conns: a gauge for metrics and leak tests.
// Safe from any goroutine.
func HandshakeGoroutines() int64 { return handshakeGoroutines.Load() }

// State is where a Conn is in its life.
type State int32

const (
	// StateNew: nothing fed yet, so no handshake goroutine either.
	StateNew State = iota
	// StateHandshake: the handshake goroutine is running.
	StateHandshake
	// StateOpen: the handshake completed; no goroutine; records are
	// decrypted and encrypted on the loop.
	StateOpen
	// StateFailed: the handshake failed; Read returns the *HandshakeError.
	StateFailed
	// StateClosed: Close was called.
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateNew:
		return "new"
	case StateHandshake:
		return "handshake"
	case StateOpen:
		return "open"
	case StateFailed:
		return "failed"
	case StateClosed:
		return "closed"
	}
	return "State(?)"
}

// Options are the per-connection hooks of Server.
type Options struct {
	// Out receives ciphertext for the socket, in order. Required. It is
	// only called from the event loop, inside Read, Write, Writev and
	// Close. bufs and the bytes they hold are valid only until Out returns
	// (they are pooled): write or copy them (gnet's Conn.Writev on the loop
	// does). An error is returned by the method that called Out.
	Out func(bufs [][]byte) error

	// Wake asks the event loop to call Read on this Conn soon (gnet:
	// Conn.Wake, which runs OnTraffic). Required. It is called from the
	// handshake goroutine, with the Conn's lock held: it must be safe from
	// any goroutine, must not block, and must not call the Conn. It is
	// called when the handshake has output to send and when the handshake
	// ends, at most once until the loop's next Read, and never after Close
	// has returned. The loop's Read may come after Close (a Wake in flight):
	// Read then returns net.ErrClosed.
	Wake func()

	// LocalAddr and RemoteAddr are what the transport reports to crypto/tls
	// (tls.ClientHelloInfo.Conn in GetCertificate/GetConfigForClient).
	// Optional.
	LocalAddr, RemoteAddr net.Addr

	// MaxBuffered caps unread ciphertext (see DefaultMaxBuffered and
	// Feed); 0 means DefaultMaxBuffered.
	MaxBuffered int

	// MaxClientHello caps the ClientHello's length (see
	// DefaultMaxClientHello), and the client's plaintext handshake
	// records together at two of them and a little more (after a
	// HelloRetryRequest the client sends a second ClientHello, which
	// crypto/tls would take up to 64 KiB of): past either, the handshake
	// fails with ErrClientHelloTooLarge. 0 means DefaultMaxClientHello.
	MaxClientHello int
}

// Conn is one TLS server connection fed by an event loop.
//
// All methods are for the event loop that owns the Conn, one at a time,
// except State (any goroutine). Config callbacks (GetCertificate,
// GetConfigForClient, VerifyPeerCertificate, session ticket hooks) run on
// the handshake goroutine.
type Conn struct {
	// Immutable after Server.
	tc  *tls.Conn
	out func([][]byte) error

	// Shared with the handshake goroutine; see transport for its lock.
	tr transport

	// State; stored under tr.mu, loaded from anywhere.
	state atomic.Int32

	// Owned by the event loop.
	vec       [1][]byte // Out's argument, reused so that a flush does not allocate
	readEnded bool      // Read saw the client's close_notify (io.EOF)
}

// Server returns a Conn that will serve TLS with cfg, which must not be
// modified afterwards (crypto/tls's rule) and may be shared by many Conns.
// No goroutine starts until the first Feed. It panics if o.Out or o.Wake is
// nil. Loop only.
func Server(cfg *tls.Config, o Options) *Conn {
	if o.Out == nil || o.Wake == nil {
		panic("tlsmem: Server needs Options.Out and Options.Wake")
	}
	c := &Conn{out: o.Out}
	t := &c.tr
	t.local, t.remote = o.LocalAddr, o.RemoteAddr
	if t.local == nil {
		t.local = addr{}
	}
	if t.remote == nil {
		t.remote = addr{}
	}
	t.wake = o.Wake
	t.maxBuffered = o.MaxBuffered
	if t.maxBuffered <= 0 {
		t.maxBuffered = DefaultMaxBuffered
	}
	t.maxHello = o.MaxClientHello
	if t.maxHello <= 0 {
		t.maxHello = DefaultMaxClientHello
	}
	t.cond.L = &t.mu
	t.blocking = true
	c.tc = tls.Server(t, cfg)
	return c
}

// State reports where the Conn is. Safe from any goroutine; a state other
// than StateClosed may change under the caller (the handshake goroutine
// ends the handshake).
func (c *Conn) State() State { return State(c.state.Load()) }

// Feed hands the Conn ciphertext read from the socket and returns how many
// bytes of b it took; those are copied before Feed returns, so the caller
// discards them (gnet: Discard(n)). The first Feed starts the handshake
// goroutine; later ones during the handshake wake it. Call Read after
// each Feed.
//
// Feed takes less than len(b) when the unread ciphertext would exceed
// MaxBuffered. After the handshake, Read drains what was fed, so the loop
// goes on: Feed, Read, Feed the rest, until b is taken. During the
// handshake n may be 0: keep the rest in the loop's buffer and stop; Wake
// fires once there is room again (or the handshake ends), and the loop
// feeds the rest then (gnet's Wake runs OnTraffic, which finds the bytes
// still buffered).
//
// After Close it returns 0 and net.ErrClosed. After a failed handshake it
// takes and drops b (Read reports the failure). Loop only.
func (c *Conn) Feed(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	t := &c.tr
	t.mu.Lock()
	defer t.mu.Unlock()
	switch State(c.state.Load()) {
	case StateClosed:
		return 0, net.ErrClosed
	case StateFailed:
		return len(b), nil
	}
	if c.readEnded {
		// After the client's close_notify, what it sends is ignored
		// (RFC 8446 §6.1): taken and dropped, with what was buffered,
		// rather than kept for a crypto/tls that reads no more.
		t.dropInLocked()
		return len(b), nil
	}
	n := t.feedLocked(b)
	if n > 0 && !t.goroutine {
		t.goroutine = true
		c.state.Store(int32(StateHandshake))
		handshakeGoroutines.Add(1)
		go c.handshake()
	}
	return n, nil
}

// handshake is the handshake goroutine. It ends when the handshake does:
// completed, failed, or cut short by Close (its blocked Read then fails).
func (c *Conn) handshake() {
	defer handshakeGoroutines.Add(-1)
	err := c.tc.Handshake()
	t := &c.tr
	t.mu.Lock()
	defer t.mu.Unlock()
	t.blocking = false
	if t.closed {
		return
	}
	if err != nil {
		t.hsErr = &HandshakeError{Err: err}
		c.state.Store(int32(StateFailed))
	} else {
		c.state.Store(int32(StateOpen))
	}
	t.wakeLocked()
}

// Read appends to dst the plaintext decrypted from what was fed and returns
// the extended slice; it grows dst when it is full. It first sends what the
// handshake wrote, so the loop calls it after every Feed and every Wake.
//
// err is nil when Read needs more ciphertext (including during the
// handshake); io.EOF once the client sent close_notify (RFC 8446 §6.1; the
// plaintext before it is returned first); the *HandshakeError after a
// failed handshake; net.ErrClosed after Close; otherwise the error that
// ended the connection (a bad record MAC, an alert from the client, an
// error from Out). Any non-nil err is final: close the connection. Read may
// call Out (handshake output, alerts, a KeyUpdate answer). Loop only.
func (c *Conn) Read(dst []byte) ([]byte, error) {
	o, st, hsErr := c.tr.take(c)
	err := c.send(o)
	switch st {
	case StateNew, StateHandshake:
		return dst, err
	case StateFailed:
		return dst, hsErr
	case StateClosed:
		return dst, net.ErrClosed
	}
	if err != nil {
		return dst, err
	}
	for {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, maxPlaintext)
		}
		n, rerr := c.tc.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if rerr != nil {
			if isWouldBlock(rerr) {
				rerr = nil
			}
			if rerr == io.EOF {
				c.readEnded = true
			}
			if ferr := c.flush(); rerr == nil {
				rerr = ferr
			}
			return dst, rerr
		}
	}
}

// Write encrypts p and hands the records to Out before it returns. p is not
// retained. Large writes go to Out in batches of about 64 KiB. It returns
// ErrHandshaking before the handshake completed. Loop only.
func (c *Conn) Write(p []byte) error {
	if err := c.writable(); err != nil {
		return err
	}
	err := c.encrypt(p)
	if ferr := c.flush(); err == nil {
		err = ferr
	}
	return err
}

// Writev is Write for several buffers, with one call to Out for up to
// about 64 KiB of records. Buffers shorter than 2 KiB are gathered into
// shared records; bufs is not retained. Loop only.
func (c *Conn) Writev(bufs [][]byte) error {
	if err := c.writable(); err != nil {
		return err
	}
	var g *[]byte // gathered small buffers, pooled
	err := func() error {
		for _, b := range bufs {
			if len(b) >= gatherBelow {
				if g != nil && len(*g) > 0 {
					if err := c.encrypt(*g); err != nil {
						return err
					}
					*g = (*g)[:0]
				}
				if err := c.encrypt(b); err != nil {
					return err
				}
				continue
			}
			if g == nil {
				g = getBuf()
			} else if len(*g)+len(b) > maxPlaintext {
				if err := c.encrypt(*g); err != nil {
					return err
				}
				*g = (*g)[:0]
			}
			*g = append(*g, b...)
		}
		if g != nil && len(*g) > 0 {
			return c.encrypt(*g)
		}
		return nil
	}()
	if g != nil {
		putBuf(g)
	}
	if ferr := c.flush(); err == nil {
		err = ferr
	}
	return err
}

// ConnectionState returns crypto/tls's view of the connection: version,
// cipher suite, NegotiatedProtocol (ALPN), ServerName (SNI), DidResume. It
// is the zero value unless State is StateOpen (before that crypto/tls
// would wait for the handshake goroutine). It allocates: call it once after
// the handshake and keep what you need. Loop only.
func (c *Conn) ConnectionState() tls.ConnectionState {
	if c.State() != StateOpen {
		return tls.ConnectionState{}
	}
	return c.tc.ConnectionState()
}

// Close ends the Conn. When the handshake had completed it first sends
// close_notify (RFC 8446 §6.1) through Out; after a failed handshake it
// sends any pending alert. During the handshake it wakes the handshake
// goroutine's blocked read, which fails, so the goroutine ends promptly
// without calling Wake again. Buffered ciphertext is dropped. It does not
// close the socket. Idempotent. Loop only.
func (c *Conn) Close() {
	switch c.State() {
	case StateOpen:
		_ = c.tc.CloseWrite()
		_ = c.flush()
	case StateFailed:
		_ = c.flush()
	}
	t := &c.tr
	t.mu.Lock()
	c.state.Store(int32(StateClosed))
	t.closeLocked()
	t.mu.Unlock()
}

// Abort ends the connection without close_notify, so that the peer can
// tell the stream was cut rather than ended (a close-delimited HTTP body
// cut short); the socket's close does the rest.
func (c *Conn) Abort() {
	t := &c.tr
	t.mu.Lock()
	c.state.Store(int32(StateClosed))
	t.closeLocked()
	t.mu.Unlock()
}

// writable returns why Write may not run now, or nil.
func (c *Conn) writable() error {
	switch c.State() {
	case StateOpen:
		return nil
	case StateFailed:
		return c.tr.hsErr // set before the state; never changes after
	case StateClosed:
		return net.ErrClosed
	}
	return ErrHandshaking
}

// encrypt writes p through crypto/tls, handing the output to Out whenever
// it reaches flushAt.
func (c *Conn) encrypt(p []byte) error {
	for len(p) > 0 {
		n := min(len(p), flushAt)
		if _, err := c.tc.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
		if len(p) > 0 && c.tr.outLen() >= flushAt {
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush hands the pending output to Out.
func (c *Conn) flush() error {
	o, _, _ := c.tr.take(c)
	return c.send(o)
}

// send hands o to Out and returns it to the pool.
func (c *Conn) send(o *[]byte) error {
	if o == nil {
		return nil
	}
	c.vec[0] = *o
	err := c.out(c.vec[:])
	c.vec[0] = nil
	putBuf(o)
	return err
}
