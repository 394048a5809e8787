package e2e

import (
	"bufio"
	"bytes"
	"context"
	wbinary "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/blastbeat/blastbeat/node"
)

// WebSocket end-to-end tests: real clients (gobwas/ws, Debian's
// python3-websockets, raw sockets for protocol violations) through the
// real proxy to an in-process echo node.

const (
	wNodeName = "we"
	// wVHosts: the catch-all vhost speaks two subprotocols, noproto.test
	// none; both are served by the echo node.
	wVHosts = "[blastbeat:*]\nnode = we\nwebsocket-protocols = chat, superchat\n\n" +
		"[blastbeat:noproto.test]\nnode = we\n"
	wKey    = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 §1.3
	wAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
	wMiB    = 1 << 20 // the default max-websocket-message
	wPython = "/usr/bin/python3"
)

// wMsg is one WebSocket message the node received.
type wMsg struct {
	Type string // websocket or websocket-binary
	Body []byte
}

// wSession is what the echo node saw of one WebSocket session.
type wSession struct {
	SID  string
	Env  map[string]string // environ of the handshake's uwsgi message
	Msgs []wMsg
	Ends int // `end` messages
}

// wEcho is the echo node's record, keyed by the handshake's PATH_INFO.
type wEcho struct {
	mu     sync.Mutex
	byPath map[string]*wSession
	bySID  map[string]*wSession
}

// wStartEcho runs the echo node: `websocket` and `websocket-binary` come
// back as they are; the text "node-end" makes it send `end`, "node-retry"
// `retry`, "node-junk" makes it send HTTP replies first (the proxy must
// drop them). A handshake
// whose path starts with /junk gets HTTP replies too, one starting with
// /greet a "welcome" text at once. Plain HTTP requests get 200 "ok".
func wStartEcho(t testing.TB, endpoint string) (*wEcho, *goNode) {
	e := &wEcho{byPath: map[string]*wSession{}, bySID: map[string]*wSession{}}
	g := startGoNode(t, endpoint, wNodeName, e.handle)
	return e, g
}

func (e *wEcho) handle(n *node.Node, m node.Message) {
	sid := string(m.SID)
	switch m.Type {
	case "uwsgi":
		env, err := node.Environ(m.Body)
		if err != nil {
			return
		}
		if env["HTTP_UPGRADE"] == "" {
			if env["PATH_INFO"] == "/ws-to-http" {
				// WebSocket replies to an HTTP session: dropped.
				_ = n.Send(m.SID, "websocket", []byte("stray text"))
				_ = n.Send(m.SID, "websocket-binary", []byte("stray binary"))
			}
			_ = n.Send(m.SID, "headers", []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			return
		}
		s := &wSession{SID: sid, Env: env}
		e.mu.Lock()
		e.byPath[env["PATH_INFO"]] = s
		e.bySID[sid] = s
		e.mu.Unlock()
		switch path := env["PATH_INFO"]; {
		case strings.HasPrefix(path, "/junk"):
			wSendJunk(n, m.SID)
		case strings.HasPrefix(path, "/greet"):
			_ = n.Send(m.SID, "websocket", []byte("welcome"))
		}
	case "websocket", "websocket-binary":
		e.mu.Lock()
		if s := e.bySID[sid]; s != nil {
			s.Msgs = append(s.Msgs, wMsg{Type: m.Type, Body: m.Body})
		}
		e.mu.Unlock()
		switch string(m.Body) {
		case "node-end":
			_ = n.Send(m.SID, "end", nil)
			return
		case "node-junk":
			wSendJunk(n, m.SID)
		case "node-retry":
			_ = n.Send(m.SID, "retry", nil) // the node will not serve it (node.Serve while it stops)
			return
		}
		_ = n.Send(m.SID, m.Type, m.Body)
	case "end":
		e.mu.Lock()
		if s := e.bySID[sid]; s != nil {
			s.Ends++
		}
		e.mu.Unlock()
	}
}

// wSendJunk sends HTTP replies that have no place in a WebSocket session.
func wSendJunk(n *node.Node, sid []byte) {
	_ = n.Send(sid, "headers", []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
	_ = n.Send(sid, "body", []byte("JUNK-BODY"))
	_ = n.Send(sid, "chunk", []byte("JUNK-CHUNK"))
	_ = n.Send(sid, "chunk", nil)
}

// get returns a copy of the session whose handshake had path.
func (e *wEcho) get(path string) (wSession, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.byPath[path]
	if !ok {
		return wSession{}, false
	}
	c := *s
	c.Msgs = append([]wMsg(nil), s.Msgs...)
	return c, true
}

// wait waits until the session of path satisfies cond.
func (e *wEcho) wait(t testing.TB, path, what string, cond func(s wSession) bool) wSession {
	t.Helper()
	var s wSession
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		var ok bool
		if s, ok = e.get(path); !ok {
			return fmt.Errorf("node saw no handshake for %s", path)
		}
		if !cond(s) {
			return fmt.Errorf("session %s: want %s; has %d messages, %d ends", path, what, len(s.Msgs), s.Ends)
		}
		return nil
	})
	return s
}

// waitEnd waits until the node got `end` for the session of path.
func (e *wEcho) waitEnd(t testing.TB, path string) wSession {
	t.Helper()
	return e.wait(t, path, "an end", func(s wSession) bool { return s.Ends > 0 })
}

// wEchoProxy starts a proxy with wVHosts and the extra [blastbeat] lines,
// and the echo node, and waits until it routes.
func wEchoProxy(t *testing.T, extra string) (*proxy, *wEcho, *goNode) {
	t.Helper()
	p := startProxy(t, extra, wVHosts)
	e, g := wStartEcho(t, p.ZMQ)
	waitRoutable(t, p, "", "/ready")
	return p, e, g
}

// wConn is a client connection; reads go through the handshake's reader,
// which may hold the first frames.
type wConn struct {
	net.Conn
	r io.Reader
}

