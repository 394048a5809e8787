package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/node"
)

// HTTP/2 streams as sessions: retry and failover per stream, a node that
// answers out of order, a 10 MB upload, 103 Early Hints, curl and nghttp
// over TLS, and the graceful stop.

// TestHTTP2Retry: a node's `retry` sends the stream's request (head and
// body) to the other node; a node that dies holding a request has it
// failed over. Other streams on the connection are not touched.
func TestHTTP2Retry(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2 = on\n", "[blastbeat:*]\nnode = n1\nnode = n2\n")
	held := make(chan string, 16)
	n1 := hStartNode(t, p.ZMQ, "n1", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		switch m.Env["PATH_INFO"] {
		case "/hold":
			held <- m.SID
		default:
			_ = n.Send([]byte(m.SID), "retry", nil)
		}
	})
	hStartNode(t, p.ZMQ, "n2", hEcho())
	// Until n2 is seen alive, n1's retry finds no other node (502), which
	// waitRoutable takes for routable: wait for an answer, which only n2
	// gives.
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get(p.URL("/"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	c := h2cClient(t, p.Addr)

	// Every request ends on n2, whichever node it went to first; a POST
	// keeps its body across the retry.
	for i := 0; i < 6; i++ {
		resp, body := h2Get(t, c, fmt.Sprintf("http://x/r/%d", i))
		if resp.StatusCode != 200 || body != fmt.Sprintf("n2 GET /r/%d", i) {
			t.Fatalf("GET %d: %d %q", i, resp.StatusCode, body)
		}
	}
	payload := bytes.Repeat([]byte("retry me "), 10000)
	for i := 0; i < 4; i++ {
		resp, err := c.Post("http://x/post", "text/plain", bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Node") != "n2" || !bytes.Equal(got, payload) {
			t.Fatalf("POST %d: %d from %q, %d bytes", i, resp.StatusCode, resp.Header.Get("X-Node"), len(got))
		}
	}
	if n1.Log.count("uwsgi") == 0 {
		t.Fatalf("n1 never got a request: the retry path was not taken")
	}

	// n1 dies holding /hold: the stream fails over to n2 after
	// 3 × ping-freq. (A /hold the least-loaded choice sends to n2 is
	// answered at once; the next one goes to n1.)
	for try := 0; ; try++ {
		done := make(chan string, 1)
		go func() {
			resp, err := c.Get("http://x/hold")
			if err != nil {
				done <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			done <- fmt.Sprintf("%d %s", resp.StatusCode, b)
		}()
		select {
		case <-held:
			n1.Stop()
			select {
			case got := <-done:
				if got != "200 n2 GET /hold" {
					t.Fatalf("held request after its node died: %q, want 200 from n2", got)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the held request never failed over")
			}
			return
		case got := <-done:
			if got != "200 n2 GET /hold" || try == 10 {
				t.Fatalf("/hold try %d: %q", try, got)
			}
		}
	}
}

// TestHTTP2OutOfOrder: a node that answers 20 concurrent streams in the
// reverse order of their arrival; each stream gets its own answer.
func TestHTTP2OutOfOrder(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2 = on\n", "[blastbeat:*]\nnode = n\n")
	const streams = 20
	var mu sync.Mutex
	var waiting []hMsg
	hStartNode(t, p.ZMQ, "n", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		if !strings.HasPrefix(m.Env["PATH_INFO"], "/o/") {
			hRespond(n, m.SID, 200, "", "ready")
			return
		}
		mu.Lock()
		waiting = append(waiting, m)
		all := len(waiting) == streams
		mu.Unlock()
		if !all {
			return
		}
		for i := streams - 1; i >= 0; i-- {
			w := waiting[i]
			hRespond(n, w.SID, 200, "", "answer for "+w.Env["PATH_INFO"])
		}
	})
	waitRoutable(t, p, "", "/")
	c := h2cClient(t, p.Addr)
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := c.Get(fmt.Sprintf("http://x/o/%d", i))
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("answer for /o/%d", i); string(b) != want {
				errs <- fmt.Errorf("stream %d got %q, want %q", i, b, want)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestHTTP2Upload: 10 MB up and echoed back over h2c, with and without a
// content-length, every byte checked both ways.
func TestHTTP2Upload(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2 = on\n", "[blastbeat:*]\nnode = n\n")
	hStartNode(t, p.ZMQ, "n", hEcho())
	waitRoutable(t, p, "", "/")
	c := h2cClient(t, p.Addr)
	const size = 10 << 20
	for _, known := range []bool{true, false} {
		var body io.Reader = io.LimitReader(hPattern(11), size)
		if !known {
			body = io.MultiReader(body) // hides the length: no content-length
		}
		req, _ := http.NewRequest("POST", "http://x/upload", body)
		if known {
			req.ContentLength = size
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("known length %v: %d", known, resp.StatusCode)
		}
		if err := hVerify(resp.Body, 11, size); err != nil {
			t.Fatalf("known length %v: %v", known, err)
		}
		resp.Body.Close()
	}
}

// TestHTTP2EarlyHints: a node's 103 reaches h2 and HTTP/1.1 clients
// before the final head.
func TestHTTP2EarlyHints(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2 = on\n", "[blastbeat:*]\nnode = n\n")
	hStartNode(t, p.ZMQ, "n", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		_ = n.Send([]byte(m.SID), "headers", []byte("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"))
		hRespond(n, m.SID, 200, "", "final")
	})
	waitRoutable(t, p, "", "/")
	for name, c := range map[string]*http.Client{
		"h2c":      h2cClient(t, p.Addr),
		"HTTP/1.1": {Timeout: 10 * time.Second},
	} {
		var hints []string
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
			return nil
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", p.URL("/page"), nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "final" {
			t.Errorf("%s: %d %q", name, resp.StatusCode, b)
		}
		if want := "103 </style.css>; rel=preload; as=style"; len(hints) != 1 || hints[0] != want {
			t.Errorf("%s: interim responses %q, want [%q]", name, hints, want)
		}
	}
}

// TestHTTP2TLSClients: curl --http2 and nghttp negotiate h2 by ALPN on a
// bind-ssl listener; GET and POST.
func TestHTTP2TLSClients(t *testing.T) {
	t.Parallel()
	s := tsStart(t, "http2 = on\n", "", nil)
	origin := net.JoinHostPort(tsSecure, strconv.Itoa(s.Port))
	caFile := s.pki.ca.File
	resolve := fmt.Sprintf("%s:%d:127.0.0.1", tsSecure, s.Port)
	out, err := exec.Command("curl", "-sS", "--http2", "--cacert", caFile, "--resolve", resolve,
		"-w", "\n%{http_version}", "https://"+origin+"/curl?x=1").CombinedOutput()
	if err != nil || string(out) != "n1 GET /curl?x=1\n2" && !strings.HasSuffix(string(out), "GET /curl?x=1\n2") {
		t.Errorf("curl --http2 over TLS: %q %v", out, err)
	}
	out, err = exec.Command("curl", "-sS", "--http2", "--cacert", caFile, "--resolve", resolve,
		"--data-binary", "posted over h2", "-w", "\n%{http_version}", "https://"+origin+"/post").CombinedOutput()
	if err != nil || string(out) != "posted over h2\n2" {
		t.Errorf("curl --http2 POST over TLS: %q %v", out, err)
	}
	if _, err := exec.LookPath("nghttp"); err != nil {
		t.Log("no nghttp (Debian's nghttp2-client): skipped that client")
		return
	}
	// nghttp does not verify the certificate; it does send SNI from the
	// URL's host, which the proxy needs to pick secure.test's.
	cmd := exec.Command("nghttp", "-H", ":authority: "+origin, "https://127.0.0.1:"+strconv.Itoa(s.Port)+"/nghttp")
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "GET /nghttp") {
		t.Errorf("nghttp over TLS: %q %v", out, err)
	}
}

// TestHTTP2GracefulStop: on SIGTERM an h2 connection gets GOAWAY naming
// its last stream; a stream opened after it is refused; the stream in
// flight still completes; then the connection closes and the proxy exits
// 0 (startProxy's cleanup checks).
func TestHTTP2GracefulStop(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2 = on\nshutdown-grace = 30\n", "[blastbeat:*]\nnode = n\n")
	held := make(chan string, 1)
	hn := hStartNode(t, p.ZMQ, "n", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		if m.Env["PATH_INFO"] == "/slow" {
			held <- m.SID
			return
		}
		hRespond(n, m.SID, 200, "", "ok")
	})
	waitRoutable(t, p, "", "/")

	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	_ = fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	open := func(id uint32, path string) {
		hb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", path}, {":authority", "x"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	open(1, "/slow")
	var sid string
	select {
	case sid = <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the node never got /slow")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next := func() http2.Frame {
		t.Helper()
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("reading frames: %v", err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
				continue
			case *http2.WindowUpdateFrame, *http2.PingFrame:
				continue
			}
			return f
		}
	}
	ga, ok := next().(*http2.GoAwayFrame)
	if !ok || ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
		t.Fatalf("after SIGTERM: %v, want GOAWAY NO_ERROR last stream 1", ga)
	}
	open(3, "/late")
	if rst, ok := next().(*http2.RSTStreamFrame); !ok || rst.StreamID != 3 || rst.ErrCode != http2.ErrCodeRefusedStream {
		t.Fatalf("a stream after GOAWAY: %v, want RST_STREAM REFUSED_STREAM", rst)
	}
	hn.Do(func(n *node.Node) { hRespond(n, sid, 200, "", "slow but whole") })
	var body []byte
	for {
		switch f := next().(type) {
		case *http2.HeadersFrame:
			if f.StreamID != 1 {
				t.Fatalf("HEADERS on stream %d", f.StreamID)
			}
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			if f.StreamEnded() {
				if string(body) != "slow but whole" {
					t.Fatalf("body %q", body)
				}
				// Then the proxy closes the connection, and exits.
				if _, err := fr.ReadFrame(); err == nil {
					t.Fatalf("a frame after the last stream ended; want the connection closed")
				}
				waitProxyExit(t, p)
				return
			}
		default:
			t.Fatalf("unexpected %v", f)
		}
	}
}

