package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/blastbeat/blastbeat/internal/testcert"
	"github.com/blastbeat/blastbeat/internal/tlsconf"
	"github.com/blastbeat/blastbeat/internal/tlsmem"
)

// Both implementations of the seam.
var (
	_ transport = gnet.Conn(nil)
	_ transport = (*tlsTransport)(nil)
)

// trWait bounds every wait of these tests; nothing sleeps except
// trCheckFor's polling of the handshake-goroutine gauge.
const trWait = 30 * time.Second

var trVersions = []struct {
	name    string
	version uint16
}{
	{name: "TLS12", version: tls.VersionTLS12},
	{name: "TLS13", version: tls.VersionTLS13},
}

// trCheckFor calls fn every interval until it returns nil, failing the
// test with fn's last error after total.
func trCheckFor(t testing.TB, total, every time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %v", total, err)
		}
		time.Sleep(every)
	}
}

// trNoHandshakeGoroutines waits until no tlsmem handshake goroutine is
// alive (the gauge drops just after the goroutine's last Wake).
func trNoHandshakeGoroutines(t testing.TB) {
	t.Helper()
	trCheckFor(t, trWait, time.Millisecond, func() error {
		if n := tlsmem.HandshakeGoroutines(); n != 0 {
			return fmt.Errorf("tlsmem.HandshakeGoroutines() = %d", n)
		}
		return nil
	})
}

// trPoke signals ch without blocking (ch has room for one signal).
func trPoke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// trPKI is a throwaway CA and the server configuration of one listener
// serving example.test with ALPN http/1.1, built as the server builds it.
type trPKI struct {
	ca  *testcert.CA
	cfg *tls.Config
}

func newTRPKI(t *testing.T) trPKI {
	t.Helper()
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(testcert.Leaf{Name: "site", DNSNames: []string{"example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tlsconf.NewListener([]tlsconf.Site{{Names: []string{"example.test"}, CertFile: cert, KeyFile: key}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return trPKI{ca: ca, cfg: ln.Config([]string{"http/1.1"})}
}

// trPipe is one direction of an in-memory socket: Write never blocks,
// Read blocks until there are bytes or the pipe is closed.
type trPipe struct {
	mu     sync.Mutex
	cond   sync.Cond
	buf    []byte
	closed bool
	notify chan struct{} // poked on every Write; nil: none
}

func newTRPipe(notify chan struct{}) *trPipe {
	p := &trPipe{notify: notify}
	p.cond.L = &p.mu
	return p
}

func (p *trPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0, net.ErrClosed
	}
	p.buf = append(p.buf, b...)
	p.cond.Broadcast()
	p.mu.Unlock()
	if p.notify != nil {
		trPoke(p.notify)
	}
	return len(b), nil
}

func (p *trPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.buf) == 0 && !p.closed {
		p.cond.Wait()
	}
	if len(p.buf) == 0 {
		return 0, net.ErrClosed
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	return n, nil
}

// take returns everything written so far and empties the pipe.
func (p *trPipe) take() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.buf
	p.buf = nil
	return b
}

func (p *trPipe) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

// trClientConn is the client's net.Conn: it writes into toSrv (the
// ciphertext the test hands to the fake socket) and reads toCli (what the
// server's transport wrote to the socket).
type trClientConn struct {
	toSrv, toCli *trPipe
}

func (c trClientConn) Read(b []byte) (int, error)  { return c.toCli.Read(b) }
func (c trClientConn) Write(b []byte) (int, error) { return c.toSrv.Write(b) }
func (c trClientConn) Close() error                { c.toSrv.close(); c.toCli.close(); return nil }
func (c trClientConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 40000}
}
func (c trClientConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}
}
func (c trClientConn) SetDeadline(time.Time) error      { return nil }
func (c trClientConn) SetReadDeadline(time.Time) error  { return nil }
func (c trClientConn) SetWriteDeadline(time.Time) error { return nil }

var errTRWriteFailed = errors.New("test: writev failed")

// trSock is the gnet.Conn under a tlsTransport: the harness's fakeConn
// (gnet's Peek and Discard, with discarded bytes poisoned; output
// collected; pausing recorded), plus a Wake the handshake goroutine calls,
// a count of closes, and a write failure to inject. Like gnet, a Writev
// on a closed connection fails without closing it again, and a Close of a
// closed connection does nothing (gnet's eventloop.close ignores a stale
// conn); closeCalls counts those too.
type trSock struct {
	*fakeConn
	notify     chan struct{} // poked by Wake
	woken      atomic.Bool   // Wake was called since the loop last looked
	wakes      atomic.Int32
	closes     int    // the socket closed: 0 or 1
	closeCalls int    // Close calls, including those on a closed socket
	failWrite  func() // the next Writev calls it and fails; nil: none
}

