package tlsmem_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/internal/tlsmem"
)

// payload returns n deterministic pseudo-random bytes.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x7115))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// roundTrip sends msg from the client while reading its echo back.
func roundTrip(t testing.TB, c *tls.Conn, msg []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(waitLong()))
	werr := make(chan error, 1)
	go func() { _, err := c.Write(msg); werr <- err }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo of %d bytes: %v", len(msg), err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("client write: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo of %d bytes differs", len(msg))
	}
}

// TestEcho drives handshakes and 20–60 KB echoes in both directions from
// the single loop goroutine, and checks that no handshake goroutine is
// left once the handshake is done.
func TestEcho(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			s := startServer(t, serverConfig(), nil)
			c := dial(t, s, clientConfig(v.version))
			sc := s.next(t)
			waitOpen(t, sc)
			checkNoHandshakeGoroutines(t)
			for i, n := range []int{20_000, 33_333, 47_011, 60_000} {
				roundTrip(t, c, payload(n, uint64(i)))
			}
			checkNoHandshakeGoroutines(t)
			var st tls.ConnectionState
			s.exec(func() { st = sc.tc.ConnectionState() })
			if st.Version != v.version || !st.HandshakeComplete {
				t.Fatalf("server state: version %x complete %v", st.Version, st.HandshakeComplete)
			}
		})
	}
}

// TestFeedOneByteAtATime feeds every byte, handshake included, on its own:
// records (and handshake messages) split at every point, each piece
// poisoned once fed.
func TestFeedOneByteAtATime(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			s := startServer(t, serverConfig(), func(sc *sconn) { sc.split = 1 })
			c := dial(t, s, clientConfig(v.version))
			sc := s.next(t)
			waitOpen(t, sc)
			checkNoHandshakeGoroutines(t)
			roundTrip(t, c, payload(20_000, 1))
			roundTrip(t, c, []byte("x"))
			roundTrip(t, c, payload(33_333, 2))
		})
	}
}

// TestFeedBackpressure: with MaxBuffered far below a ClientHello and a
// record, Feed takes part of what it is offered; the handshake goroutine
// wakes the loop when it has made room, and after the handshake the loop
// alternates Feed and Read. Everything arrives, split at the limit.
func TestFeedBackpressure(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			s := startServer(t, serverConfig(), nil)
			s.exec(func() { s.max = 100 }) // Options.MaxBuffered of the next conns
			c := dial(t, s, clientConfig(v.version))
			sc := s.next(t)
			waitOpen(t, sc)
			roundTrip(t, c, payload(60_000, 5))
			var partial, during, fed int
			s.exec(func() { partial, during, fed = sc.partialFeeds, sc.partialHandshake, sc.fed })
			t.Logf("%d bytes fed, %d partial Feeds, %d during the handshake", fed, partial, during)
			if during == 0 || partial == during {
				t.Fatal("Feed was not cut short both during and after the handshake; the test does not test the limit")
			}
		})
	}
}

// TestALPNAndSNI checks what ConnectionState reports on the server.
func TestALPNAndSNI(t *testing.T) {
	tests := []struct {
		name       string
		version    uint16
		clientALPN []string
		serverName string
		wantALPN   string
	}{
		{name: "h2 preferred/TLS13", version: tls.VersionTLS13, clientALPN: []string{"h2", "http/1.1"}, serverName: "example.test", wantALPN: "h2"},
		{name: "h2 preferred/TLS12", version: tls.VersionTLS12, clientALPN: []string{"http/1.1", "h2"}, serverName: "example.test", wantALPN: "h2"},
		{name: "http1 only", version: tls.VersionTLS13, clientALPN: []string{"http/1.1"}, serverName: "other.test", wantALPN: "http/1.1"},
		{name: "no ALPN", version: tls.VersionTLS12, serverName: "other.test", wantALPN: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, serverConfig("h2", "http/1.1"), nil)
			cfg := clientConfig(tt.version)
			cfg.NextProtos = tt.clientALPN
			cfg.ServerName = tt.serverName
			c := dial(t, s, cfg)
			sc := s.next(t)
			waitOpen(t, sc)
			var st tls.ConnectionState
			s.exec(func() { st = sc.tc.ConnectionState() })
			if st.NegotiatedProtocol != tt.wantALPN {
				t.Errorf("NegotiatedProtocol = %q, want %q", st.NegotiatedProtocol, tt.wantALPN)
			}
			if st.ServerName != tt.serverName {
				t.Errorf("ServerName = %q, want %q", st.ServerName, tt.serverName)
			}
			if st.Version != tt.version {
				t.Errorf("Version = %x, want %x", st.Version, tt.version)
			}
			if got := c.ConnectionState().NegotiatedProtocol; got != tt.wantALPN {
				t.Errorf("client NegotiatedProtocol = %q", got)
			}
		})
	}
}