func (c *wConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// wDialErr opens a WebSocket with gobwas/ws.
func wDialErr(p *proxy, path string, d ws.Dialer) (*wConn, ws.Handshake, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, br, hs, err := d.Dial(ctx, "ws://"+p.Addr+path)
	if err != nil {
		return nil, hs, err
	}
	c := &wConn{Conn: conn, r: conn}
	if br != nil {
		c.r = br
	}
	return c, hs, nil
}

// wDial is wDialErr that fails the test; the connection is closed at
// cleanup.
func wDial(t testing.TB, p *proxy, path string, d ws.Dialer) (*wConn, ws.Handshake) {
	t.Helper()
	c, hs, err := wDialErr(p, path, d)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, hs
}

// echo sends one message and reads the next data message back.
func (c *wConn) echo(op ws.OpCode, msg []byte) error {
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if err := wsutil.WriteClientMessage(c, op, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got, gop, err := wsutil.ReadServerData(c)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if gop != op || !bytes.Equal(got, msg) {
		return fmt.Errorf("echo of %v %q is %v %q", op, wShort(msg), gop, wShort(got))
	}
	return nil
}

// frame reads one frame; server frames must not be masked.
func (c *wConn) frame(timeout time.Duration) (ws.Frame, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	f, err := ws.ReadFrame(c)
	if err == nil && f.Header.Masked {
		err = fmt.Errorf("server frame %+v is masked", f.Header)
	}
	if err == nil && (f.Header.Rsv != 0 || !f.Header.Fin) {
		err = fmt.Errorf("server frame %+v: RSV bits or a fragment", f.Header)
	}
	return f, err
}

// expectFrame reads the next frame and checks its opcode and payload.
func (c *wConn) expectFrame(t testing.TB, op ws.OpCode, payload []byte) {
	t.Helper()
	f, err := c.frame(10 * time.Second)
	if err != nil {
		t.Fatalf("reading %v frame: %v", op, err)
	}
	if f.Header.OpCode != op || !bytes.Equal(f.Payload, payload) {
		t.Fatalf("got %v frame %q, want %v %q", f.Header.OpCode, wShort(f.Payload), op, wShort(payload))
	}
}

// expectClose reads a close frame with code, then expects the proxy to
// close the TCP connection.
func (c *wConn) expectClose(t testing.TB, code ws.StatusCode) {
	t.Helper()
	f, err := c.frame(10 * time.Second)
	if err != nil {
		t.Fatalf("reading the close frame (want %d): %v", code, err)
	}
	if f.Header.OpCode != ws.OpClose {
		t.Fatalf("got %v frame %q, want close %d", f.Header.OpCode, wShort(f.Payload), code)
	}
	got, reason := ws.ParseCloseFrameData(f.Payload)
	if got != code {
		t.Fatalf("close code %d (%q), want %d", got, reason, code)
	}
	if len(f.Payload) > 125 || !utf8.ValidString(reason) {
		t.Errorf("invalid close frame payload %q", f.Payload)
	}
	c.expectEOF(t)
}

// expectEOF expects the proxy to close the connection with nothing more.
func (c *wConn) expectEOF(t testing.TB) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [64]byte
	n, err := c.Read(buf[:])
	var ne net.Error
	switch {
	case n > 0:
		t.Fatalf("got % x after the close frame, want the connection closed", buf[:n])
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("connection still open 5 s after the close frame")
	case err == nil:
		t.Fatalf("read 0 bytes without error")
	}
}

// expectSilence checks that nothing arrives within d.
func (c *wConn) expectSilence(t testing.TB, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	var buf [64]byte
	n, err := c.Read(buf[:])
	var ne net.Error
	if n > 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %q (%v), want nothing", buf[:n], err)
	}
}

// wMask is the masking key of the frames the raw tests write.
var wMask = [4]byte{0x5a, 0xc3, 0x17, 0x8e}

// wFrame builds a client frame: first byte b0 (FIN, RSV, opcode), the
// minimal length encoding, and the payload masked with wMask.
func wFrame(b0 byte, payload []byte) []byte { return wFrameMask(b0, true, payload) }

func wFrameMask(b0 byte, masked bool, payload []byte) []byte {
	var mb byte
	if masked {
		mb = 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, mb|byte(n))
	case n <= 0xffff:
		b = append(b, mb|126, byte(n>>8), byte(n))
	default:
		b = wbinary.BigEndian.AppendUint64(append(b, mb|127), uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	b = append(b, wMask[:]...)
	start := len(b)
	b = append(b, payload...)
	ws.Cipher(b[start:], wMask, 0)
	return b
}

// wCloseBody is a close frame payload.
func wCloseBody(code uint16, reason string) []byte {
	return append(wbinary.BigEndian.AppendUint16(nil, code), reason...)
}

// wHandshake is an opening handshake for path with extra header lines.
func wHandshake(path, extra string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Key: " + wKey + "\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// wRawUpgrade opens a raw connection, sends the handshake for path
// followed by after, and checks the 101.
func wRawUpgrade(t testing.TB, p *proxy, path string, after []byte) *wConn {
	t.Helper()
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return wUpgradeOn(t, conn, bufio.NewReader(conn), path, after)
}

// wUpgradeOn upgrades an open connection.
func wUpgradeOn(t testing.TB, conn net.Conn, br *bufio.Reader, path string, after []byte) *wConn {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(append([]byte(wHandshake(path, "")), after...)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the handshake answer: %v", err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wAccept ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
		!strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
		t.Fatalf("handshake answer %d %v, want 101 with accept %s", resp.StatusCode, resp.Header, wAccept)
	}
	return &wConn{Conn: conn, r: br}
}

// wShort abbreviates a payload for messages.
func wShort(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q…(%d bytes)", b[:40], len(b))
	}
	return strconv.Quote(string(b))
}

// wPattern is n bytes of a recognisable pattern.
func wPattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) + seed
	}
	return b
}

// wASCII is n printable bytes (a valid text payload).
func wASCII(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + (byte(i)+seed)%26
	}
	return b
}