func newTRSock(notify chan struct{}) *trSock {
	return &trSock{fakeConn: &fakeConn{el: &fakeLoop{}}, notify: notify}
}

// Wake is called from the handshake goroutine: it only records.
func (s *trSock) Wake(gnet.AsyncCallback) error {
	s.wakes.Add(1)
	s.woken.Store(true)
	trPoke(s.notify)
	return nil
}

func (s *trSock) Close() error {
	s.closeCalls++
	if !s.closed {
		s.closes++
	}
	return s.fakeConn.Close()
}

func (s *trSock) Writev(bs [][]byte) (int, error) {
	if s.closed {
		return 0, net.ErrClosed
	}
	if f := s.failWrite; f != nil {
		s.failWrite = nil
		f() // as gnet closes a connection whose write failed
		return 0, errTRWriteFailed
	}
	return s.fakeConn.Writev(bs)
}

// trPeer is a tlsTransport on a fake socket with a real crypto/tls client
// at the other end. The test goroutine plays the event loop.
type trPeer struct {
	t      *testing.T
	l      *loop
	sock   *trSock
	tr     *tlsTransport
	toSrv  *trPipe
	toCli  *trPipe
	client *tls.Conn
	notify chan struct{}
	opened int // pumps that reported the handshake complete
}

// newTRPeer makes a peer on loop l whose handshake has not started.
func newTRPeer(t *testing.T, pki trPKI, l *loop, version uint16) *trPeer {
	t.Helper()
	notify := make(chan struct{}, 1)
	p := &trPeer{t: t, l: l, notify: notify, sock: newTRSock(notify),
		toSrv: newTRPipe(notify), toCli: newTRPipe(nil)}
	p.tr = newTLSTransport(p.sock, l, pki.cfg, 0)
	p.client = tls.Client(trClientConn{toSrv: p.toSrv, toCli: p.toCli}, &tls.Config{
		RootCAs:    pki.ca.Pool(),
		ServerName: "example.test",
		NextProtos: []string{"http/1.1"},
		MinVersion: version,
		MaxVersion: version,
	})
	t.Cleanup(func() {
		p.toSrv.close()
		p.toCli.close()
		p.tr.closeTLS() // ends a handshake goroutine a failed test left
	})
	return p
}

// newOpenTRPeer makes a peer and completes its handshake.
func newOpenTRPeer(t *testing.T, pki trPKI, l *loop, version uint16) *trPeer {
	t.Helper()
	p := newTRPeer(t, pki, l, version)
	p.handshake()
	return p
}

// handshake runs the client's handshake on a goroutine and the loop's
// side here, until both ends have completed.
func (p *trPeer) handshake() {
	p.t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.client.Handshake() }()
	deadline := time.NewTimer(trWait)
	defer deadline.Stop()
	clientDone := false
	for !clientDone || !p.tr.open {
		if _, err := p.step(); err != nil {
			p.t.Fatalf("pump during the handshake: %v", err)
		}
		if clientDone && p.tr.open {
			break
		}
		select {
		case err := <-done:
			if err != nil {
				p.t.Fatalf("client handshake: %v", err)
			}
			clientDone = true
			done = nil
		case <-p.notify:
		case <-deadline.C:
			p.t.Fatalf("handshake not done after %v (client done: %v, server open: %v)", trWait, clientDone, p.tr.open)
		}
	}
	if p.opened != 1 {
		p.t.Fatalf("pump reported the handshake complete %d times, want 1", p.opened)
	}
}

// step is one OnTraffic as gnet would run it: the client's bytes are
// read into the socket's buffer, or a Wake came; the transport pumps, the
// protocol machine would read, settle ends the callback. It reports
// whether it pumped.
func (p *trPeer) step() (bool, error) {
	p.sock.in = append(p.sock.in, p.toSrv.take()...)
	woke := p.sock.woken.Swap(false)
	if len(p.sock.in) == 0 && !woke {
		return false, nil
	}
	opened, err := p.tr.pump()
	if opened {
		p.opened++
	}
	p.flushOut()
	if err == nil && p.tr.open {
		p.tr.settle()
	}
	return true, err
}