// TestHandshakeGarbage: a peer that does not speak TLS fails the
// handshake; Read reports it as a *HandshakeError and the goroutine ends.
func TestHandshakeGarbage(t *testing.T) {
	tests := []struct {
		name         string
		in           []byte
		recordHeader bool // errors.As finds a tls.RecordHeaderError
		alert        bool // the server answers with an alert record
	}{
		{name: "http request", in: []byte("GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"), recordHeader: true},
		{name: "sslv2 hello", in: []byte{0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15}, recordHeader: true, alert: true},
		{name: "oversized record", in: []byte{0x16, 0x03, 0x01, 0xff, 0xff, 0x01}, recordHeader: true, alert: true},
		{name: "bad client hello", in: []byte{0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef}, alert: true},
		{name: "fatal alert", in: []byte{0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, serverConfig(), nil)
			raw, err := net.Dial("tcp", s.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if _, err := raw.Write(tt.in); err != nil {
				t.Fatal(err)
			}
			sc := s.next(t)
			err = waitErr(t, sc)
			var he *tlsmem.HandshakeError
			if !errors.As(err, &he) {
				t.Fatalf("err = %v (%T), want a *tlsmem.HandshakeError", err, err)
			}
			var rhe tls.RecordHeaderError
			if got := errors.As(err, &rhe); got != tt.recordHeader {
				t.Errorf("errors.As(RecordHeaderError) = %v, want %v (err %v)", got, tt.recordHeader, err)
			}
			t.Logf("%v", err)
			checkNoHandshakeGoroutines(t)
			raw.SetReadDeadline(time.Now().Add(waitLong()))
			reply, _ := io.ReadAll(raw) // the server closed the socket after its answer
			if gotAlert := len(reply) > 0 && reply[0] == 0x15; gotAlert != tt.alert {
				t.Errorf("reply % x: alert %v, want %v", reply, gotAlert, tt.alert)
			}
		})
	}
}

// stallConn lets the client write `allow` times, then blocks its writes
// until release is closed.
type stallConn struct {
	net.Conn
	allow   int
	stalled chan struct{} // closed at the first blocked write
	release chan struct{}
	once    sync.Once
}

func (c *stallConn) Write(p []byte) (int, error) {
	if c.allow > 0 {
		c.allow--
		return c.Conn.Write(p)
	}
	c.once.Do(func() { close(c.stalled) })
	<-c.release
	return 0, net.ErrClosed
}

// TestCloseEndsStalledHandshake: a client that stops mid-handshake leaves
// the goroutine blocked in its read; Close (the caller's handshake timeout)
// ends it promptly, and Wake is not called after Close returned.
func TestCloseEndsStalledHandshake(t *testing.T) {
	type stall struct {
		name    string
		version uint16
		partial []byte // raw bytes to send; nil: a real client stalling after its ClientHello
	}
	tests := []stall{
		{name: "partial record", partial: []byte{0x16, 0x03, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7c, 0x03, 0x03}},
		{name: "after ClientHello/TLS12", version: tls.VersionTLS12},
		{name: "after ClientHello/TLS13", version: tls.VersionTLS13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, serverConfig(), nil)
			raw, err := net.Dial("tcp", s.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var clientDone chan error
			var sconnRaw *stallConn
			if tt.partial != nil {
				if _, err := raw.Write(tt.partial); err != nil {
					t.Fatal(err)
				}
			} else {
				sconnRaw = &stallConn{Conn: raw, allow: 1, stalled: make(chan struct{}), release: make(chan struct{})}
				clientDone = make(chan error, 1)
				go func() { clientDone <- tls.Client(sconnRaw, clientConfig(tt.version)).Handshake() }()
				select {
				case <-sconnRaw.stalled: // the server's flight arrived; it now waits for ours
				case <-time.After(waitLong()):
					t.Fatal("client did not reach its second flight")
				}
			}
			sc := s.next(t)
			checkFor(t, waitLong(), time.Millisecond, func() error {
				if n := tlsmem.HandshakeGoroutines(); n != 1 {
					return fmt.Errorf("HandshakeGoroutines() = %d, want 1", n)
				}
				return nil
			})
			var st tlsmem.State
			s.exec(func() { st = sc.tc.State() })
			if st != tlsmem.StateHandshake {
				t.Fatalf("State() = %v, want handshake", st)
			}
			start := time.Now()
			s.exec(func() { sc.finish(errors.New("handshake timeout")) })
			checkNoHandshakeGoroutines(t)
			t.Logf("goroutine gone %v after Close", time.Since(start))
			if n := sc.ref.lateWakes.Load(); n != 0 {
				t.Errorf("Wake called %d times after Close returned", n)
			}
			if sconnRaw != nil {
				close(sconnRaw.release)
				if err := <-clientDone; err == nil {
					t.Error("client handshake succeeded")
				}
			}
		})
	}
}