// TestHTTP2StalledPreface: a client that sends the preface and no
// SETTINGS gets GOAWAY SETTINGS_TIMEOUT at header-timeout and is closed;
// one whose first frame is not SETTINGS gets GOAWAY PROTOCOL_ERROR at
// once. (With http2 off the preface is a malformed HTTP/1.1 request:
// TestHTTP2Off.)
func TestHTTP2StalledPreface(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "header-timeout = 1\n", "[blastbeat:*]\nnode = n\n")
	for _, tc := range []struct {
		name  string
		after func(fr *http2.Framer)
		code  http2.ErrCode
	}{
		{"silence", func(*http2.Framer) {}, http2.ErrCodeSettingsTimeout},
		{"ping first", func(fr *http2.Framer) { _ = fr.WritePing(false, [8]byte{}) }, http2.ErrCodeProtocol},
	} {
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
			t.Fatal(err)
		}
		fr := http2.NewFramer(conn, conn)
		tc.after(fr)
		var goaway *http2.GoAwayFrame
		for goaway == nil {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("%s: %v before GOAWAY", tc.name, err)
			}
			goaway, _ = f.(*http2.GoAwayFrame)
		}
		if goaway.ErrCode != tc.code {
			t.Errorf("%s: GOAWAY %v, want %v", tc.name, goaway.ErrCode, tc.code)
		}
		if _, err := io.Copy(io.Discard, conn); err != nil {
			t.Errorf("%s: after GOAWAY: %v, want the connection closed", tc.name, err)
		}
		conn.Close()
	}
}