// pump feeds what the socket holds, expecting no error and no second
// "opened".
func (p *trPeer) pump() {
	p.t.Helper()
	opened, err := p.tr.pump()
	if err != nil {
		p.t.Fatalf("pump: %v", err)
	}
	if opened {
		p.t.Fatalf("pump reported the handshake complete again")
	}
	p.flushOut()
}

// flushOut passes what the transport wrote to the socket to the client.
func (p *trPeer) flushOut() {
	if len(p.sock.out) > 0 {
		_, _ = p.toCli.Write(p.sock.out)
		p.sock.out = nil
	}
}

// send has the client write each of msgs (one record or more each) and
// returns the ciphertext, which is not yet in the socket's buffer.
func (p *trPeer) send(msgs ...string) []byte {
	p.t.Helper()
	for _, m := range msgs {
		if _, err := p.client.Write([]byte(m)); err != nil {
			p.t.Fatalf("client write: %v", err)
		}
	}
	return p.toSrv.take()
}

// clientRead passes the transport's output to the client and reads n
// plaintext bytes there, or until err when n < 0.
func (p *trPeer) clientRead(n int) ([]byte, error) {
	p.t.Helper()
	p.flushOut()
	type result struct {
		b   []byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		if n < 0 {
			b, err := io.ReadAll(p.client)
			res <- result{b, err}
			return
		}
		b := make([]byte, n)
		_, err := io.ReadFull(p.client, b)
		res <- result{b, err}
	}()
	select {
	case r := <-res:
		return r.b, r.err
	case <-time.After(trWait):
		p.toCli.close() // ends the reader
		p.t.Fatalf("client read of %d bytes did not finish in %v", n, trWait)
		return nil, nil
	}
}

// trAliases reports whether a and b share their backing array's first
// element of a (a's bytes lie in b's).
func trAliases(a, b []byte) bool {
	if len(a) == 0 || cap(b) == 0 {
		return false
	}
	b = b[:cap(b)]
	for i := range b {
		if &b[i] == &a[0] {
			return true
		}
	}
	return false
}

// trPoison overwrites the loop's scratch buffer, as another connection's
// OnTraffic would.
func trPoison(l *loop) {
	s := l.tlsScratch[:cap(l.tlsScratch)]
	for i := range s {
		s[i] = '#'
	}
}

// transportUnderTest is one implementation with bytes from the client
// buffered, and the socket under it.
type transportUnderTest struct {
	tr   transport
	sock *fakeConn
	// received returns the next n bytes the client got, in plaintext.
	received func(n int) []byte
}

// transportImpls builds each implementation with input buffered.
var transportImpls = []struct {
	name string
	new  func(t *testing.T, input string) transportUnderTest
}{
	{name: "plain", new: func(t *testing.T, input string) transportUnderTest {
		fc := &fakeConn{el: &fakeLoop{}, in: []byte(input)}
		return transportUnderTest{tr: gnet.Conn(fc), sock: fc, received: func(n int) []byte {
			if len(fc.out) < n {
				t.Fatalf("client got %d bytes, want %d", len(fc.out), n)
			}
			b := fc.out[:n]
			fc.out = fc.out[n:]
			return b
		}}
	}},
	{name: "tls", new: func(t *testing.T, input string) transportUnderTest {
		p := newOpenTRPeer(t, newTRPKI(t), &loop{}, tls.VersionTLS13)
		if input != "" {
			p.sock.in = append(p.sock.in, p.send(input)...)
			p.pump()
		}
		return transportUnderTest{tr: p.tr, sock: p.sock.fakeConn, received: func(n int) []byte {
			b, err := p.clientRead(n)
			if err != nil {
				t.Fatalf("client read: %v", err)
			}
			return b
		}}
	}},
}

