package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestTLSInputAfterCloseNotify: over HTTPS (HTTP/1.1), what a client
// sends after its close_notify, while its response is still on its way,
// is dropped undecrypted (RFC 8446 §6.1), not kept: before, it piled up
// in the connection's input buffer for as long as the client sent. The
// HTTP/2 case is TestHTTP2TLSInputAfterCloseNotify.
func TestTLSInputAfterCloseNotify(t *testing.T) {
	t.Parallel()
	s := tsStart(t, "", "", nil)
	c := tsDialHTTP11(t, s, 30*time.Second)
	// A whole request whose response goes on: the connection lives on
	// after the client's close_notify, for that response.
	if _, err := io.WriteString(c, "GET /hold HTTP/1.1\r\nHost: "+tsSecure+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	// The response's body is never read: closing it would wait for the
	// rest of it (the connection's close at the end ends the test).
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatalf("the response head: %v", err)
	}
	tsJunkAfterCloseNotify(t, s, c)
}

// tsDialHTTP11 is a TLS connection to s's listener that ALPN made
// http/1.1, with a deadline of d.
func tsDialHTTP11(t *testing.T, s *tsSetup, d time.Duration) *tls.Conn {
	t.Helper()
	cfg := s.pki.config(tsSecure)
	cfg.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", s.TLS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(d))
	return c
}

// tsJunkAfterCloseNotify sends c's close_notify, then 32 MiB of record
// headers on the raw socket, and fails unless the proxy read them all
// and grew by less than 16 MiB meanwhile (what a client sends after its
// close_notify is dropped undecrypted).
func tsJunkAfterCloseNotify(t *testing.T, s *tsSetup, c *tls.Conn) {
	t.Helper()
	if err := c.CloseWrite(); err != nil { // close_notify
		t.Fatal(err)
	}
	before, err := hRSS(s.p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	raw := c.NetConn()
	_ = raw.SetWriteDeadline(time.Now().Add(20 * time.Second)) // crypto/tls's close_notify set it to now
	junk := bytes.Repeat([]byte{0x17, 0x03, 0x03, 0x40, 0x00}, 64<<10/5)
	for sent := 0; sent < 32<<20; sent += len(junk) {
		if _, err := raw.Write(junk); err != nil {
			t.Fatalf("the proxy stopped reading after %d MiB: %v", sent>>20, err)
		}
	}
	after, err := hRSS(s.p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if grew := after - before; grew > 16<<20 {
		t.Errorf("the proxy grew by %d MiB while the client sent 32 MiB after its close_notify", grew>>20)
	}
}

// TestTLSHandshakeSlots: max-tls-handshakes counts handshakes under way,
// from the client's first bytes: sockets that send nothing hold no slot
// (before, each held one from accept until tls-handshake-timeout, and a
// few idle sockets locked every real client out); a client whose first
// bytes find every slot taken waits, unread, and goes on once one frees.
func TestTLSHandshakeSlots(t *testing.T) {
	t.Parallel()
	s := tsStart(t, "max-tls-handshakes = 1\nworkers = 1\ntls-handshake-timeout = 30s\n", "", nil)
	handshake := func(what string) {
		t.Helper()
		cfg := s.pki.config(tsSecure)
		d := &net.Dialer{Timeout: 10 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", s.TLS, cfg)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		c.Close()
	}
	var idle []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", s.TLS)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	handshake("beside 4 idle sockets") // before: waited 30 s for them, past the dial's 10 s

	// One slot, taken by a handshake under way (half a ClientHello).
	half, err := net.Dial("tcp", s.TLS)
	if err != nil {
		t.Fatal(err)
	}
	hello := tsClientHello(t, tsSecure)
	if _, err := half.Write(hello[:len(hello)/2]); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		cfg := s.pki.config(tsSecure)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 20 * time.Second}, "tcp", s.TLS, cfg)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	half.Close() // frees the slot: the waiting client goes on
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the client that waited for the slot: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the client that waited for the slot never got it")
	}
}