// TestHTTP2Off: with http2 = off the preface is a malformed HTTP/1.1
// request.
func TestHTTP2Off(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2 = off\n", "[blastbeat:*]\nnode = n\n")
	resp := rawExchange(t, p.Addr, http2.ClientPreface, 5*time.Second)
	if !strings.HasPrefix(resp, "HTTP/1.1 400 ") && !strings.HasPrefix(resp, "HTTP/1.1 505 ") {
		t.Errorf("preface with http2 off: %q, want 400 or 505", resp)
	}
}

// TestHTTP2EndCutsShort: a node's `end` in the middle of a chunked (or
// Content-Length) response resets the stream: an HTTP/2 client must not
// take the cut body as whole. `end` after a body it delimits ends the
// stream cleanly.
func TestHTTP2EndCutsShort(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:*]\nnode = n\n")
	hStartNode(t, p.ZMQ, "n", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		sid := []byte(m.SID)
		switch m.Env["PATH_INFO"] {
		case "/chunked-cut":
			_ = n.Send(sid, "headers", []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
			_ = n.Send(sid, "chunk", []byte("part"))
			_ = n.Send(sid, "end", nil)
		case "/length-cut":
			_ = n.Send(sid, "headers", []byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"))
			_ = n.Send(sid, "body", []byte("part"))
			_ = n.Send(sid, "end", nil)
		default:
			_ = n.Send(sid, "headers", []byte("HTTP/1.1 200 OK\r\n\r\n"))
			_ = n.Send(sid, "body", []byte("whole"))
			_ = n.Send(sid, "end", nil)
		}
	})
	waitRoutable(t, p, "", "/")
	c := h2cClient(t, p.Addr)
	for _, path := range []string{"/chunked-cut", "/length-cut"} {
		resp, err := c.Get("http://x" + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("%s: the cut body read as whole; want a stream error", path)
		}
	}
	if resp, body := h2Get(t, c, "http://x/whole"); resp.StatusCode != 200 || body != "whole" {
		t.Errorf("end-delimited: %d %q", resp.StatusCode, body)
	}
}

// TestEmptyChunkCutsLengthShort: an empty `chunk` (the end of a response)
// before a Content-Length body is all sent cuts it short: the HTTP/1.1
// connection closes (it hung, the client waiting for the rest) and the
// HTTP/2 stream is reset (it ended cleanly, the short body passed off as
// whole).
func TestEmptyChunkCutsLengthShort(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:*]\nnode = n\n")
	hStartNode(t, p.ZMQ, "n", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		sid := []byte(m.SID)
		_ = n.Send(sid, "headers", []byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"))
		_ = n.Send(sid, "body", []byte("part"))
		_ = n.Send(sid, "chunk", nil)
	})
	waitRoutable(t, p, "", "/")

	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /cut HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("HTTP/1.1: %v after %q; want the connection closed", err, got)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(got), "\r\n\r\npart") {
		t.Errorf("HTTP/1.1: %q", got)
	}

	c := h2cClient(t, p.Addr)
	resp, err := c.Get("http://x/cut")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("HTTP/2: the short body read as whole; want a stream error")
	}
}