// TestCloseNotify: the client's close_notify makes Read return exactly
// io.EOF after the plaintext before it; the server's Close sends one.
func TestCloseNotify(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name+"/from client", func(t *testing.T) {
			s := startServer(t, serverConfig(), func(sc *sconn) { sc.onData = collect })
			c := dial(t, s, clientConfig(v.version))
			sc := s.next(t)
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if err := waitErr(t, sc); err != io.EOF {
				t.Fatalf("err = %v, want io.EOF", err)
			}
			var got string
			s.exec(func() { got = string(sc.got) })
			if got != "hello" {
				t.Fatalf("plaintext %q, want hello", got)
			}
		})
		t.Run(v.name+"/from server", func(t *testing.T) {
			s := startServer(t, serverConfig(), nil)
			c := dial(t, s, clientConfig(v.version))
			sc := s.next(t)
			roundTrip(t, c, []byte("ping"))
			s.exec(func() { sc.finish(errors.New("done")) })
			c.SetReadDeadline(time.Now().Add(waitLong()))
			if n, err := c.Read(make([]byte, 10)); err != io.EOF {
				t.Fatalf("client Read = %d, %v, want io.EOF", n, err)
			}
		})
	}
}

// TestBadRecordMAC: a corrupted record after the handshake is a real
// error, not "need more", and the client hears the alert.
func TestBadRecordMAC(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			s := startServer(t, serverConfig(), func(sc *sconn) { sc.corrupt = true })
			c := dial(t, s, clientConfig(v.version))
			sc := s.next(t)
			waitOpen(t, sc)
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			err := waitErr(t, sc)
			var he *tlsmem.HandshakeError
			if err == nil || err == io.EOF || errors.As(err, &he) || !strings.Contains(err.Error(), "bad record MAC") {
				t.Fatalf("err = %v, want a bad record MAC", err)
			}
			c.SetReadDeadline(time.Now().Add(waitLong()))
			if _, err := c.Read(make([]byte, 10)); err == nil || !strings.Contains(err.Error(), "bad record MAC") {
				t.Fatalf("client Read err = %v, want the bad record MAC alert", err)
			}
		})
	}
}

// TestConcurrentHandshakes: 200 clients at once against one loop.
func TestConcurrentHandshakes(t *testing.T) {
	const n = 200
	s := startServer(t, serverConfig(), nil)
	before := runtimeNumGoroutine()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := versions[i%2].version
			raw, err := net.Dial("tcp", s.addr())
			if err != nil {
				errs <- err
				return
			}
			c := tls.Client(raw, clientConfig(v))
			defer c.Close()
			c.SetDeadline(time.Now().Add(waitLong()))
			msg := fmt.Appendf(nil, "ping %d", i)
			if _, err := c.Write(msg); err != nil { // handshakes first
				errs <- err
				return
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("client %d: %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for range n {
		sc := s.next(t)
		waitOpen(t, sc)
		waitErr(t, sc) // the client's close
	}
	checkNoHandshakeGoroutines(t)
	checkFor(t, waitLong(), 5*time.Millisecond, func() error {
		if now := runtimeNumGoroutine(); now > before {
			return fmt.Errorf("%d goroutines, %d before", now, before)
		}
		return nil
	})
}

// TestSessionResumption: tickets issued by the handshake goroutine resume.
func TestSessionResumption(t *testing.T) {
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			s := startServer(t, serverConfig(), nil)
			cfg := clientConfig(v.version)
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			for i, wantResume := range []bool{false, true} {
				c := dial(t, s, cfg)
				sc := s.next(t)
				roundTrip(t, c, []byte("ticket please")) // a TLS 1.3 client takes its ticket on Read
				var st tls.ConnectionState
				s.exec(func() { st = sc.tc.ConnectionState() })
				if st.DidResume != wantResume || c.ConnectionState().DidResume != wantResume {
					t.Fatalf("conn %d: server DidResume %v, client %v, want %v", i, st.DidResume, c.ConnectionState().DidResume, wantResume)
				}
				c.Close()
				waitErr(t, sc)
			}
			checkNoHandshakeGoroutines(t)
		})
	}
}