// TestTransportPeekDiscard checks, on both transports, the buffer
// semantics the protocol machines rely on: Peek(-1) is everything, Peek(n)
// exactly n, a short Peek says io.ErrShortBuffer, Discard(n) consumes n
// (at most what there is), InboundBuffered follows.
func TestTransportPeekDiscard(t *testing.T) {
	const input = "0123456789"
	type step struct {
		op       string // "peek" or "discard"
		n        int
		want     string // peek: the bytes
		wantErr  error  // peek
		wantN    int    // discard: the count returned
		buffered int    // InboundBuffered afterwards
	}
	steps := []step{
		{op: "peek", n: -1, want: "0123456789", buffered: 10},
		{op: "peek", n: 1, want: "0", buffered: 10},
		{op: "peek", n: 4, want: "0123", buffered: 10},
		{op: "peek", n: 10, want: "0123456789", buffered: 10},
		{op: "peek", n: 11, wantErr: io.ErrShortBuffer, buffered: 10},
		{op: "discard", n: 3, wantN: 3, buffered: 7},
		{op: "peek", n: -1, want: "3456789", buffered: 7},
		{op: "peek", n: 2, want: "34", buffered: 7},
		{op: "peek", n: 8, wantErr: io.ErrShortBuffer, buffered: 7},
		{op: "discard", n: 1, wantN: 1, buffered: 6},
		{op: "peek", n: 6, want: "456789", buffered: 6},
		{op: "discard", n: 100, wantN: 6, buffered: 0},
		{op: "peek", n: -1, want: "", buffered: 0},
		{op: "peek", n: 1, wantErr: io.ErrShortBuffer, buffered: 0},
	}
	for _, impl := range transportImpls {
		t.Run(impl.name, func(t *testing.T) {
			u := impl.new(t, input)
			for i, s := range steps {
				switch s.op {
				case "peek":
					b, err := u.tr.Peek(s.n)
					if !errors.Is(err, s.wantErr) {
						t.Fatalf("step %d: Peek(%d) error %v, want %v", i, s.n, err, s.wantErr)
					}
					if s.wantErr == nil && string(b) != s.want {
						t.Fatalf("step %d: Peek(%d) = %q, want %q", i, s.n, b, s.want)
					}
				case "discard":
					n, err := u.tr.Discard(s.n)
					if err != nil || n != s.wantN {
						t.Fatalf("step %d: Discard(%d) = %d, %v, want %d", i, s.n, n, err, s.wantN)
					}
				}
				if got := u.tr.InboundBuffered(); got != s.buffered {
					t.Fatalf("step %d: InboundBuffered() = %d, want %d", i, got, s.buffered)
				}
			}
		})
	}
}

// TestTransportWritevOrder checks that Writev delivers its buffers in
// order, small ones and large ones mixed (tlsmem gathers buffers under
// 2 KiB into shared records), and returns their total.
func TestTransportWritevOrder(t *testing.T) {
	big := strings.Repeat("B", 3<<10)
	huge := strings.Repeat("H", 100<<10) // more than one batch of tlsmem's output
	tests := []struct {
		name string
		bufs []string
	}{
		{name: "one", bufs: []string{"HTTP/1.1 200 OK\r\n\r\n"}},
		{name: "small ones", bufs: []string{"a", "bb", "ccc", "dddd"}},
		{name: "small, large, small", bufs: []string{"head\r\n", big, "tail", big, "x"}},
		{name: "huge", bufs: []string{"h", huge, "t"}},
		{name: "empty buffers between", bufs: []string{"a", "", "b", "", "c"}},
	}
	for _, impl := range transportImpls {
		t.Run(impl.name, func(t *testing.T) {
			u := impl.new(t, "")
			for _, tc := range tests {
				bs := make([][]byte, len(tc.bufs))
				for i, s := range tc.bufs {
					bs[i] = []byte(s)
				}
				want := strings.Join(tc.bufs, "")
				n, err := u.tr.Writev(bs)
				if err != nil || n != len(want) {
					t.Fatalf("%s: Writev = %d, %v, want %d", tc.name, n, err, len(want))
				}
				if got := u.received(len(want)); string(got) != want {
					t.Fatalf("%s: client got %q…, want %q…", tc.name, trHead(got), trHead([]byte(want)))
				}
			}
		})
	}
}

func trHead(b []byte) []byte { return b[:min(len(b), 40)] }

