package tlsmem

import (
	"net"
	"sync"
	"time"
)

// transport is the in-memory net.Conn under a Conn's tls.Conn. crypto/tls
// reads ciphertext that Feed buffered and writes ciphertext that the event
// loop later hands to Options.Out.
//
// It has two modes. While blocking is set (the handshake), Read waits on
// cond for bytes or close, because a handshake cannot be resumed after a
// failed read (crypto/tls stores its error in c.handshakeErr and returns it
// from then on). Afterwards Read never waits: it returns errWouldBlock when
// empty, which crypto/tls treats as "try again" (see wouldBlock).
//
// Lock order: mu, then whatever wake takes (wake must not block and must not
// call back into the Conn). Nothing else is taken under mu.
type transport struct {
	// Immutable after Server.
	local, remote net.Addr
	wake          func()
	maxBuffered   int
	maxHello      int

	// Shared between the event loop and the handshake goroutine; guarded
	// by mu.
	mu        sync.Mutex
	cond      sync.Cond // L is &mu; signalled when in grows or on close
	in        *[]byte   // pooled; unread ciphertext is (*in)[off:]; nil when none
	off       int
	out       *[]byte // pooled; ciphertext written, not yet taken by the loop; nil when none
	blocking  bool    // Read waits (handshake) instead of returning errWouldBlock
	closed    bool
	woken     bool  // wake was called and the loop has not taken output since
	starved   bool  // a Feed took less than offered; the loop has more to give
	hsErr     error // *HandshakeError once the handshake failed; never changes after
	goroutine bool  // the handshake goroutine was started
	// first holds the stream's first bytes (a record header and a
	// handshake message's header), to check the ClientHello's length
	// before crypto/tls gathers it; readErr, once set, is what every
	// Read returns.
	first   [9]byte
	firstN  int
	readErr error
	// The records fed during the handshake are walked (their headers
	// read, their bodies skipped) to bound the plaintext handshake
	// records the client sends: a HelloRetryRequest's second ClientHello
	// is one, and checkHelloLocked sees only the first (walkLocked).
	rec     [5]byte // a record header being read
	recN    uint8   // its bytes read so far
	recLeft uint16  // body bytes of the current record not fed yet
	hsBytes int32   // bytes of handshake records (22) fed so far
}

// hsSlack is what the client's plaintext handshake records may hold
// beyond two ClientHellos (the first and, after a HelloRetryRequest, the
// second): TLS 1.2's ClientKeyExchange and Finished (the proxy asks for
// no client certificate), and the records' own headers.
const hsSlack = 4 << 10

// Read implements net.Conn for crypto/tls. It copies unread ciphertext into
// p. With nothing buffered it waits while blocking is set, and otherwise
// returns errWouldBlock. After close it returns net.ErrClosed.
func (t *transport) Read(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.in == nil && !t.closed && t.readErr == nil {
		if !t.blocking {
			return 0, errWouldBlock
		}
		t.cond.Wait()
	}
	if t.closed {
		return 0, net.ErrClosed
	}
	if t.readErr != nil {
		return 0, t.readErr
	}
	n := copy(p, (*t.in)[t.off:])
	t.off += n
	if t.off == len(*t.in) {
		putBuf(t.in)
		t.in, t.off = nil, 0
	}
	if t.starved && t.blocking {
		// There is room again, and the loop holds bytes it could not
		// feed: without a wake it would wait for the client, which waits
		// for us.
		t.starved = false
		t.wakeLocked()
	}
	return n, nil
}

// Write implements net.Conn for crypto/tls: it copies p (crypto/tls reuses
// its record buffer) to the output the loop takes next. During the
// handshake it also calls wake once per batch, so that the loop comes and
// takes it.
func (t *transport) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, net.ErrClosed
	}
	if t.out == nil {
		t.out = getBuf()
	}
	*t.out = append(*t.out, p...)
	if t.blocking {
		t.wakeLocked()
	}
	return len(p), nil
}

// wakeLocked calls wake unless a wake is already pending. mu is held.
func (t *transport) wakeLocked() {
	if !t.woken && !t.closed {
		t.woken = true
		t.wake()
	}
}

// feedLocked appends as much of b to the unread ciphertext as maxBuffered
// allows and returns how much. mu is held.
func (t *transport) feedLocked(b []byte) int {
	unread := 0
	if t.in != nil {
		unread = len(*t.in) - t.off
	}
	if room := t.maxBuffered - unread; len(b) > room {
		b = b[:max(room, 0)]
		t.starved = true
	}
	if len(b) == 0 {
		return 0
	}
	if t.in == nil {
		t.in = getBuf()
	} else if t.off > 0 && len(*t.in)+len(b) > cap(*t.in) {
		// Slide the unread tail down rather than grow.
		*t.in = (*t.in)[:copy(*t.in, (*t.in)[t.off:])]
		t.off = 0
	}
	*t.in = append(*t.in, b...)
	if t.firstN < len(t.first) {
		t.firstN += copy(t.first[t.firstN:], b)
		if t.firstN == len(t.first) {
			t.checkHelloLocked()
		}
	}
	if t.blocking && t.readErr == nil {
		t.walkLocked(b)
	}
	t.cond.Signal()
	return len(b)
}