// TestWritev: small buffers are gathered, large ones encrypted in place,
// and the client reads them in order.
func TestWritev(t *testing.T) {
	var want []byte
	var bufs [][]byte
	for i, n := range []int{10, 5000, 100, 3000, 1, 2047, 2048, 16 << 10, 17 << 10, 9, 70 << 10} {
		b := payload(n, uint64(100+i))
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	for i := range 40 { // more small ones than one record holds
		b := payload(700, uint64(200+i))
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	s := startServer(t, serverConfig(), func(sc *sconn) {
		sc.onData = func(sc *sconn, p []byte) {
			if err := sc.tc.Writev(bufs); err != nil {
				sc.finish(err)
			}
		}
	})
	c := dial(t, s, clientConfig(tls.VersionTLS13))
	if _, err := c.Write([]byte("go")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("Writev output differs")
	}
}

// TestLargeWriteBatches: a 1 MiB Write reaches Out in bounded batches.
func TestLargeWriteBatches(t *testing.T) {
	msg := payload(1<<20, 7)
	s := startServer(t, serverConfig(), func(sc *sconn) {
		sc.outSize = []int{}
		sc.onData = func(sc *sconn, p []byte) {
			if err := sc.tc.Write(msg); err != nil {
				sc.finish(err)
			}
		}
	})
	c := dial(t, s, clientConfig(tls.VersionTLS13))
	sc := s.next(t)
	if _, err := c.Write([]byte("go")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("output differs")
	}
	var sizes []int
	s.exec(func() { sizes = sc.outSize })
	biggest := 0
	for _, n := range sizes {
		biggest = max(biggest, n)
	}
	t.Logf("%d Out calls, biggest %d bytes", len(sizes), biggest)
	if biggest > 80<<10 {
		t.Errorf("an Out call carried %d bytes; want batches near 64 KiB", biggest)
	}
}

// TestMisuse covers the calls a loop can get wrong, and Feed's limit,
// without a socket.
func TestMisuse(t *testing.T) {
	var outs int
	c := tlsmem.Server(serverConfig(), tlsmem.Options{
		Out:         func([][]byte) error { outs++; return nil },
		Wake:        func() {},
		MaxBuffered: 64,
	})
	if st := c.State(); st != tlsmem.StateNew {
		t.Fatalf("State() = %v, want new", st)
	}
	// A record header announcing 128 bytes, and more: Feed takes 64 and
	// starts the goroutine, which waits for the rest of the record.
	hello := append([]byte{0x16, 0x03, 0x01, 0x00, 0x80}, make([]byte, 100)...)
	if n, err := c.Feed(hello); n != 64 || err != nil {
		t.Fatalf("Feed(105 bytes) = %d, %v; want 64, nil", n, err)
	}
	if st := c.State(); st != tlsmem.StateHandshake {
		t.Fatalf("State() = %v, want handshake", st)
	}
	if n, err := c.Feed(nil); n != 0 || err != nil {
		t.Fatalf("Feed(nil) = %d, %v", n, err)
	}
	if err := c.Write([]byte("x")); err != tlsmem.ErrHandshaking {
		t.Fatalf("Write during the handshake = %v", err)
	}
	if err := c.Writev([][]byte{[]byte("x")}); err != tlsmem.ErrHandshaking {
		t.Fatalf("Writev during the handshake = %v", err)
	}
	if st := c.ConnectionState(); st.HandshakeComplete || st.Version != 0 {
		t.Fatalf("ConnectionState during the handshake = %+v", st)
	}
	if p, err := c.Read(nil); err != nil || len(p) != 0 {
		t.Fatalf("Read during the handshake = %q, %v", p, err)
	}
	c.Close()
	c.Close()
	checkNoHandshakeGoroutines(t)
	if _, err := c.Feed([]byte("x")); err != net.ErrClosed {
		t.Fatalf("Feed after Close = %v", err)
	}
	if _, err := c.Read(nil); err != net.ErrClosed {
		t.Fatalf("Read after Close = %v", err)
	}
	if err := c.Write([]byte("x")); err != net.ErrClosed {
		t.Fatalf("Write after Close = %v", err)
	}
	if outs != 0 {
		t.Fatalf("Out called %d times", outs)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Server without Out did not panic")
			}
		}()
		tlsmem.Server(serverConfig(), tlsmem.Options{Wake: func() {}})
	}()
}