func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	c, hs := wDial(t, p, "/echo/gobwas?room=1", ws.Dialer{})
	if hs.Protocol != "" {
		t.Errorf("subprotocol %q chosen though none was offered", hs.Protocol)
	}
	msgs := []struct {
		name string
		op   ws.OpCode
		body []byte
	}{
		{name: "text", op: ws.OpText, body: []byte("hello, blastbeat")},
		{name: "empty text", op: ws.OpText, body: []byte{}},
		{name: "UTF-8 text", op: ws.OpText, body: []byte("héllo ✓ 🎉 — ☃")},
		{name: "binary", op: ws.OpBinary, body: wPattern(256, 1)},
		{name: "empty binary", op: ws.OpBinary, body: []byte{}},
		{name: "binary with NULs", op: ws.OpBinary, body: []byte{0, 0, 0xff, 0, 0x80}},
		{name: "text 125", op: ws.OpText, body: wASCII(125, 2)},
		{name: "text 126", op: ws.OpText, body: wASCII(126, 3)},
		{name: "binary 65535", op: ws.OpBinary, body: wPattern(65535, 4)},
		{name: "binary 65536", op: ws.OpBinary, body: wPattern(65536, 5)},
		{name: "text 200000", op: ws.OpText, body: wASCII(200000, 6)},
	}
	for _, m := range msgs {
		t.Run(m.name, func(t *testing.T) {
			if err := c.echo(m.op, m.body); err != nil {
				t.Fatal(err)
			}
		})
	}
	s := e.wait(t, "/echo/gobwas", "every message", func(s wSession) bool { return len(s.Msgs) >= len(msgs) })
	for k, v := range map[string]string{
		"REQUEST_METHOD":             "GET",
		"PATH_INFO":                  "/echo/gobwas",
		"QUERY_STRING":               "room=1",
		"SERVER_PROTOCOL":            "HTTP/1.1",
		"HTTP_UPGRADE":               "websocket",
		"HTTP_SEC_WEBSOCKET_VERSION": "13",
	} {
		if s.Env[k] != v {
			t.Errorf("handshake environ %s = %q, want %q", k, s.Env[k], v)
		}
	}
	if !strings.Contains(strings.ToLower(s.Env["HTTP_CONNECTION"]), "upgrade") || len(s.Env["HTTP_SEC_WEBSOCKET_KEY"]) != 24 {
		t.Errorf("handshake environ lacks Connection/Sec-WebSocket-Key: %v", s.Env)
	}
	if len(s.Msgs) != len(msgs) {
		t.Fatalf("node got %d messages, want %d", len(s.Msgs), len(msgs))
	}
	for i, m := range msgs {
		typ := "websocket"
		if m.op == ws.OpBinary {
			typ = "websocket-binary"
		}
		if s.Msgs[i].Type != typ || !bytes.Equal(s.Msgs[i].Body, m.body) {
			t.Errorf("node message %d: %s %s, want %s %s", i, s.Msgs[i].Type, wShort(s.Msgs[i].Body), typ, wShort(m.body))
		}
	}
}

func TestWebSocketBrowserHandshake(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	// Firefox-style: Connection lists keep-alive too, an extension is
	// offered (the proxy negotiates none), names in mixed case.
	req := "GET /browser?token=x HTTP/1.1\r\nHost: ws.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n" +
		"sec-websocket-version: 13\r\nOrigin: http://ws.test\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate\r\nsec-websocket-key: " + wKey + "\r\n" +
		"Connection: keep-alive, Upgrade\r\nSec-Fetch-Mode: websocket\r\nPragma: no-cache\r\nupgrade: websocket\r\n\r\n"
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wAccept {
		t.Fatalf("answer %d %v", resp.StatusCode, resp.Header)
	}
	for _, h := range []string{"Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol", "Content-Length", "Transfer-Encoding"} {
		if v, ok := resp.Header[h]; ok {
			t.Errorf("101 carries %s: %q", h, v)
		}
	}
	c := &wConn{Conn: conn, r: br}
	if _, err := c.Write(wFrame(0x81, []byte("from a browser"))); err != nil {
		t.Fatal(err)
	}
	c.expectFrame(t, ws.OpText, []byte("from a browser"))
	s := e.wait(t, "/browser", "1 message", func(s wSession) bool { return len(s.Msgs) == 1 })
	if s.Env["HTTP_ORIGIN"] != "http://ws.test" || s.Env["HTTP_SEC_WEBSOCKET_EXTENSIONS"] != "permessage-deflate" ||
		s.Env["QUERY_STRING"] != "token=x" {
		t.Errorf("handshake environ %v", s.Env)
	}
}

