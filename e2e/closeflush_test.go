package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// The output a lagging client has not read yet is held by the proxy (up
// to max-pending-output); a response that ends its connection, and a
// keep-alive one past idle-timeout, must still reach the client whole.

// cfBodySize is well over what the kernel's socket buffers take on
// loopback (tcp_wmem's 4 MiB and the client's receive window), so most
// of it waits in the proxy when the response ends.
const cfBodySize = 16 << 20

// cfEarlySize is over half of the default max-pending-output (4 MiB),
// where reading a client that does not read its output pauses.
const cfEarlySize = 3 << 20

// cfNode answers /big with cfBodySize bytes in 64 KiB body messages and
// Content-Length, /delimited with as many and no length, ended by `end`
// (a close-delimited response), /early at once with cfEarlySize bytes
// (whatever the request's body), and anything else with "ready".
func cfNode(t *testing.T, endpoint, identity string) {
	piece := bytes.Repeat([]byte("0123456789abcdef"), 4<<10)
	hStartNode(t, endpoint, identity, func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		sid := []byte(m.SID)
		uri := m.Env["REQUEST_URI"]
		size := cfBodySize
		switch uri {
		case "/big", "/delimited":
		case "/early":
			size = cfEarlySize
		default:
			hRespond(n, m.SID, 200, "", "ready")
			return
		}
		delimited := uri == "/delimited"
		head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		if delimited {
			head = "HTTP/1.1 200 OK\r\n\r\n"
		}
		_ = n.Send(sid, "headers", []byte(head))
		for sent := 0; sent < size && !hn.Stopping(); sent += len(piece) {
			_ = n.Send(sid, "body", piece)
		}
		if delimited {
			_ = n.Send(sid, "end", nil)
		}
	})
}

// cfReadPaced reads want bytes of the body in pieces of chunk bytes,
// 2 ms apart until pace has passed, then at once, and checks every byte:
// paced, the proxy has the node's last byte long before the client does.
func cfReadPaced(t *testing.T, r io.Reader, want, chunk int, pace time.Duration) {
	t.Helper()
	buf := make([]byte, chunk)
	piece := []byte("0123456789abcdef")
	got := 0
	start := time.Now()
	for got < want {
		n, err := io.ReadFull(r, buf[:min(len(buf), want-got)])
		for i := 0; i < n; i++ {
			if buf[i] != piece[(got+i)%len(piece)] {
				t.Fatalf("byte %d is %q, want %q", got+i, buf[i], piece[(got+i)%len(piece)])
			}
		}
		got += n
		if err != nil {
			t.Fatalf("the body ended at %d of %d bytes: %v", got, want, err)
		}
		if time.Since(start) < pace {
			time.Sleep(2 * time.Millisecond) // pacing, not synchronisation
		}
	}
}

// cfBoth is a proxy with cf nodes behind its plain listener and behind a
// TLS listener for secure.test, and max-pending-output 64M.
type cfBoth struct {
	p       *proxy
	pki     *tsPKI
	tlsAddr string
}

func cfStartBoth(t *testing.T) *cfBoth {
	t.Helper()
	s := &cfBoth{pki: tsNewPKI(t, "")}
	s.tlsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	cert, key := s.pki.issue(t, "secure", tsSecure)
	s.p = startProxy(t, "max-pending-output = 64M\n",
		"[blastbeat:*]\nnode = cf\n\n"+tsVHost(tsSecure, s.tlsAddr, cert, key, ""))
	cfNode(t, s.p.ZMQ, "cf")
	cfNode(t, s.p.ZMQ, tsNodeName)
	waitRoutable(t, s.p, "", "/ready")
	tsWaitRoutable(t, tsHTTPClient(t, s.pki.config(""), s.tlsAddr), "https://"+tsSecure+"/ready")
	return s
}

// dial connects to the plain listener, or over TLS to secure.test.
func (s *cfBoth) dial(t *testing.T, secure bool) net.Conn {
	if secure {
		return tsDial(t, s.tlsAddr, s.pki.config(tsSecure), 60*time.Second)
	}
	return hDial(t, s.p.Addr, 60*time.Second).c
}

// cfReadToClose reads a 200 response of size body bytes (paced), then
// wants the connection's end: EOF and no byte more.
func cfReadToClose(t *testing.T, br *bufio.Reader, size int) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cfReadPaced(t, br, size, 64<<10, time.Hour)
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Fatalf("after the body: %d more bytes, %v (want EOF)", len(rest), err)
	}
}

// TestCloseFlushesHeldOutput: a response that closes its connection
// (the client asked for it, HTTP/1.0, or a close-delimited body) is
// written to the end before the close, however much of it the client
// had not read when the node finished.
func TestCloseFlushesHeldOutput(t *testing.T) {
	s := cfStartBoth(t)
	for _, tc := range []struct {
		name, req string
		tls       bool
	}{
		{"connection-close", "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false},
		{"http-1.0", "GET /big HTTP/1.0\r\nHost: x\r\n\r\n", false},
		{"close-delimited", "GET /delimited HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"tls-connection-close", "GET /big HTTP/1.1\r\nHost: " + tsSecure + "\r\nConnection: close\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.dial(t, tc.tls)
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			cfReadToClose(t, bufio.NewReaderSize(c, 64<<10), cfBodySize)
		})
	}
}