// TestTransportSocketPassThrough checks that OutboundBuffered, PauseRead,
// ResumeRead and the addresses are the socket's on both transports (a TLS
// connection's held output is ciphertext; pausing it pauses the socket).
func TestTransportSocketPassThrough(t *testing.T) {
	for _, impl := range transportImpls {
		t.Run(impl.name, func(t *testing.T) {
			u := impl.new(t, "")
			for _, ob := range []int{0, 1, 70000} {
				u.sock.outbound = ob
				if got := u.tr.OutboundBuffered(); got != ob {
					t.Fatalf("OutboundBuffered() = %d, want %d", got, ob)
				}
			}
			steps := []struct {
				pause      bool
				wantPaused bool
				wantPauses int
			}{
				{pause: true, wantPaused: true, wantPauses: 1},
				{pause: false, wantPaused: false, wantPauses: 1},
				{pause: true, wantPaused: true, wantPauses: 2},
				{pause: false, wantPaused: false, wantPauses: 2},
			}
			for i, s := range steps {
				var err error
				if s.pause {
					err = u.tr.PauseRead()
				} else {
					err = u.tr.ResumeRead()
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if u.sock.paused != s.wantPaused || u.sock.pauses != s.wantPauses {
					t.Fatalf("step %d: socket paused=%v pauses=%d, want %v %d",
						i, u.sock.paused, u.sock.pauses, s.wantPaused, s.wantPauses)
				}
			}
			if got, want := u.tr.LocalAddr().String(), u.sock.LocalAddr().String(); got != want {
				t.Errorf("LocalAddr() = %s, want %s", got, want)
			}
			if got, want := u.tr.RemoteAddr().String(), u.sock.RemoteAddr().String(); got != want {
				t.Errorf("RemoteAddr() = %s, want %s", got, want)
			}
		})
	}
}

// TestTransportTLSHandshake drives a real crypto/tls client to the end
// of its handshake through the fake socket: pump reports "opened" exactly
// once, the session is the one negotiated, writing before it fails, and
// no handshake goroutine is left.
func TestTransportTLSHandshake(t *testing.T) {
	pki := newTRPKI(t)
	for _, v := range trVersions {
		t.Run(v.name, func(t *testing.T) {
			p := newTRPeer(t, pki, &loop{}, v.version)
			if n, err := p.tr.Writev([][]byte{[]byte("early")}); n != 0 || !errors.Is(err, tlsmem.ErrHandshaking) {
				t.Fatalf("Writev before the handshake = %d, %v, want 0, ErrHandshaking", n, err)
			}
			p.handshake() // checks opened == 1
			if p.sock.wakes.Load() == 0 {
				t.Error("the handshake goroutine never called Wake")
			}
			st := p.tr.state()
			if st.Version != v.version || st.NegotiatedProtocol != "http/1.1" || st.ServerName != "example.test" {
				t.Errorf("state: version %x ALPN %q SNI %q", st.Version, st.NegotiatedProtocol, st.ServerName)
			}
			if p.sock.closed || p.tr.InboundBuffered() != 0 {
				t.Errorf("after the handshake: socket closed %v, plaintext %d bytes", p.sock.closed, p.tr.InboundBuffered())
			}
			trNoHandshakeGoroutines(t)
			// Nothing more to read: a pump (a late Wake) is a no-op.
			p.pump()
			p.tr.settle()
			// Data still flows both ways.
			p.sock.in = append(p.sock.in, p.send("ping")...)
			p.pump()
			if b, _ := p.tr.Peek(-1); string(b) != "ping" {
				t.Fatalf("server read %q, want ping", b)
			}
			if _, err := p.tr.Writev([][]byte{[]byte("pong")}); err != nil {
				t.Fatal(err)
			}
			if b, err := p.clientRead(4); err != nil || string(b) != "pong" {
				t.Fatalf("client read %q, %v, want pong", b, err)
			}
			if p.opened != 1 {
				t.Fatalf("opened reported %d times", p.opened)
			}
		})
	}
}

// TestTransportTLSSplit feeds the client's records to the transport cut
// at every point, one byte at a time, and all at once past tlsmem's
// MaxBuffered. Between OnTraffics the loop's scratch buffer is poisoned,
// as another connection's pump would overwrite it, and gnet's Discard
// poisons what the transport consumed: the plaintext must come out whole
// and in order all the same.
func TestTransportTLSSplit(t *testing.T) {
	pki := newTRPKI(t)
	for _, v := range trVersions {
		t.Run(v.name, func(t *testing.T) {
			t.Run("every split point", func(t *testing.T) {
				p := newOpenTRPeer(t, pki, &loop{}, v.version)
				msgs := []string{"GET / HTTP/1.1\r\n", "Host: example.test\r\n\r\n"} // two records
				want := strings.Join(msgs, "")
				// A first pair sizes the ciphertext; the server reads it,
				// so the record sequence stays in step.
				ct0 := p.send(msgs...)
				ctLen := len(ct0)
				p.sock.in = append(p.sock.in, ct0...)
				p.pump()
				_, _ = p.tr.Discard(p.tr.InboundBuffered())
				p.tr.settle()
				for cut := 0; cut <= ctLen; cut++ {
					ct := p.send(msgs...)
					if len(ct) != ctLen {
						t.Fatalf("ciphertext %d bytes, the first was %d", len(ct), ctLen)
					}
					p.sock.in = append(p.sock.in, ct[:cut]...)
					p.pump()
					got, _ := p.tr.Peek(-1)
					if !strings.HasPrefix(want, string(got)) {
						t.Fatalf("cut %d: first part gave %q, not a prefix of %q", cut, got, want)
					}
					p.tr.settle()
					trPoison(p.l)
					p.sock.in = append(p.sock.in, ct[cut:]...)
					p.pump()
					if got, _ := p.tr.Peek(-1); string(got) != want {
						t.Fatalf("cut %d: got %q, want %q", cut, got, want)
					}
					if len(p.sock.in) != 0 {
						t.Fatalf("cut %d: %d ciphertext bytes left in the socket's buffer", cut, len(p.sock.in))
					}
					_, _ = p.tr.Discard(len(want))
					p.tr.settle()
				}
			})
			t.Run("one byte at a time", func(t *testing.T) {
				p := newOpenTRPeer(t, pki, &loop{}, v.version)
				want := trPattern(16<<10 + 512) // two records
				ct := p.send(want)
				var got []byte
				for i := range ct {
					p.sock.in = append(p.sock.in, ct[i])
					p.pump()
					// A machine that takes 7 bytes at a time: the rest
					// waits in the transport across OnTraffics.
					for p.tr.InboundBuffered() >= 7 {
						b, err := p.tr.Peek(7)
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, b...)
						_, _ = p.tr.Discard(7)
					}
					p.tr.settle()
					if p.tr.InboundBuffered() > 0 && trAliases(p.tr.in, p.l.tlsScratch) {
						t.Fatalf("byte %d: leftover plaintext still in the loop's scratch after settle", i)
					}
					trPoison(p.l)
				}
				rest, _ := p.tr.Peek(-1)
				got = append(got, rest...)
				if string(got) != want {
					t.Fatalf("got %d bytes, want %d (first difference at %d)", len(got), len(want), trFirstDiff(got, []byte(want)))
				}
			})
			t.Run("all at once, more than MaxBuffered", func(t *testing.T) {
				p := newOpenTRPeer(t, pki, &loop{}, v.version)
				want := trPattern(3*tlsmem.DefaultMaxBuffered + 123)
				p.sock.in = append(p.sock.in, p.send(want)...)
				p.pump() // one OnTraffic takes it all: Feed, Read, Feed the rest…
				if len(p.sock.in) != 0 {
					t.Fatalf("%d ciphertext bytes left in the socket's buffer", len(p.sock.in))
				}
				if got, _ := p.tr.Peek(-1); string(got) != want {
					t.Fatalf("got %d bytes, want %d (first difference at %d)", len(got), len(want), trFirstDiff(got, []byte(want)))
				}
				if cap(p.l.tlsScratch) < len(want) {
					t.Errorf("the loop kept a scratch of %d bytes, the plaintext was %d", cap(p.l.tlsScratch), len(want))
				}
			})
		})
	}
}