// checkHelloLocked fails the reads when the stream begins with a
// ClientHello longer than maxHello: a handshake record (22) whose first
// message is a ClientHello (1), whose 24-bit length follows. Other
// beginnings are crypto/tls's to refuse. mu is held.
func (t *transport) checkHelloLocked() {
	f := &t.first
	if f[0] != 22 || f[5] != 1 || int(f[3])<<8|int(f[4]) < 4 {
		// Not a handshake record, not a ClientHello, or a first record
		// too short to hold the message's header (legal: crypto/tls
		// joins the fragments; bytes 6-8 would then be the next
		// record's header).
		return
	}
	if n := int(f[6])<<16 | int(f[7])<<8 | int(f[8]); n > t.maxHello {
		t.readErr = ErrClientHelloTooLarge
	}
}

// walkLocked follows the record boundaries through b, fed during the
// handshake, and fails the reads once the handshake records (type 22,
// plaintext until the keys change: the ClientHellos) add up to more than
// two ClientHellos of maxHello and hsSlack. crypto/tls bounds the second
// ClientHello only by its own 64 KiB; what a client sends of it is
// gathered before it is parsed. mu is held.
func (t *transport) walkLocked(b []byte) {
	for len(b) > 0 {
		if t.recLeft > 0 {
			// The body as it comes (a record longer than TLS allows is
			// crypto/tls's to refuse, with its alert, from its header).
			n := min(int(t.recLeft), len(b))
			t.recLeft -= uint16(n)
			b = b[n:]
			if t.rec[0] == 22 {
				t.hsBytes += int32(n)
				if int(t.hsBytes) > 2*t.maxHello+hsSlack {
					t.readErr = ErrClientHelloTooLarge
					return
				}
			}
			continue
		}
		n := copy(t.rec[t.recN:], b)
		t.recN += uint8(n)
		b = b[n:]
		if int(t.recN) < len(t.rec) {
			return
		}
		t.recN = 0
		t.recLeft = uint16(t.rec[3])<<8 | uint16(t.rec[4])
	}
}

// dropInLocked frees the unread ciphertext.
func (t *transport) dropInLocked() {
	if t.in != nil {
		putBuf(t.in)
		t.in, t.off = nil, 0
	}
}

// take hands the pending output to the caller, who must putBuf it, and
// clears woken so that later output wakes the loop again. It also returns
// the state read under the same lock: a handshake that ends after take
// finds woken false and wakes the loop.
func (t *transport) take(c *Conn) (out *[]byte, st State, hsErr error) {
	t.mu.Lock()
	out, t.out = t.out, nil
	t.woken = false
	st, hsErr = State(c.state.Load()), t.hsErr
	t.mu.Unlock()
	return out, st, hsErr
}

// outLen is the length of the pending output.
func (t *transport) outLen() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.out == nil {
		return 0
	}
	return len(*t.out)
}

// Close implements net.Conn: it drops buffered ciphertext in both
// directions and wakes a blocked Read, which then returns net.ErrClosed.
// Idempotent.
func (t *transport) Close() error {
	t.mu.Lock()
	t.closeLocked()
	t.mu.Unlock()
	return nil
}

func (t *transport) closeLocked() {
	t.closed = true
	if t.in != nil {
		putBuf(t.in)
		t.in, t.off = nil, 0
	}
	if t.out != nil {
		putBuf(t.out)
		t.out = nil
	}
	t.cond.Broadcast()
}

func (t *transport) LocalAddr() net.Addr  { return t.local }
func (t *transport) RemoteAddr() net.Addr { return t.remote }

// Deadlines are the caller's business (it calls Close on a timeout);
// crypto/tls only sets one around close_notify, which never waits here.
func (t *transport) SetDeadline(time.Time) error      { return nil }
func (t *transport) SetReadDeadline(time.Time) error  { return nil }
func (t *transport) SetWriteDeadline(time.Time) error { return nil }

// addr is the net.Addr used when the caller gives none.
type addr struct{}

func (addr) Network() string { return "tlsmem" }
func (addr) String() string  { return "tlsmem" }

// Buffers for both directions come from one pool so that an idle Conn keeps
// none. A buffer grown past maxPooled (a burst) is left to the collector
// rather than kept for everyone.
const (
	bufSize   = 16<<10 + 512 // one full TLS record with its overhead (RFC 8446 §5.2: 2^14 + 256, plus header)
	maxPooled = 128 << 10
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufSize); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooled {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}
