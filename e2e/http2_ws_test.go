package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/net/http2"
)

// WebSocket over HTTP/2 (RFC 8441): Go's x/net/http2 client opens
// extended CONNECT streams on h2c and on h2 over TLS; the echo node sees
// the handshake as an HTTP/1.1 one.

// h2wsStream is one WebSocket stream seen as a net.Conn: writes go into
// the request body, reads come from the response body, and read
// deadlines work (the body is read by a goroutine).
type h2wsStream struct {
	pw   *io.PipeWriter
	body io.ReadCloser
	in   chan []byte
	err  chan error
	buf  []byte

	mu       sync.Mutex
	deadline time.Time
}

func newH2wsStream(pw *io.PipeWriter, body io.ReadCloser) *h2wsStream {
	s := &h2wsStream{pw: pw, body: body, in: make(chan []byte), err: make(chan error, 1)}
	go func() {
		for {
			b := make([]byte, 32<<10)
			n, err := body.Read(b)
			if n > 0 {
				s.in <- b[:n]
			}
			if err != nil {
				s.err <- err
				return
			}
		}
	}()
	return s
}

func (s *h2wsStream) Read(p []byte) (int, error) {
	if len(s.buf) == 0 {
		s.mu.Lock()
		d := s.deadline
		s.mu.Unlock()
		var timeout <-chan time.Time
		if !d.IsZero() {
			tm := time.NewTimer(time.Until(d))
			defer tm.Stop()
			timeout = tm.C
		}
		select {
		case b := <-s.in:
			s.buf = b
		case err := <-s.err:
			s.err <- err
			return 0, err
		case <-timeout:
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func (s *h2wsStream) Write(p []byte) (int, error) { return s.pw.Write(p) }
func (s *h2wsStream) Close() error {
	s.pw.Close()
	return s.body.Close()
}
func (s *h2wsStream) LocalAddr() net.Addr  { return &net.TCPAddr{} }
func (s *h2wsStream) RemoteAddr() net.Addr { return &net.TCPAddr{} }
func (s *h2wsStream) SetDeadline(t time.Time) error {
	return s.SetReadDeadline(t)
}
func (s *h2wsStream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return nil
}
func (s *h2wsStream) SetWriteDeadline(time.Time) error { return nil }

// h2wsDial opens a WebSocket stream with an extended CONNECT; hdr adds
// request fields (version 13 unless hdr sets it). The stream is closed
// at cleanup.
func h2wsDial(t testing.TB, rt http.RoundTripper, url string, hdr http.Header) (*wConn, *http.Response) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest("CONNECT", url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	for k, v := range hdr {
		req.Header[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	resp, err := rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("extended CONNECT %s: %v", url, err)
	}
	s := newH2wsStream(pw, resp.Body)
	t.Cleanup(func() { s.Close() })
	return &wConn{Conn: s, r: s}, resp
}

// h2cTransport speaks h2c with prior knowledge to addr.
func h2cTransport(t testing.TB, addr string) *http2.Transport {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// TestHTTP2WebSocket: echo of text, binary past the stream window, a
// 1 MiB message, fragments and ping over one h2c connection, with several
// WebSocket streams and a plain request beside them; the subprotocol; the
// close handshake either way; bad handshakes.
func TestHTTP2WebSocket(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "http2 = on\n")
	tr := h2cTransport(t, p.Addr)

	c, resp := h2wsDial(t, tr, "http://x/h2/echo", http.Header{"Sec-Websocket-Protocol": {"nope, chat"}})
	if resp.StatusCode != 200 || resp.Header.Get("Sec-Websocket-Protocol") != "chat" {
		t.Fatalf("handshake: %d, subprotocol %q; want 200 chat", resp.StatusCode, resp.Header.Get("Sec-Websocket-Protocol"))
	}
	for _, m := range []struct {
		op  ws.OpCode
		msg []byte
	}{
		{ws.OpText, []byte("hello over h2")},
		{ws.OpBinary, wPattern(200000, 3)}, // past the 64 KiB windows
		{ws.OpText, wASCII(wMiB, 4)},
	} {
		if err := c.echo(m.op, m.msg); err != nil {
			t.Fatalf("echo: %v", err)
		}
	}
	// A fragmented message, split across DATA frames mid-header too.
	frames := append(wFrame(0x01, []byte("frag")), wFrame(0x80, []byte("mented"))...)
	for _, piece := range [][]byte{frames[:1], frames[1:7], frames[7:]} {
		if _, err := c.Write(piece); err != nil {
			t.Fatal(err)
		}
	}
	c.expectFrame(t, ws.OpText, []byte("fragmented"))
	if _, err := c.Write(wFrame(0x89, []byte("ping!"))); err != nil {
		t.Fatal(err)
	}
	c.expectFrame(t, ws.OpPong, []byte("ping!"))

	sess := e.wait(t, "/h2/echo", "4 messages", func(s wSession) bool { return len(s.Msgs) >= 4 })
	for k, want := range map[string]string{"REQUEST_METHOD": "GET", "HTTP_UPGRADE": "websocket",
		"SERVER_PROTOCOL": "HTTP/2", "HTTP_SEC_WEBSOCKET_VERSION": "13", "HTTP_HOST": "x"} {
		if sess.Env[k] != want {
			t.Errorf("environ %s = %q, want %q", k, sess.Env[k], want)
		}
	}

	// Beside it on the same connection: a second WebSocket whose node
	// ends it, and a plain request.
	c2, _ := h2wsDial(t, tr, "http://x/h2/second", nil)
	if err := c2.echo(ws.OpText, []byte("second")); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	if r, body := h2Get(t, hc, "http://x/plain"); r.StatusCode != 200 || body != "ok" {
		t.Errorf("plain GET beside WebSockets: %d %q", r.StatusCode, body)
	}
	if _, err := c2.Write(wFrame(0x81, []byte("node-end"))); err != nil {
		t.Fatal(err)
	}
	c2.expectClose(t, ws.StatusNormalClosure)
	e.waitEnd(t, "/h2/second")

	// The client closes: the proxy echoes the code and ends the stream;
	// the node gets `end`.
	if _, err := c.Write(wFrame(0x88, wCloseBody(1000, "bye"))); err != nil {
		t.Fatal(err)
	}
	c.expectClose(t, ws.StatusNormalClosure)
	e.waitEnd(t, "/h2/echo")

	// A violation (an unmasked frame) closes the stream with 1002.
	c3, _ := h2wsDial(t, tr, "http://x/h2/bad", nil)
	if _, err := c3.Write(wFrameMask(0x81, false, []byte("bare"))); err != nil {
		t.Fatal(err)
	}
	c3.expectClose(t, ws.StatusProtocolError)

	// Bad handshakes get HTTP statuses, and the connection goes on.
	for _, bad := range []struct {
		proto, version string
		want           int
	}{
		{"websocket", "8", 426},
		{"chat-over-h2", "13", 501},
	} {
		req, _ := http.NewRequest("CONNECT", "http://x/h2/refused", io.NopCloser(http.NoBody))
		req.Header.Set(":protocol", bad.proto)
		req.Header.Set("Sec-WebSocket-Version", bad.version)
		r, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s v%s: %v", bad.proto, bad.version, err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.StatusCode != bad.want {
			t.Errorf("%s v%s: %d, want %d", bad.proto, bad.version, r.StatusCode, bad.want)
		}
		if bad.want == 426 && r.Header.Get("Sec-Websocket-Version") != "13" {
			t.Errorf("426 without Sec-WebSocket-Version: 13: %v", r.Header)
		}
	}
	if r, body := h2Get(t, hc, "http://x/plain-after"); r.StatusCode != 200 || body != "ok" {
		t.Errorf("plain GET after the refusals: %d %q", r.StatusCode, body)
	}
}

// TestHTTP2WebSocketTLS: the same over h2 by ALPN on a bind-ssl listener.
func TestHTTP2WebSocketTLS(t *testing.T) {
	t.Parallel()
	pki := tsNewPKI(t, "")
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cert, key := pki.issue(t, "secure", tsSecure)
	vhost := fmt.Sprintf("[blastbeat:%s]\nnode = %s\nbind-ssl = %s\ncertificate = %s\nkey = %s\n", tsSecure, wNodeName, addr, cert, key)
	p := startProxy(t, "http2 = on\n", vhost)
	e, _ := wStartEcho(t, p.ZMQ)
	origin := fmt.Sprintf("%s:%d", tsSecure, port)
	tsWaitRoutable(t, tsHTTPClient(t, pki.config(""), addr), "https://"+origin+"/ready")

	cfg := pki.config(tsSecure)
	cfg.NextProtos = []string{"h2"}
	tr := &http2.Transport{
		TLSClientConfig: cfg,
		DialTLSContext: func(ctx context.Context, _, _ string, cfg *tls.Config) (net.Conn, error) {
			d := tls.Dialer{Config: cfg}
			return d.DialContext(ctx, "tcp", addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	c, resp := h2wsDial(t, tr, "https://"+origin+"/h2tls/echo", nil)
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
		t.Fatalf("handshake over TLS: %d %+v", resp.StatusCode, resp.TLS)
	}
	if err := c.echo(ws.OpBinary, wPattern(100000, 9)); err != nil {
		t.Fatal(err)
	}
	sess := e.wait(t, "/h2tls/echo", "1 message", func(s wSession) bool { return len(s.Msgs) >= 1 })
	if sess.Env["HTTPS"] != "on" || sess.Env["SERVER_PROTOCOL"] != "HTTP/2" {
		t.Errorf("environ HTTPS=%q SERVER_PROTOCOL=%q", sess.Env["HTTPS"], sess.Env["SERVER_PROTOCOL"])
	}
	if _, err := c.Write(wFrame(0x88, wCloseBody(1001, ""))); err != nil {
		t.Fatal(err)
	}
	c.expectClose(t, ws.StatusGoingAway)
	e.waitEnd(t, "/h2tls/echo")
}

// TestHTTP2WebSocketsBigMessagesAtOnce: 16 WebSocket streams of one h2c
// connection each send a 1 MiB message at the same time. Past
// max-read-ahead of partial messages held for the connection, only the
// stream holding the most gets window, the others wait for it: every
// message still comes back whole, in turn (the proxy held about one
// message, not sixteen).
func TestHTTP2WebSocketsBigMessagesAtOnce(t *testing.T) {
	t.Parallel()
	p, _, _ := wEchoProxy(t, "")
	tr := h2cTransport(t, p.Addr)
	const streams = 16
	conns := make([]*wConn, streams)
	for i := range conns {
		conns[i], _ = h2wsDial(t, tr, fmt.Sprintf("http://x/h2/big%d", i), nil)
	}
	errs := make(chan error, streams)
	for i, c := range conns {
		go func() {
			if err := c.echo(ws.OpBinary, wPattern(wMiB-16, byte(i))); err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			errs <- nil
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