// trPattern is n bytes that show where a byte came from.
func trPattern(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
		if i%1000 == 999 {
			b[i] = '\n'
		}
	}
	return string(b)
}

func trFirstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestTransportTLSSettleSharedScratch has two connections of one loop
// take turns: the plaintext one leaves unconsumed lies in the loop's
// scratch until settle copies it out, so the other's pump must not
// change it.
func TestTransportTLSSettleSharedScratch(t *testing.T) {
	pki := newTRPKI(t)
	for _, v := range trVersions {
		t.Run(v.name, func(t *testing.T) {
			l := &loop{}
			a := newOpenTRPeer(t, pki, l, v.version)
			b := newOpenTRPeer(t, pki, l, v.version)
			msgA := strings.Repeat("A", 100)
			msgB := strings.Repeat("B", 300)

			// a's OnTraffic: it reads 10 bytes, 90 stay.
			a.sock.in = append(a.sock.in, a.send(msgA)...)
			a.pump()
			if !trAliases(a.tr.in, l.tlsScratch) {
				t.Fatal("a's plaintext is not in the loop's scratch: the test would not see settle work")
			}
			_, _ = a.tr.Discard(10)
			a.tr.settle()
			if trAliases(a.tr.in, l.tlsScratch) {
				t.Fatal("after settle, a's leftover is still in the loop's scratch")
			}

			// b's OnTraffic, on the same scratch.
			b.sock.in = append(b.sock.in, b.send(msgB)...)
			b.pump()
			if got, _ := b.tr.Peek(-1); string(got) != msgB {
				t.Fatalf("b got %q", got)
			}
			if !trAliases(b.tr.in, l.tlsScratch) {
				t.Fatal("b's plaintext is not in the loop's scratch")
			}
			if got, _ := a.tr.Peek(-1); string(got) != msgA[10:] {
				t.Fatalf("a's leftover changed under b's pump: %q", got)
			}
			_, _ = b.tr.Discard(len(msgB))
			b.tr.settle()
			if b.tr.InboundBuffered() != 0 || b.tr.in != nil {
				t.Fatalf("b consumed everything but holds %d bytes (buffer %v)", b.tr.InboundBuffered(), b.tr.in != nil)
			}

			// a's next OnTraffic appends to its leftover.
			a.sock.in = append(a.sock.in, a.send("more")...)
			a.pump()
			if got, _ := a.tr.Peek(-1); string(got) != msgA[10:]+"more" {
				t.Fatalf("a got %q", got)
			}
			a.tr.settle()
			trPoison(l)
			if got, _ := a.tr.Peek(-1); string(got) != msgA[10:]+"more" {
				t.Fatalf("a's data changed with the scratch: %q", got)
			}
		})
	}
}