func TestWebSocketNodeSpeaksFirst(t *testing.T) {
	t.Parallel()
	p, _, _ := wEchoProxy(t, "")
	c, _ := wDial(t, p, "/greet", ws.Dialer{})
	c.expectFrame(t, ws.OpText, []byte("welcome"))
	if err := c.echo(ws.OpText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
}

func TestWebSocketLargeMessages(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	t.Run("1MiB echoed", func(t *testing.T) {
		c, _ := wDial(t, p, "/large/ok", ws.Dialer{})
		if err := c.echo(ws.OpBinary, wPattern(wMiB, 7)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("1MiB+1 closed with 1009", func(t *testing.T) {
		c, _ := wDial(t, p, "/large/over", ws.Dialer{})
		go func() { _ = wsutil.WriteClientMessage(c, ws.OpBinary, wPattern(wMiB+1, 8)) }()
		c.expectClose(t, ws.StatusMessageTooBig)
		if s := e.waitEnd(t, "/large/over"); len(s.Msgs) != 0 {
			t.Errorf("node got %d messages of a refused session", len(s.Msgs))
		}
	})
	t.Run("fragments joined to exactly 1MiB echoed", func(t *testing.T) {
		c, _ := wDial(t, p, "/large/frag-ok", ws.Dialer{})
		msg := wASCII(wMiB, 9)
		go func() {
			_, _ = c.Write(append(wFrame(0x01, msg[:wMiB/2]), wFrame(0x80, msg[wMiB/2:])...))
		}()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, op, err := wsutil.ReadServerData(c)
		if err != nil || op != ws.OpText || !bytes.Equal(got, msg) {
			t.Fatalf("echo: %v %s %v", op, wShort(got), err)
		}
	})
	t.Run("fragments joined over 1MiB closed with 1009", func(t *testing.T) {
		c, _ := wDial(t, p, "/large/frag-over", ws.Dialer{})
		go func() {
			_, _ = c.Write(append(wFrame(0x01, wASCII(wMiB, 1)), wFrame(0x80, []byte("z"))...))
		}()
		c.expectClose(t, ws.StatusMessageTooBig)
		if s := e.waitEnd(t, "/large/frag-over"); len(s.Msgs) != 0 {
			t.Errorf("node got %d messages of a refused session", len(s.Msgs))
		}
	})
	t.Run("header over the limit refused before the payload", func(t *testing.T) {
		c, _ := wDial(t, p, "/large/header", ws.Dialer{})
		// 64-bit length 2 MiB, mask, and no payload at all.
		hdr := wbinary.BigEndian.AppendUint64([]byte{0x82, 0xff}, 2*wMiB)
		if _, err := c.Write(append(hdr, wMask[:]...)); err != nil {
			t.Fatal(err)
		}
		c.expectClose(t, ws.StatusMessageTooBig)
	})
}

func TestWebSocketMaxMessageOption(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "max-websocket-message = 1K")
	c, _ := wDial(t, p, "/max/ok", ws.Dialer{})
	if err := c.echo(ws.OpBinary, wPattern(1024, 1)); err != nil {
		t.Fatalf("1024 bytes with max-websocket-message = 1K: %v", err)
	}
	// Control frames are bound by 125 bytes, not by the option.
	if _, err := c.Write(wFrame(0x89, wPattern(125, 2))); err != nil {
		t.Fatal(err)
	}
	c.expectFrame(t, ws.OpPong, wPattern(125, 2))
	t.Run("1025 bytes", func(t *testing.T) {
		c, _ := wDial(t, p, "/max/over", ws.Dialer{})
		if err := wsutil.WriteClientMessage(c, ws.OpBinary, wPattern(1025, 3)); err != nil {
			t.Fatal(err)
		}
		c.expectClose(t, ws.StatusMessageTooBig)
	})
	t.Run("fragments joined to 1025 bytes", func(t *testing.T) {
		c, _ := wDial(t, p, "/max/frag-over", ws.Dialer{})
		if _, err := c.Write(append(wFrame(0x02, wPattern(1000, 4)), wFrame(0x80, wPattern(25, 5))...)); err != nil {
			t.Fatal(err)
		}
		c.expectClose(t, ws.StatusMessageTooBig)
		if s := e.waitEnd(t, "/max/frag-over"); len(s.Msgs) != 0 {
			t.Errorf("node got %d messages", len(s.Msgs))
		}
	})
}

func TestWebSocketFragmented(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	c, _ := wDial(t, p, "/fragments", ws.Dialer{})
	t.Run("text with an empty first fragment and a ping inside", func(t *testing.T) {
		var b []byte
		b = append(b, wFrame(0x01, nil)...)                 // text, not final, empty
		b = append(b, wFrame(0x89, []byte("mid-ping"))...)  // ping between fragments
		b = append(b, wFrame(0x00, []byte("Hel"))...)       // continuation
		b = append(b, wFrame(0x80, []byte("lo, wörld"))...) // final continuation
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		c.expectFrame(t, ws.OpPong, []byte("mid-ping"))
		c.expectFrame(t, ws.OpText, []byte("Hello, wörld"))
	})
	t.Run("binary in three fragments, written apart", func(t *testing.T) {
		for _, f := range [][]byte{wFrame(0x02, []byte{1, 2}), wFrame(0x00, []byte{3}), wFrame(0x80, []byte{4, 5})} {
			if _, err := c.Write(f); err != nil {
				t.Fatal(err)
			}
			// The pause is the stimulus, not a synchronisation: each
			// fragment most likely arrives in a read of its own.
			time.Sleep(20 * time.Millisecond)
		}
		c.expectFrame(t, ws.OpBinary, []byte{1, 2, 3, 4, 5})
	})
	t.Run("UTF-8 character split across fragments", func(t *testing.T) {
		euro := []byte("€") // e2 82 ac
		if _, err := c.Write(append(wFrame(0x01, euro[:2]), wFrame(0x80, euro[2:])...)); err != nil {
			t.Fatal(err)
		}
		c.expectFrame(t, ws.OpText, euro)
	})
	s := e.wait(t, "/fragments", "3 messages", func(s wSession) bool { return len(s.Msgs) >= 3 })
	want := []wMsg{
		{Type: "websocket", Body: []byte("Hello, wörld")},
		{Type: "websocket-binary", Body: []byte{1, 2, 3, 4, 5}},
		{Type: "websocket", Body: []byte("€")},
	}
	if len(s.Msgs) != len(want) {
		t.Fatalf("node got %d messages, want %d (one per message, fragments joined)", len(s.Msgs), len(want))
	}
	for i, m := range want {
		if s.Msgs[i].Type != m.Type || !bytes.Equal(s.Msgs[i].Body, m.Body) {
			t.Errorf("node message %d: %s %q, want %s %q", i, s.Msgs[i].Type, s.Msgs[i].Body, m.Type, m.Body)
		}
	}
}

func TestWebSocketPingPong(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	c, _ := wDial(t, p, "/ping", ws.Dialer{})
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{name: "hello", payload: []byte("hello")},
		{name: "empty", payload: []byte{}},
		{name: "125 bytes", payload: wPattern(125, 3)},
		{name: "binary", payload: []byte{0, 0xff, 0x80, 0x7f}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Write(wFrame(0x89, tc.payload)); err != nil {
				t.Fatal(err)
			}
			c.expectFrame(t, ws.OpPong, tc.payload)
		})
	}
	t.Run("unsolicited pong ignored", func(t *testing.T) {
		if _, err := c.Write(append(wFrame(0x8a, []byte("pong?")), wFrame(0x81, []byte("after pong"))...)); err != nil {
			t.Fatal(err)
		}
		c.expectFrame(t, ws.OpText, []byte("after pong"))
	})
	s := e.wait(t, "/ping", "1 message", func(s wSession) bool { return len(s.Msgs) >= 1 })
	if len(s.Msgs) != 1 || s.Ends != 0 {
		t.Errorf("node got %d messages and %d ends; control frames must not reach it", len(s.Msgs), s.Ends)
	}
}

func TestWebSocketCloseHandshake(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	for _, tc := range []struct {
		name string
		body []byte
		want ws.StatusCode
	}{
		{name: "1000", body: wCloseBody(1000, "bye"), want: 1000},
		{name: "1001", body: wCloseBody(1001, ""), want: 1001},
		{name: "3000", body: wCloseBody(3000, "app says ✓"), want: 3000},
		{name: "4999", body: wCloseBody(4999, ""), want: 4999},
		{name: "empty", body: nil, want: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := "/close/" + tc.name
			c, _ := wDial(t, p, path, ws.Dialer{})
			if err := c.echo(ws.OpText, []byte("before close")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(wFrame(0x88, tc.body)); err != nil {
				t.Fatal(err)
			}
			c.expectClose(t, tc.want)
			e.waitEnd(t, path)
		})
	}
}

func TestWebSocketNodeEnd(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	c, _ := wDial(t, p, "/nodeend", ws.Dialer{})
	if err := c.echo(ws.OpText, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := wsutil.WriteClientMessage(c, ws.OpText, []byte("node-end")); err != nil {
		t.Fatal(err)
	}
	c.expectClose(t, ws.StatusNormalClosure)
	e.wait(t, "/nodeend", "2 messages", func(s wSession) bool { return len(s.Msgs) == 2 })
}

func TestWebSocketSubprotocol(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	for _, tc := range []struct {
		name    string
		host    string
		offered []string
		want    string
	}{
		{name: "superchat first", offered: []string{"superchat", "chat"}, want: "superchat"},
		{name: "chat first", offered: []string{"chat", "superchat"}, want: "chat"},
		{name: "unknown then chat", offered: []string{"v9.example", "chat"}, want: "chat"},
		{name: "none known", offered: []string{"v9.example"}, want: ""},
		{name: "none offered", want: ""},
		{name: "vhost without protocols", host: "noproto.test", offered: []string{"chat"}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/sub/" + strings.ReplaceAll(tc.name, " ", "-")
			c, hs := wDial(t, p, path, ws.Dialer{Protocols: tc.offered, Host: tc.host})
			if hs.Protocol != tc.want {
				t.Fatalf("subprotocol %q, want %q", hs.Protocol, tc.want)
			}
			if err := c.echo(ws.OpText, []byte(tc.name)); err != nil {
				t.Fatal(err)
			}
			s := e.wait(t, path, "handshake", func(wSession) bool { return true })
			if got := s.Env["HTTP_SEC_WEBSOCKET_PROTOCOL"]; got != strings.Join(tc.offered, ", ") {
				t.Errorf("node sees Sec-WebSocket-Protocol %q, want %q", got, strings.Join(tc.offered, ", "))
			}
		})
	}
	t.Run("repeated Sec-WebSocket-Protocol fields", func(t *testing.T) {
		// RFC 6455 §11.3.4: the field may be repeated; that is the same
		// as one field listing every value.
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		req := wHandshake("/sub/repeated", "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: v9.example\r\n")
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "chat" {
			t.Fatalf("request with `Sec-WebSocket-Protocol: chat` and `Sec-WebSocket-Protocol: v9.example` "+
				"(vhost allows chat) got Sec-WebSocket-Protocol %q, want \"chat\"", got)
		}
	})
}

func TestWebSocketHandshakeRefused(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	const std = "Connection: Upgrade\r\nUpgrade: websocket\r\n"
	for _, tc := range []struct {
		name   string
		req    string
		status int
	}{
		{name: "version 8", req: "GET /refused/v8 HTTP/1.1\r\nHost: a\r\n" + std +
			"Sec-WebSocket-Key: " + wKey + "\r\nSec-WebSocket-Version: 8\r\n\r\n", status: 426},
		{name: "version missing", req: "GET /refused/nov HTTP/1.1\r\nHost: a\r\n" + std +
			"Sec-WebSocket-Key: " + wKey + "\r\n\r\n", status: 426},
		{name: "short key", req: "GET /refused/short HTTP/1.1\r\nHost: a\r\n" + std +
			"Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n", status: 400},
		{name: "key of 18 bytes", req: "GET /refused/k18 HTTP/1.1\r\nHost: a\r\n" + std +
			"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA\r\nSec-WebSocket-Version: 13\r\n\r\n", status: 400},
		{name: "key not base64", req: "GET /refused/nb64 HTTP/1.1\r\nHost: a\r\n" + std +
			"Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\nSec-WebSocket-Version: 13\r\n\r\n", status: 400},
		{name: "key missing", req: "GET /refused/nokey HTTP/1.1\r\nHost: a\r\n" + std +
			"Sec-WebSocket-Version: 13\r\n\r\n", status: 400},
		{name: "POST", req: "POST /refused/post HTTP/1.1\r\nHost: a\r\n" + std +
			"Sec-WebSocket-Key: " + wKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n", status: 400},
		{name: "with a body", req: "GET /refused/body HTTP/1.1\r\nHost: a\r\n" + std +
			"Sec-WebSocket-Key: " + wKey + "\r\nSec-WebSocket-Version: 13\r\nContent-Length: 3\r\n\r\nabc", status: 400},
		{name: "two keys", req: "GET /refused/twokeys HTTP/1.1\r\nHost: a\r\n" + std +
			"Sec-WebSocket-Key: " + wKey + "\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n", status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, rerr := rawExchangeErr(t, p.Addr, tc.req, 10*time.Second)
			var ne net.Error
			closed := !(errors.As(rerr, &ne) && ne.Timeout()) // EOF or a reset: closed
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
			if err != nil {
				t.Fatalf("reading %q: %v", raw, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; response %q", resp.StatusCode, tc.status, raw)
			}
			if !closed {
				t.Errorf("the proxy did not close the connection after refusing the handshake")
			}
			if resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length %d for a %d-byte body", resp.ContentLength, len(body))
			}
			if tc.status == 426 && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("426 without Sec-WebSocket-Version: 13: %q", raw)
			}
			if !resp.Close {
				t.Errorf("refusal without Connection: close: %q", raw)
			}
		})
	}
	// RFC 9110 §7.8: Upgrade in an HTTP/1.0 request is ignored: a plain
	// request, which the node answers (it was a 400), without
	// HTTP_UPGRADE in its environ (the echo node would have taken it for
	// a WebSocket: the check below).
	t.Run("HTTP/1.0 is a plain request", func(t *testing.T) {
		raw := rawExchange(t, p.Addr, "GET /plain/http10 HTTP/1.0\r\nHost: a\r\n"+std+
			"Sec-WebSocket-Key: "+wKey+"\r\nSec-WebSocket-Version: 13\r\n\r\n", 10*time.Second)
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
		if err != nil {
			t.Fatalf("reading %q: %v", raw, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("HTTP/1.0 with Upgrade: %q, want the node's 200 ok", raw)
		}
	})
	// A good handshake after the refused ones: once the node has it, the
	// refused ones, sent earlier, would have arrived too.
	c, _ := wDial(t, p, "/refused/control", ws.Dialer{})
	if err := c.echo(ws.OpText, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for path := range e.byPath {
		if path != "/refused/control" {
			t.Errorf("the node got the refused handshake %s", path)
		}
	}
}

func TestWebSocketViolations(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	hello := []byte("Hello")
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	for i, tc := range []struct {
		name   string
		frames []byte
		code   ws.StatusCode
	}{
		{name: "unmasked text", frames: wFrameMask(0x81, false, hello), code: 1002},
		{name: "unmasked ping", frames: wFrameMask(0x89, false, hello), code: 1002},
		{name: "RSV1 set", frames: wFrame(0xc1, hello), code: 1002},
		{name: "RSV2 set", frames: wFrame(0xa2, hello), code: 1002},
		{name: "RSV3 set on a ping", frames: wFrame(0x99, hello), code: 1002},
		{name: "opcode 3", frames: wFrame(0x83, hello), code: 1002},
		{name: "opcode 0xB", frames: wFrame(0x8b, hello), code: 1002},
		{name: "126-byte ping", frames: wFrame(0x89, wPattern(126, 0)), code: 1002},
		{name: "126-byte close", frames: wFrame(0x88, append(wCloseBody(1000, ""), wASCII(124, 0)...)), code: 1002},
		{name: "fragmented ping", frames: wFrame(0x09, hello), code: 1002},
		{name: "continuation without start", frames: wFrame(0x80, hello), code: 1002},
		{name: "unfinished continuation without start", frames: wFrame(0x00, hello), code: 1002},
		{name: "text during a fragmented text", frames: cat(wFrame(0x01, []byte("a")), wFrame(0x81, []byte("b"))), code: 1002},
		{name: "binary during a fragmented text", frames: cat(wFrame(0x01, []byte("a")), wFrame(0x02, []byte("b"))), code: 1002},
		{name: "non-minimal 16-bit length", frames: append(append([]byte{0x81, 0xfe, 0, 5}, wMask[:]...), wFrame(0x81, hello)[6:]...), code: 1002},
		{name: "non-minimal 64-bit length", frames: append(wbinary.BigEndian.AppendUint64([]byte{0x81, 0xff}, 5), append(wMask[:], wFrame(0x81, hello)[6:]...)...), code: 1002},
		{name: "64-bit length with the top bit", frames: append(wbinary.BigEndian.AppendUint64([]byte{0x82, 0xff}, 1<<63), wMask[:]...), code: 1002},
		{name: "invalid UTF-8 text", frames: wFrame(0x81, []byte{'o', 'k', 0xff, 0xfe}), code: 1007},
		{name: "UTF-16 surrogate in text", frames: wFrame(0x81, []byte{0xed, 0xa0, 0x80}), code: 1007},
		{name: "invalid UTF-8 across fragments", frames: cat(wFrame(0x01, []byte{0xe2, 0x82}), wFrame(0x80, []byte{'x'})), code: 1007},
		{name: "truncated UTF-8 at the end", frames: wFrame(0x81, []byte{'a', 0xe2, 0x82}), code: 1007},
		{name: "close with a 1-byte body", frames: wFrame(0x88, []byte{3}), code: 1002},
		{name: "close with code 1005", frames: wFrame(0x88, wCloseBody(1005, "")), code: 1002},
		{name: "close with code 1006", frames: wFrame(0x88, wCloseBody(1006, "")), code: 1002},
		{name: "close with code 999", frames: wFrame(0x88, wCloseBody(999, "")), code: 1002},
		{name: "close with invalid UTF-8 reason", frames: wFrame(0x88, wCloseBody(1000, "\xff")), code: 1002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := fmt.Sprintf("/violation/%d", i)
			c := wRawUpgrade(t, p, path, nil)
			if _, err := c.Write(tc.frames); err != nil {
				t.Fatal(err)
			}
			c.expectClose(t, tc.code)
			if s := e.waitEnd(t, path); len(s.Msgs) != 0 {
				t.Errorf("node got %d messages from a violating session: %s %q", len(s.Msgs), s.Msgs[0].Type, s.Msgs[0].Body)
			}
		})
	}
}

// TestWebSocketNodeRetry: a node's `retry` to an accepted WebSocket
// closes it with 1013 (try again later: the client reconnects, to another
// node) and the node gets `end`. It was dropped as an HTTP reply, and the
// client's messages went to a node that had forgotten the session.
func TestWebSocketNodeRetry(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	c := wRawUpgrade(t, p, "/retry", nil)
	if _, err := c.Write(wFrame(0x81, []byte("node-retry"))); err != nil {
		t.Fatal(err)
	}
	c.expectClose(t, 1013)
	if s := e.waitEnd(t, "/retry"); s.Ends == 0 {
		t.Fatal("the node got no end")
	}
}

func TestWebSocketHTTPRepliesDropped(t *testing.T) {
	t.Parallel()
	p, _, _ := wEchoProxy(t, "")
	// The node answers the handshake with headers, body, chunk and retry.
	c := wRawUpgrade(t, p, "/junk", nil)
	for _, msg := range []string{"first", "node-junk", "last"} {
		if _, err := c.Write(wFrame(0x81, []byte(msg))); err != nil {
			t.Fatal(err)
		}
		c.expectFrame(t, ws.OpText, []byte(msg))
	}
	// The node sent all its junk before the echo of "node-junk", on the
	// same pipe, so the proxy had handled it before the echoes that
	// followed; a ping answered by the very next frame shows that nothing
	// of it was written after them either.
	if _, err := c.Write(wFrame(0x89, []byte("probe"))); err != nil {
		t.Fatal(err)
	}
	c.expectFrame(t, ws.OpPong, []byte("probe"))

	// And the reverse: WebSocket replies to a plain HTTP request.
	raw := rawExchange(t, p.Addr, "GET /ws-to-http HTTP/1.1\r\nHost: ws.test\r\nConnection: close\r\n\r\n", 5*time.Second)
	if !strings.HasPrefix(raw, "HTTP/1.1 200 ") || !strings.HasSuffix(raw, "\r\n\r\nok") || strings.Contains(raw, "stray") {
		t.Errorf("plain request answered %q", raw)
	}
}

func TestWebSocketFramesPipelined(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	t.Run("frames in the handshake's packet", func(t *testing.T) {
		c := wRawUpgrade(t, p, "/pipe/early", append(wFrame(0x81, []byte("early")), wFrame(0x82, []byte{9, 8, 7})...))
		c.expectFrame(t, ws.OpText, []byte("early"))
		c.expectFrame(t, ws.OpBinary, []byte{9, 8, 7})
	})
	t.Run("one byte at a time", func(t *testing.T) {
		c := wRawUpgrade(t, p, "/pipe/bytes", nil)
		msg := wASCII(300, 4) // a 16-bit length: an 8-byte header
		for _, b := range wFrame(0x81, msg) {
			if _, err := c.Write([]byte{b}); err != nil {
				t.Fatal(err)
			}
			// The stimulus: give each byte a chance of a read of its own.
			time.Sleep(200 * time.Microsecond)
		}
		c.expectFrame(t, ws.OpText, msg)
	})
	t.Run("100 frames in one write", func(t *testing.T) {
		c := wRawUpgrade(t, p, "/pipe/burst", nil)
		var b []byte
		for i := range 100 {
			b = append(b, wFrame(0x81, []byte("burst "+strconv.Itoa(i)))...)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			c.expectFrame(t, ws.OpText, []byte("burst "+strconv.Itoa(i)))
		}
	})
	t.Run("upgrade after a keep-alive request", func(t *testing.T) {
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		if _, err := conn.Write([]byte("GET /plain HTTP/1.1\r\nHost: ws.test\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "ok" || resp.Close {
			t.Fatalf("plain request: %d %q close=%v", resp.StatusCode, body, resp.Close)
		}
		c := wUpgradeOn(t, conn, br, "/pipe/after-http", nil)
		if _, err := c.Write(wFrame(0x81, []byte("upgraded"))); err != nil {
			t.Fatal(err)
		}
		c.expectFrame(t, ws.OpText, []byte("upgraded"))
		e.wait(t, "/pipe/after-http", "1 message", func(s wSession) bool { return len(s.Msgs) == 1 })
	})
}

func TestWebSocketConcurrentClients(t *testing.T) {
	t.Parallel()
	const clients, perClient = 200, 50
	p, e, _ := wEchoProxy(t, "")
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- wConcurrentClient(p, i, perClient)
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Error(err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d clients failed", failed, clients)
	}
	t.Logf("%d clients × %d echoed messages in %v", clients, perClient, time.Since(start).Round(time.Millisecond))
	for i := range clients {
		s, ok := e.get(fmt.Sprintf("/many/%d", i))
		if !ok || len(s.Msgs) != perClient {
			t.Errorf("client %d: node has %d messages, want %d", i, len(s.Msgs), perClient)
		}
	}
}

// wConcurrentClient writes n messages (text and binary, sizes up to 70000)
// from one goroutine while reading the echoes in order from another.
func wConcurrentClient(p *proxy, id, n int) error {
	c, _, err := wDialErr(p, fmt.Sprintf("/many/%d", id), ws.Dialer{})
	if err != nil {
		return fmt.Errorf("client %d: dial: %w", id, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	msg := func(j int) (ws.OpCode, []byte) {
		size := (id*7 + j*13) % 300
		if j == 17 {
			size = 70000
		}
		if j%2 == 0 {
			return ws.OpText, append([]byte(fmt.Sprintf("c%d m%d ", id, j)), wASCII(size, byte(j))...)
		}
		return ws.OpBinary, append([]byte(fmt.Sprintf("c%d m%d ", id, j)), wPattern(size, byte(id))...)
	}
	werr := make(chan error, 1)
	go func() {
		for j := range n {
			op, b := msg(j)
			if err := wsutil.WriteClientMessage(c, op, b); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	for j := range n {
		got, op, err := wsutil.ReadServerData(c)
		if err != nil {
			return fmt.Errorf("client %d: reading echo %d: %w", id, j, err)
		}
		wop, want := msg(j)
		if op != wop || !bytes.Equal(got, want) {
			return fmt.Errorf("client %d: echo %d is %v %s, want %v %s", id, j, op, wShort(got), wop, wShort(want))
		}
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("client %d: write: %w", id, err)
	}
	return nil
}

func TestWebSocketIdleTimeout(t *testing.T) {
	t.Parallel()
	// The vhost timeout (response head) and header-timeout are 1 s too:
	// none applies to a WebSocket session.
	p := startProxy(t, "idle-timeout = 1\nheader-timeout = 1", strings.Replace(wVHosts, "websocket-protocols", "timeout = 1\nwebsocket-protocols", 1))
	wStartEcho(t, p.ZMQ)
	waitRoutable(t, p, "", "/ready")
	c, _ := wDial(t, p, "/idle", ws.Dialer{})
	if err := c.echo(ws.OpText, []byte("before")); err != nil {
		t.Fatal(err)
	}
	// Control: an idle keep-alive HTTP connection is closed meanwhile.
	h, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_ = h.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := h.Write([]byte("GET /plain HTTP/1.1\r\nHost: ws.test\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	hr := bufio.NewReader(h)
	resp, err := http.ReadResponse(hr, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("plain request: %v %v", resp, err)
	}
	_, _ = io.ReadAll(resp.Body)
	// The idle period is the stimulus, not a synchronisation: 2.5 idle-
	// timeouts, ten sweeps.
	time.Sleep(2500 * time.Millisecond)
	if err := c.echo(ws.OpText, []byte("after 2.5 s idle")); err != nil {
		t.Fatalf("WebSocket idle for 2.5 s with idle-timeout = 1: %v", err)
	}
	_ = h.SetReadDeadline(time.Now().Add(5 * time.Second)) // from here: the steps above may have taken long
	if _, err := hr.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("control: the idle HTTP connection was not closed by idle-timeout = 1 (%v)", err)
	}
}

func TestWebSocketNodeGone(t *testing.T) {
	t.Parallel()
	p, _, g := wEchoProxy(t, "")
	c, _ := wDial(t, p, "/gone", ws.Dialer{})
	if err := c.echo(ws.OpText, []byte("alive")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	g.Stop()
	c.expectClose(t, ws.StatusGoingAway)
	t.Logf("close 1001 %v after the node stopped", time.Since(start).Round(time.Millisecond))
}

func TestWebSocketShutdown(t *testing.T) {
	t.Parallel()
	p, e, _ := wEchoProxy(t, "")
	c, _ := wDial(t, p, "/shutdown", ws.Dialer{})
	if err := c.echo(ws.OpText, []byte("alive")); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.expectClose(t, ws.StatusGoingAway)
	e.waitEnd(t, "/shutdown")
	// Let it finish: a second SIGTERM (the cleanup's) would kill it.
	checkFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return nil
		}
		return fmt.Errorf("blastbeat still running after SIGTERM")
	})
}

// wRSS is the VmRSS of pid in bytes.
func wRSS(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

func TestWebSocketIdleMemory(t *testing.T) {
	t.Parallel()
	const conns = 2000
	p, e, _ := wEchoProxy(t, "")
	dial := func(i int) *wConn {
		c, _, err := wDialErr(p, fmt.Sprintf("/mem/%d", i), ws.Dialer{})
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		return c
	}
	// Warm up: buffers, pools and the loops' tables see some traffic.
	for i := range 100 {
		c := dial(-1 - i)
		if err := c.echo(ws.OpText, []byte("warm")); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// Measure once the proxy has closed every warm-up session.
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		for i := range 100 {
			if s, ok := e.get(fmt.Sprintf("/mem/%d", -1-i)); !ok || s.Ends == 0 {
				return fmt.Errorf("warm-up session %d not ended at the node yet", i)
			}
		}
		return nil
	})
	before := wRSS(t, p.Pid())
	held := make([]*wConn, 0, conns)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, _, err := wDialErr(p, fmt.Sprintf("/mem/%d", i), ws.Dialer{})
			if err != nil {
				t.Errorf("connection %d: %v", i, err)
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		e.mu.Lock()
		defer e.mu.Unlock()
		if n := len(e.byPath); n < conns+100 {
			return fmt.Errorf("node has %d handshakes", n)
		}
		return nil
	})
	after := wRSS(t, p.Pid())
	per := (after - before) / conns
	t.Logf("proxy RSS %d KiB → %d KiB with %d idle WebSockets: %d bytes per connection (race detector: %v)",
		before>>10, after>>10, conns, per, raceEnabled)
	// The RSS growth per idle WebSocket (heap, gnet's buffers, the session
	// table; the kernel's socket buffers are not in RSS), measured on a
	// 2-CPU machine, 4 runs each: 2,660-2,930 bytes without the race
	// detector, 8,015-8,175 bytes with it (its shadow memory grows with
	// every allocation). The bounds are about twice that; the design goal
	// is 1 KiB.
	limit := int64(6 << 10)
	if raceEnabled {
		limit = 16 << 10
	}
	if per > limit {
		t.Errorf("%d bytes per idle WebSocket, over the %d-byte bound (about twice the measured figure; race detector: %v)",
			per, limit, raceEnabled)
	}
	// They all still work.
	for _, i := range []int{0, len(held) / 2, len(held) - 1} {
		if err := held[i].echo(ws.OpText, []byte("still here")); err != nil {
			t.Errorf("held connection %d: %v", i, err)
		}
	}
}

func TestWebSocketPythonClient(t *testing.T) {
	t.Parallel()
	if out, err := exec.Command(wPython, "-c", "import websockets").CombinedOutput(); err != nil {
		t.Skipf("SKIP: %s cannot import websockets (install Debian's python3-websockets): %v: %s",
			wPython, err, strings.TrimSpace(string(out)))
	}
	p, e, _ := wEchoProxy(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wPython, "-u", filepath.Join("testdata", "ws_client.py"), "ws://"+p.Addr)
	out, err := cmd.CombinedOutput()
	t.Logf("ws_client.py (err %v):\n%s", err, out)
	lines := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && (f[0] == "PASS" || f[0] == "FAIL") {
			lines[strings.TrimSuffix(f[1], ":")] = l
		}
	}
	for _, sc := range []string{"text", "binary", "mib", "too_big", "fragmented", "ping", "close", "node_end", "subprotocol"} {
		t.Run(sc, func(t *testing.T) {
			l, ok := lines[sc]
			if !ok {
				t.Fatalf("scenario %s did not report", sc)
			}
			if !strings.HasPrefix(l, "PASS") {
				t.Fatal(l)
			}
			path := "/py/" + sc
			switch sc {
			case "fragmented":
				s := e.wait(t, path, "2 messages", func(s wSession) bool { return len(s.Msgs) >= 2 })
				if len(s.Msgs) != 2 || s.Msgs[0].Type != "websocket" || string(s.Msgs[0].Body) != "fragmented text ✓" ||
					s.Msgs[1].Type != "websocket-binary" || !bytes.Equal(s.Msgs[1].Body, []byte{1, 2, 3}) {
					t.Errorf("node got %+v, want the fragments joined", s.Msgs)
				}
			case "close", "too_big", "node_end":
				s := e.waitEnd(t, path)
				if sc == "too_big" && len(s.Msgs) != 0 {
					t.Errorf("node got %d messages", len(s.Msgs))
				}
			case "text", "binary", "mib":
				s := e.wait(t, path, "messages", func(s wSession) bool { return len(s.Msgs) > 0 })
				if s.Env["HTTP_UPGRADE"] != "websocket" || s.Env["PATH_INFO"] != path {
					t.Errorf("handshake environ %v", s.Env)
				}
			}
		})
	}
}
