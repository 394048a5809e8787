package tlsmem_test

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/internal/tlsmem"
)

// memPair is a crypto/tls client and a tlsmem.Conn joined in memory, for
// benchmarks: no socket, so the figures are the TLS work and this package's.
type memPair struct {
	client *tls.Conn
	server *tlsmem.Conn
	mc     *memConn
	plain  []byte
}

// memConn is the client's in-memory net.Conn. Its Read blocks (the client
// handshake runs on a goroutine); after the handshake the benchmark only
// reads what is already there.
type memConn struct {
	mu       sync.Mutex
	cond     sync.Cond
	toClient []byte // the server's Out appends
	roff     int
	toServer []byte        // the client's writes
	notify   chan struct{} // cap 1: the client wrote, or the server woke
	discard  bool          // the server's output is dropped (server-only benchmarks)
}

func (m *memConn) Read(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.toClient) == m.roff {
		m.cond.Wait()
	}
	n := copy(p, m.toClient[m.roff:])
	m.roff += n
	if m.roff == len(m.toClient) {
		m.toClient, m.roff = m.toClient[:0], 0
	}
	return n, nil
}

func (m *memConn) Write(p []byte) (int, error) {
	m.mu.Lock()
	m.toServer = append(m.toServer, p...)
	m.mu.Unlock()
	m.poke()
	return len(p), nil
}

func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

func (m *memConn) poke() {
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

func (m *memConn) out(bufs [][]byte) error {
	m.mu.Lock()
	if !m.discard {
		for _, b := range bufs {
			m.toClient = append(m.toClient, b...)
		}
	}
	m.cond.Broadcast()
	m.mu.Unlock()
	return nil
}

// pump feeds what the client wrote to the server, and returns the
// plaintext the server read (valid until the next pump).
func (p *memPair) pump(tb testing.TB) []byte {
	p.mc.mu.Lock()
	in := p.mc.toServer
	p.mc.mu.Unlock()
	if n, err := p.server.Feed(in); n != len(in) || err != nil {
		tb.Fatalf("Feed took %d of %d: %v", n, len(in), err)
	}
	p.mc.mu.Lock()
	p.mc.toServer = p.mc.toServer[:0] // Feed copied it
	p.mc.mu.Unlock()
	plain, err := p.server.Read(p.plain[:0])
	if err != nil {
		tb.Fatal(err)
	}
	p.plain = plain
	return plain
}

func newMemPair(tb testing.TB, version uint16) *memPair {
	tb.Helper()
	mc := &memConn{notify: make(chan struct{}, 1)}
	mc.cond.L = &mc.mu
	scfg := serverConfig()
	scfg.DynamicRecordSizingDisabled = true
	p := &memPair{mc: mc, plain: make([]byte, 0, 64<<10)}
	p.server = tlsmem.Server(scfg, tlsmem.Options{Out: mc.out, Wake: mc.poke})
	ccfg := clientConfig(version)
	ccfg.DynamicRecordSizingDisabled = true
	p.client = tls.Client(mc, ccfg)
	done := make(chan error, 1)
	go func() { done <- p.client.Handshake() }()
	clientDone := false
	for !clientDone || p.server.State() != tlsmem.StateOpen {
		select {
		case err := <-done:
			if err != nil {
				tb.Fatal(err)
			}
			clientDone = true
		case <-mc.notify:
		}
		p.pump(tb)
	}
	checkNoHandshakeGoroutines(tb)
	return p
}

// BenchmarkRoundTrip16K: the client writes a 16 KiB record, the server
// Feeds, Reads and Writes it back, the client reads it: both sides' TLS
// work, one goroutine.
func BenchmarkRoundTrip16K(b *testing.B) {
	for _, v := range versions {
		b.Run(v.name, func(b *testing.B) {
			p := newMemPair(b, v.version)
			msg := payload(16<<10, 9)
			got := make([]byte, len(msg))
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.client.Write(msg); err != nil {
					b.Fatal(err)
				}
				if err := p.server.Write(p.pump(b)); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(p.client, got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// serverOnly prepares batches of client ciphertext (16 KiB records) and
// has the server Feed, Read and Write each back, its output dropped.
type serverOnly struct {
	p       *memPair
	msg     []byte
	records [][]byte
}

func newServerOnly(tb testing.TB, version uint16) *serverOnly {
	s := &serverOnly{p: newMemPair(tb, version), msg: payload(16<<10, 9)}
	s.p.mc.discard = true
	return s
}

// refill encrypts n client records.
func (s *serverOnly) refill(tb testing.TB, n int) {
	s.records = s.records[:0]
	for range n {
		if _, err := s.p.client.Write(s.msg); err != nil {
			tb.Fatal(err)
		}
		s.p.mc.mu.Lock()
		s.records = append(s.records, append([]byte(nil), s.p.mc.toServer...))
		s.p.mc.toServer = s.p.mc.toServer[:0]
		s.p.mc.mu.Unlock()
	}
}

// op serves one prepared record.
func (s *serverOnly) op(tb testing.TB) {
	rec := s.records[0]
	s.records = s.records[1:]
	if n, err := s.p.server.Feed(rec); n != len(rec) || err != nil {
		tb.Fatalf("Feed took %d of %d: %v", n, len(rec), err)
	}
	plain, err := s.p.server.Read(s.p.plain[:0])
	if err != nil || len(plain) != len(s.msg) {
		tb.Fatalf("Read: %d bytes, %v", len(plain), err)
	}
	s.p.plain = plain
	if err := s.p.server.Write(plain); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkReadWrite16K: the server's side only: Feed + Read (decrypt) +
// Write (encrypt) of one 16 KiB record, Out dropping the output.
func BenchmarkReadWrite16K(b *testing.B) {
	const batch = 256
	for _, v := range versions {
		b.Run(v.name, func(b *testing.B) {
			s := newServerOnly(b, v.version)
			b.SetBytes(int64(len(s.msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				b.StopTimer()
				s.refill(b, min(batch, b.N-i))
				b.StartTimer()
				for len(s.records) > 0 {
					s.op(b)
				}
			}
		})
	}
}