// TestTransportTLSClose checks that Close sends close_notify (the client
// reads io.EOF), closes the socket once, and leaves a transport that
// fails pump and Writev; and that a Close during the handshake ends the
// handshake goroutine.
func TestTransportTLSClose(t *testing.T) {
	pki := newTRPKI(t)
	for _, v := range trVersions {
		t.Run(v.name, func(t *testing.T) {
			t.Run("open", func(t *testing.T) {
				p := newOpenTRPeer(t, pki, &loop{}, v.version)
				if _, err := p.tr.Writev([][]byte{[]byte("bye")}); err != nil {
					t.Fatal(err)
				}
				if err := p.tr.Close(); err != nil {
					t.Fatal(err)
				}
				if p.sock.closes != 1 || p.sock.closeCalls != 1 {
					t.Fatalf("socket closed %d times by %d Close calls, want 1", p.sock.closes, p.sock.closeCalls)
				}
				got, err := p.clientRead(-1) // io.ReadAll: nil at io.EOF
				if err != nil || string(got) != "bye" {
					t.Fatalf("client read %q, %v; want \"bye\" then io.EOF (close_notify)", got, err)
				}
				if _, err := p.client.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("client read after close_notify: %v, want io.EOF", err)
				}
				if st := p.tr.tc.State(); st != tlsmem.StateClosed {
					t.Fatalf("tlsmem state %v, want closed", st)
				}
				// What the loop may still do before OnClose: a late
				// OnTraffic and a flush fail, and write nothing.
				p.sock.in = append(p.sock.in, 0x17, 0x03, 0x03)
				if _, err := p.tr.pump(); err == nil {
					t.Error("pump after Close: no error")
				}
				if _, err := p.tr.Writev([][]byte{[]byte("late")}); err == nil {
					t.Error("Writev after Close: no error")
				}
				if len(p.sock.out) != 0 {
					t.Errorf("%d bytes written after Close", len(p.sock.out))
				}
				p.tr.closeTLS() // OnClose's: idempotent
			})
			t.Run("during the handshake", func(t *testing.T) {
				p := newTRPeer(t, pki, &loop{}, v.version)
				go func() { _ = p.client.Handshake() }() // fails when the pipes close
				// Feed the ClientHello: the handshake goroutine starts.
				select {
				case <-p.notify:
				case <-time.After(trWait):
					t.Fatal("no ClientHello")
				}
				if _, err := p.step(); err != nil {
					t.Fatal(err)
				}
				if p.tr.tc.State() == tlsmem.StateNew {
					t.Fatal("the handshake did not start")
				}
				if err := p.tr.Close(); err != nil {
					t.Fatal(err)
				}
				if p.sock.closes != 1 || p.sock.closeCalls != 1 {
					t.Fatalf("socket closed %d times by %d Close calls, want 1", p.sock.closes, p.sock.closeCalls)
				}
				trNoHandshakeGoroutines(t)
				if p.tr.open {
					t.Fatal("open after Close")
				}
			})
		})
	}
}