// TestCloseWhileClientSends: a client that goes on sending while it reads
// the response that closes its connection gets all of it: what it sends
// is read and dropped until it closes (a lingering close), where closing
// with its bytes unread would reset the connection and destroy what the
// kernel still held for it.
func TestCloseWhileClientSends(t *testing.T) {
	s := cfStartBoth(t)
	for _, secure := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "tls"}[secure]
		t.Run(name, func(t *testing.T) {
			c := s.dial(t, secure)
			if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: "+map[bool]string{false: "x", true: tsSecure}[secure]+"\r\nConnection: close\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			wrote := make(chan int, 1)
			go func() {
				n := 0
				defer func() { wrote <- n }()
				more := []byte("GET /more HTTP/1.1\r\nHost: x\r\n\r\n")
				for {
					select {
					case <-done:
						return
					case <-time.After(time.Millisecond):
					}
					if _, err := c.Write(more); err != nil {
						return
					}
					n++
				}
			}()
			cfReadToClose(t, bufio.NewReaderSize(c, 64<<10), cfBodySize)
			close(done)
			t.Logf("the client sent %d more requests while it read", <-wrote)
		})
	}
}

// TestCloseWhileClientUploads: a client that sends its whole upload
// before it reads is answered early, with a response that closes the
// connection and that the proxy must mostly hold (over half of
// max-pending-output): the proxy goes on reading, and dropping, the
// upload, so that the client gets to read the response. Had it paused
// reading, as it does for a keep-alive client that does not read, both
// would wait for the other until stall-timeout.
func TestCloseWhileClientUploads(t *testing.T) {
	p := startProxy(t, "stall-timeout = 10s\n", "[blastbeat:*]\nnode = cf\n")
	cfNode(t, p.ZMQ, "cf")
	waitRoutable(t, p, "", "/ready")
	r := hDial(t, p.Addr, 60*time.Second)
	const upload = 32 << 20
	r.write(fmt.Sprintf("POST /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", upload))
	if _, err := io.Copy(r.c, io.LimitReader(zeros{}, upload)); err != nil {
		t.Fatalf("upload: %v", err)
	}
	cfReadToClose(t, r.br, cfEarlySize)
}

// TestLingerAfterEarlyError: a request the proxy refuses while its body
// is still coming (413, Content-Length over max-body) ends the connection
// with a lingering close: the client, still sending, is not reset (its
// writes would fail, and on a real network a reset can overtake the
// answer and destroy it), and gets EOF after the answer.
func TestLingerAfterEarlyError(t *testing.T) {
	p := startProxy(t, "", "[blastbeat:*]\nnode = cf\nmax-body = 1M\n")
	cfNode(t, p.ZMQ, "cf")
	waitRoutable(t, p, "", "/ready")
	r := hDial(t, p.Addr, 30*time.Second)
	r.write("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n")
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	// Go on sending for a while, as a client that has not looked at the
	// answer yet does: the proxy reads and drops it.
	chunk := make([]byte, 64<<10)
	sent := 0
	for i := 0; i < 60; i++ {
		time.Sleep(5 * time.Millisecond) // pacing, not synchronisation
		n, err := r.c.Write(chunk)
		sent += n
		if err != nil {
			t.Fatalf("writing the body after the 413, at %d bytes: %v (the proxy reset the connection)", sent, err)
		}
	}
	if rest, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("the 413's body: %q, %v", rest, err)
	}
	_ = r.c.(*net.TCPConn).CloseWrite() // done sending: the linger ends
	if rest, err := io.ReadAll(r.br); err != nil || len(rest) > 0 {
		t.Fatalf("after the answer: %d more bytes, %v (want EOF)", len(rest), err)
	}
	t.Logf("sent %d body bytes after the 413", sent)
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// TestIdleTimeoutSparesHeldOutput: a keep-alive connection whose client
// is still reading the last response is not idle; idle-timeout counts
// from the last byte it read.
func TestIdleTimeoutSparesHeldOutput(t *testing.T) {
	p := startProxy(t, "max-pending-output = 64M\nidle-timeout = 600ms\n", "[blastbeat:*]\nnode = cf\n")
	cfNode(t, p.ZMQ, "cf")
	waitRoutable(t, p, "", "/ready")
	r := hDial(t, p.Addr, 60*time.Second)
	r.write("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// Paced for twice idle-timeout (16 KiB every 2 ms or slower: under
	// 10 MiB of the 16), then at once: idle-timeout counts from the
	// socket's last take, after which the client reads what the kernel
	// holds for it (a few MiB on loopback) well within it.
	cfReadPaced(t, resp.Body, cfBodySize, 16<<10, 1200*time.Millisecond)
	t.Logf("read %d bytes in %v (idle-timeout 600ms)", cfBodySize, time.Since(start).Round(time.Millisecond))
	// Still open, and idle from here on: it closes at idle-timeout.
	r.write("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(r.br, nil)
	if err != nil {
		t.Fatalf("the connection did not outlive its response: %v", err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	if closed, got := r.closed(); !closed {
		t.Fatalf("an idle connection stayed open past idle-timeout (read %q)", strings.TrimSpace(got))
	}
}
