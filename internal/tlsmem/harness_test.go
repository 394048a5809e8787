package tlsmem_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/internal/tlsmem"
)

// The test PKI: a CA and a leaf for example.test, other.test and
// 127.0.0.1, generated once per test binary. No key is committed.
type testPKI struct {
	roots *x509.CertPool
	cert  tls.Certificate
}

var pki = sync.OnceValue(func() testPKI {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tlsmem test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	caCert, err := x509.ParseCertificate(caDER)
	must(err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "example.test"},
		DNSNames:     []string{"example.test", "other.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	must(err)
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return testPKI{
		roots: roots,
		cert:  tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey},
	}
})

func serverConfig(protos ...string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{pki().cert}, NextProtos: protos}
}

func clientConfig(version uint16) *tls.Config {
	return &tls.Config{
		RootCAs:    pki().roots,
		ServerName: "example.test",
		MinVersion: version,
		MaxVersion: version,
	}
}

var versions = []struct {
	name    string
	version uint16
}{
	{name: "TLS12", version: tls.VersionTLS12},
	{name: "TLS13", version: tls.VersionTLS13},
}

// waitLong is the bound of every wait in these tests; nothing sleeps.
func waitLong() time.Duration {
	if raceEnabled {
		return 60 * time.Second
	}
	return 20 * time.Second
}