// TestTLSNoPriorKnowledgeH2: over TLS, HTTP/2 is what ALPN chose: a
// client that negotiated http/1.1 and sends the HTTP/2 preface gets no
// HTTP/2 (prior knowledge is for cleartext TCP, RFC 9113 §3.3). Before,
// the proxy answered it with its SETTINGS.
func TestTLSNoPriorKnowledgeH2(t *testing.T) {
	t.Parallel()
	s := tsStart(t, "http2 = on\n", "", nil)
	c := tsDialHTTP11(t, s, 10*time.Second)
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 9)
	n, _ := io.ReadFull(c, b)
	if n >= 4 && b[3] == 0x04 && string(b[:4]) != "HTTP" {
		t.Fatalf("got an HTTP/2 frame (%x) on a connection ALPN made http/1.1", b[:n])
	}
}

// TestTLSCloseNotifyMidBody: a client's close_notify in the middle of its
// request body cuts the request: the connection closes at once (as a
// plain connection's FIN closes it) and the node gets `end`. Before, the
// connection and the node's session waited for the rest of the body
// until timeout (60 s).
func TestTLSCloseNotifyMidBody(t *testing.T) {
	t.Parallel()
	s := tsStart(t, "", "", nil)
	c := tsDialHTTP11(t, s, 30*time.Second)
	if _, err := io.WriteString(c, "POST /cut HTTP/1.1\r\nHost: "+tsSecure+"\r\nContent-Length: 100\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil) // the echo node answers at the head
	if err != nil {
		t.Fatalf("the response head: %v", err)
	}
	if err := c.CloseWrite(); err != nil { // close_notify
		t.Fatal(err)
	}
	start := time.Now()
	_, err = io.Copy(io.Discard, resp.Body)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open %v after the client's close_notify mid-body", time.Since(start).Round(time.Second))
	}
	head, ok := s.Node.Log.headOf("/cut")
	if !ok {
		t.Fatal("the node never got the request")
	}
	s.Node.Log.waitType(t, head.SID, "end", 10*time.Second)
}

// TestTLSHandshakeIdleEvicted: while a client waits for a handshake slot,
// a handshake whose client went quiet for tls-handshake-idle-timeout
// gives its slot up (and is closed); without anyone waiting, it keeps it.
// Before, a socket that sent half a ClientHello and nothing more held its
// slot for the whole tls-handshake-timeout: a few of them, renewed, kept
// every real client out.
func TestTLSHandshakeIdleEvicted(t *testing.T) {
	t.Parallel()
	s := tsStart(t, "max-tls-handshakes = 1\nworkers = 1\ntls-handshake-timeout = 30s\ntls-handshake-idle-timeout = 500ms\n", "", nil)
	hello := tsClientHello(t, tsSecure)
	quiet := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", s.TLS)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write(hello[:len(hello)/2]); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Alone, a quiet handshake keeps its slot past the idle timeout.
	alone := quiet()
	_ = alone.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	if _, err := alone.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("a quiet handshake with no one waiting: %v, want it still open", err)
	}
	// A real client waits for the slot: the quiet one gives it up.
	cfg := s.pki.config(tsSecure)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.TLS, cfg)
	if err != nil {
		t.Fatalf("a client behind a quiet handshake: %v (before: it waited for tls-handshake-timeout, 30 s)", err)
	}
	c.Close()
	_ = alone.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(alone); isTimeout(err) {
		t.Fatal("the quiet handshake that gave its slot up is still open")
	}
}

// TestTLSCloseNotifyAfterRefusal: a request the proxy answers itself and
// closes after (HTTP/1.0, Host of no virtual host: 404), followed at once
// by the client's close_notify, gets its answer before the close. A first
// version of the close-at-once on close_notify mid-request cut it: the
// parser, stopped after the refusal, still looked mid-request.
func TestTLSCloseNotifyAfterRefusal(t *testing.T) {
	t.Parallel()
	s := tsStart(t, "", "", nil)
	for i := range 20 { // the two records come in one read now and then
		c := tsDialHTTP11(t, s, 20*time.Second)
		if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: nowhere.test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(c)
		if !bytes.HasPrefix(got, []byte("HTTP/1.1 404")) {
			t.Fatalf("try %d: %q, want the proxy's 404 before the close", i, got)
		}
		c.Close()
	}
}