// TestTransportTLSReentrantClose has the socket's Writev fail and close
// the connection from inside the call, as gnet does when a write fails
// (loop.close runs OnClose, which calls closeTLS; a conn's closeNow calls
// Close): nothing panics, the socket is closed once, tlsmem ends closed
// and no handshake goroutine is left. Inside a Writev or a pump, the
// transport defers tlsmem's Close until the call returns (busy); when
// close_notify itself fails, Close goes on to ask the socket to close
// although the failure closed it already, which gnet ignores (its
// eventloop.close skips a stale conn).
func TestTransportTLSReentrantClose(t *testing.T) {
	pki := newTRPKI(t)
	type closer func(tr *tlsTransport)
	viaClose := func(tr *tlsTransport) { _ = tr.Close() }
	viaOnClose := func(tr *tlsTransport) { tr.closeTLS(); _ = tr.Conn.Close() }
	tests := []struct {
		name  string
		close closer
		// during: what the loop is doing when the write fails.
		during         string // "writev", "handshake", "close"
		wantCloseCalls int
	}{
		{name: "Close from Writev", close: viaClose, during: "writev", wantCloseCalls: 1},
		{name: "OnClose from Writev", close: viaOnClose, during: "writev", wantCloseCalls: 1},
		{name: "Close from the handshake output", close: viaClose, during: "handshake", wantCloseCalls: 1},
		{name: "OnClose from the handshake output", close: viaOnClose, during: "handshake", wantCloseCalls: 1},
		{name: "OnClose from close_notify", close: viaOnClose, during: "close", wantCloseCalls: 2},
		{name: "Close from close_notify", close: viaClose, during: "close", wantCloseCalls: 2},
	}
	for _, v := range trVersions {
		for _, tc := range tests {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) {
				var p *trPeer
				arm := func() { p.sock.failWrite = func() { tc.close(p.tr) } }
				switch tc.during {
				case "writev":
					p = newOpenTRPeer(t, pki, &loop{}, v.version)
					arm()
					n, err := p.tr.Writev([][]byte{[]byte("HTTP/1.1 200 OK\r\n\r\n"), []byte(trPattern(100 << 10))})
					if !errors.Is(err, errTRWriteFailed) {
						t.Fatalf("Writev = %d, %v, want the socket's error", n, err)
					}
				case "handshake":
					p = newTRPeer(t, pki, &loop{}, v.version)
					go func() { _ = p.client.Handshake() }()
					arm()
					// Pump until the server's first flight is written
					// (and fails).
					deadline := time.NewTimer(trWait)
					defer deadline.Stop()
					var err error
					for p.sock.failWrite != nil && err == nil {
						select {
						case <-p.notify:
						case <-deadline.C:
							t.Fatal("the server never wrote")
						}
						_, err = p.step()
					}
					if !errors.Is(err, errTRWriteFailed) {
						t.Fatalf("pump: %v, want the socket's error", err)
					}
				case "close":
					p = newOpenTRPeer(t, pki, &loop{}, v.version)
					arm()
					_ = p.tr.Close()
				}
				if p.sock.failWrite != nil {
					t.Fatal("the write did not fail: the test tested nothing")
				}
				if p.sock.closes != 1 || p.sock.closeCalls != tc.wantCloseCalls {
					t.Errorf("socket closed %d times by %d Close calls, want 1 by %d", p.sock.closes, p.sock.closeCalls, tc.wantCloseCalls)
				}
				if st := p.tr.tc.State(); st != tlsmem.StateClosed {
					t.Errorf("tlsmem state %v, want closed", st)
				}
				if p.tr.busy != 0 || p.tr.closeIn {
					t.Errorf("busy %d, closeIn %v after the call returned", p.tr.busy, p.tr.closeIn)
				}
				// OnClose follows (again, for the Close paths): idempotent.
				p.tr.closeTLS()
				trNoHandshakeGoroutines(t)
				if len(p.sock.out) != 0 {
					t.Errorf("%d bytes reached the closed socket", len(p.sock.out))
				}
			})
		}
	}
}

// TestTransportTLSPlaintextBeforeCloseNotify: a client that sends data
// and close_notify in one read. pump reports io.EOF, and the plaintext
// before it is kept in the transport (InboundBuffered).
func TestTransportTLSPlaintextBeforeCloseNotify(t *testing.T) {
	pki := newTRPKI(t)
	for _, v := range trVersions {
		t.Run(v.name, func(t *testing.T) {
			p := newOpenTRPeer(t, pki, &loop{}, v.version)
			if _, err := p.client.Write([]byte("last words")); err != nil {
				t.Fatal(err)
			}
			if err := p.client.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			p.sock.in = append(p.sock.in, p.toSrv.take()...)
			_, err := p.tr.pump()
			if !errors.Is(err, io.EOF) {
				t.Fatalf("pump: %v, want io.EOF (close_notify)", err)
			}
			if got, _ := p.tr.Peek(-1); !bytes.Equal(got, []byte("last words")) {
				t.Fatalf("plaintext before close_notify: %q", got)
			}
		})
	}
}