// checkFor calls fn every interval until it returns nil, failing the test
// with fn's last error after total.
func checkFor(t testing.TB, total, every time.Duration, fn func() error) {
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

// checkNoHandshakeGoroutines waits until neither the package's gauge nor
// any goroutine stack shows a handshake goroutine.
func checkNoHandshakeGoroutines(t testing.TB) {
	t.Helper()
	buf := make([]byte, 4<<20)
	checkFor(t, waitLong(), 2*time.Millisecond, func() error {
		if n := tlsmem.HandshakeGoroutines(); n != 0 {
			return fmt.Errorf("HandshakeGoroutines() = %d", n)
		}
		n := runtime.Stack(buf, true)
		if bytes.Contains(buf[:n], []byte("tlsmem.(*Conn).handshake")) {
			return errors.New("a goroutine is still in tlsmem.(*Conn).handshake")
		}
		return nil
	})
}

// server plays a gnet engine with one event loop: one goroutine (loop)
// owns every tlsmem.Conn; per-socket reader goroutines stand in for epoll
// and only pass what they read to the loop, as events.
type server struct {
	t      testing.TB
	ln     net.Listener
	cfg    *tls.Config
	max    int          // Options.MaxBuffered; owned by the loop
	setup  func(*sconn) // on the loop, before the first byte
	events chan event
	conns  chan *sconn // every accepted conn, after setup
	quit   chan struct{}
	done   chan struct{}
}

// event is one thing for the loop to do.
type event struct {
	ref  *hookRef
	data []byte // bytes read from the socket (owned by the loop)
	err  error  // the socket's read error
	wake bool   // the Conn's Options.Wake fired
	fn   func() // run on the loop (gnet's EventLoop.Execute)
}

// hookRef is what the Conn's Out and Wake capture, so that a test can
// detach the test plumbing (sconn, socket) from a Conn it keeps.
type hookRef struct {
	events    chan event  // immutable
	sc        *sconn      // owned by the loop; nil once detached
	closed    atomic.Bool // set once Close has returned
	lateWakes atomic.Int32
	wakes     atomic.Int32
}

// sconn is the loop's state for one accepted connection.
type sconn struct {
	s    *server
	sock net.Conn
	tc   *tlsmem.Conn
	ref  *hookRef

	// Set by setup.
	split   int                       // feed this many bytes at a time; 0: whatever was read
	corrupt bool                      // flip the last byte of the first read after the handshake
	onData  func(sc *sconn, p []byte) // plaintext; default echo
	outSize []int                     // recorded sizes of Out calls, if non-nil

	// Owned by the loop.
	inbound          []byte // read from the socket, not yet taken by Feed (gnet's inbound buffer)
	fed              int    // bytes Feed took
	partialFeeds     int    // Feeds that took less than offered
	partialHandshake int    // of which before the handshake completed
	plain            []byte
	isOpen           bool
	finished         bool
	got              []byte // plaintext seen, when onData is collect

	opened chan struct{} // closed when the handshake is seen complete
	errc   chan error    // the error that ended the conn
}

func startServer(t testing.TB, cfg *tls.Config, setup func(*sconn)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{
		t: t, ln: ln, cfg: cfg, setup: setup,
		events: make(chan event, 1<<14),
		conns:  make(chan *sconn, 4096),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go s.loop()
	go s.accept()
	t.Cleanup(func() {
		ln.Close()
		close(s.quit)
		<-s.done
	})
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

func (s *server) accept() {
	for {
		sock, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.send(event{fn: func() { s.open(sock) }}) {
			sock.Close()
			return
		}
	}
}

// send queues ev for the loop, unless the server stopped.
func (s *server) send(ev event) bool {
	select {
	case s.events <- ev:
		return true
	case <-s.quit:
		return false
	}
}

// exec runs fn on the loop and waits for it.
func (s *server) exec(fn func()) {
	s.t.Helper()
	done := make(chan struct{})
	if !s.send(event{fn: func() { fn(); close(done) }}) {
		s.t.Fatal("server stopped")
	}
	<-done
}

func (s *server) loop() {
	defer close(s.done)
	for {
		select {
		case <-s.quit:
			return
		case ev := <-s.events:
			s.handle(ev)
		}
	}
}

func (s *server) handle(ev event) {
	if ev.fn != nil {
		ev.fn()
		return
	}
	sc := ev.ref.sc
	if sc == nil || sc.finished {
		return
	}
	switch {
	case ev.wake:
		sc.drain()
	case ev.err != nil:
		sc.finish(fmt.Errorf("socket: %w", ev.err))
	default:
		sc.inbound = append(sc.inbound, ev.data...)
		sc.drain()
	}
}

// open sets up an accepted socket on the loop.
func (s *server) open(sock net.Conn) {
	ref := &hookRef{events: s.events}
	sc := &sconn{
		s: s, sock: sock, ref: ref,
		onData: echo,
		opened: make(chan struct{}),
		errc:   make(chan error, 1),
	}
	ref.sc = sc
	sc.tc = tlsmem.Server(s.cfg, tlsmem.Options{
		Out:         ref.out,
		Wake:        ref.wake,
		LocalAddr:   sock.LocalAddr(),
		RemoteAddr:  sock.RemoteAddr(),
		MaxBuffered: s.max,
	})
	if s.setup != nil {
		s.setup(sc)
	}
	go reader(s, ref, sock)
	s.conns <- sc
}

// out is Options.Out: a plain socket write, on the loop.
func (r *hookRef) out(bufs [][]byte) error {
	sc := r.sc
	if sc == nil {
		return nil
	}
	for _, b := range bufs {
		if sc.outSize != nil {
			sc.outSize = append(sc.outSize, len(b))
		}
		if _, err := sc.sock.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// wake is Options.Wake: it must not block, so a full queue hands the event
// to a goroutine (test plumbing) instead.
func (r *hookRef) wake() {
	r.wakes.Add(1)
	if r.closed.Load() {
		r.lateWakes.Add(1)
	}
	ev := event{ref: r, wake: true}
	select {
	case r.events <- ev:
	default:
		go func() { r.events <- ev }()
	}
}

// reader stands in for epoll: it reads the socket and hands each read to
// the loop in a fresh buffer.
func reader(s *server, ref *hookRef, sock net.Conn) {
	for {
		buf := make([]byte, 32<<10)
		n, err := sock.Read(buf)
		if n > 0 && !s.send(event{ref: ref, data: buf[:n]}) {
			return
		}
		if err != nil {
			s.send(event{ref: ref, err: err})
			return
		}
	}
}

// drain plays gnet's OnTraffic over the bytes read but not yet fed
// (inbound): Feed split bytes at a time, discard what it took after
// poisoning it (Feed must have copied it), Read after each piece; stop when
// all is taken or Feed takes nothing (the handshake is busy; a Wake
// follows). It runs after each socket read and each Wake.
func (sc *sconn) drain() {
	if sc.corrupt && sc.isOpen && len(sc.inbound) > 0 {
		sc.inbound[len(sc.inbound)-1] ^= 0xff
		sc.corrupt = false
	}
	for {
		piece := sc.inbound
		if sc.split > 0 && len(piece) > sc.split {
			piece = piece[:sc.split]
		}
		n, err := sc.tc.Feed(piece)
		if err != nil {
			sc.finish(err)
			return
		}
		for i := range piece[:n] {
			piece[i] = 0xAA
		}
		sc.inbound = sc.inbound[n:]
		sc.fed += n
		if n < len(piece) {
			sc.partialFeeds++
			if !sc.isOpen {
				sc.partialHandshake++
			}
		}
		if !sc.read() || n == 0 || len(sc.inbound) == 0 {
			return
		}
	}
}

// read is the loop's answer to a Feed or a Wake.
func (sc *sconn) read() bool {
	plain, err := sc.tc.Read(sc.plain[:0])
	sc.plain = plain
	if !sc.isOpen && sc.tc.State() == tlsmem.StateOpen {
		sc.isOpen = true
		close(sc.opened)
	}
	if len(plain) > 0 && sc.onData != nil {
		sc.onData(sc, plain)
	}
	if err != nil {
		sc.finish(err)
		return false
	}
	return !sc.finished
}

// finish closes the Conn, then the socket, and reports err.
func (sc *sconn) finish(err error) {
	if sc.finished {
		return
	}
	sc.finished = true
	sc.tc.Close()
	sc.ref.closed.Store(true)
	sc.sock.Close()
	sc.errc <- err
}

// detach leaves the Conn open and alone: the socket is closed, and Out and
// Wake no longer reach the plumbing. Loop only.
func (sc *sconn) detach() {
	sc.finished = true
	sc.ref.sc = nil
	sc.sock.Close()
}

func echo(sc *sconn, p []byte) {
	if err := sc.tc.Write(p); err != nil {
		sc.finish(err)
	}
}

func collect(sc *sconn, p []byte) { sc.got = append(sc.got, p...) }

// next returns the next accepted conn.
func (s *server) next(t testing.TB) *sconn {
	t.Helper()
	select {
	case sc := <-s.conns:
		return sc
	case <-time.After(waitLong()):
		t.Fatal("no connection accepted")
		return nil
	}
}

// waitOpen waits until the loop saw sc's handshake complete.
func waitOpen(t testing.TB, sc *sconn) {
	t.Helper()
	select {
	case <-sc.opened:
	case err := <-sc.errc:
		select {
		case <-sc.opened: // both were ready
			sc.errc <- err
			return
		default:
		}
		t.Fatalf("server conn ended before the handshake completed: %v", err)
	case <-time.After(waitLong()):
		t.Fatal("server handshake did not complete")
	}
}

// waitErr waits for the error that ended sc.
func waitErr(t testing.TB, sc *sconn) error {
	t.Helper()
	select {
	case err := <-sc.errc:
		return err
	case <-time.After(waitLong()):
		t.Fatal("server conn did not end")
		return nil
	}
}

// dial connects a crypto/tls client and completes its handshake.
func dial(t testing.TB, s *server, cfg *tls.Config) *tls.Conn {
	t.Helper()
	raw, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, cfg)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLong()))
	if err := c.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	return c
}

func runtimeNumGoroutine() int { return runtime.NumGoroutine() }
