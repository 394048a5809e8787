package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 (experimental, `http2 = on`): each stream is a session of its
// own; nodes see the same environ as for HTTP/1.1.

// h2cClient speaks h2c with prior knowledge to addr over one connection.
func h2cClient(t *testing.T, addr string) *http.Client {
	t.Helper()
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func h2Get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp, string(b)
}

// TestHTTP2PriorKnowledge: h2c GET, POST with a body, a body of unknown
// length, 100 concurrent streams on one connection, and curl.
func TestHTTP2PriorKnowledge(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2 = on\n", "[blastbeat:*]\nnode = n\n")
	hStartNode(t, p.ZMQ, "n", hEcho())
	waitRoutable(t, p, "", "/")
	c := h2cClient(t, p.Addr)

	resp, body := h2Get(t, c, "http://x/a?b=c")
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || body != "n GET /a?b=c" {
		t.Fatalf("GET: %s %d %q", resp.Proto, resp.StatusCode, body)
	}
	if resp.Header.Get("Date") == "" {
		t.Errorf("no Date on an HTTP/2 response")
	}

	payload := bytes.Repeat([]byte("0123456789"), 30000) // 300 KB: several windows
	resp, err := c.Post("http://x/up", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, payload) {
		t.Fatalf("POST echo: %d, %d bytes, %v", resp.StatusCode, len(got), err)
	}

	// No content-length: the node gets the body as pieces and an empty
	// one at the end (like chunked), and answers chunked: DATA frames.
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 5; i++ {
			fmt.Fprintf(pw, "piece %d;", i)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://x/chunked", pr)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "piece 0;piece 1;piece 2;piece 3;piece 4;"; resp.StatusCode != 200 || string(got) != want {
		t.Fatalf("POST of unknown length: %d %q, want %q", resp.StatusCode, got, want)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := c.Get(fmt.Sprintf("http://x/s/%d", i))
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("n GET /s/%d", i); string(b) != want {
				errs <- fmt.Errorf("stream %d: %q, want %q", i, b, want)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	if _, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command("curl", "-sS", "--http2-prior-knowledge", "-H", "Host: x",
			"-w", " %{http_version}", "http://"+p.Addr+"/curl").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "n GET /curl 2" {
			t.Errorf("curl --http2-prior-knowledge: %q %v", out, err)
		}
	}
}

// TestHTTP2TLS: h2 through ALPN on a bind-ssl listener, and a 10 MB
// download from a credit-speaking node paced by the client's window.
func TestHTTP2TLS(t *testing.T) {
	t.Parallel()
	s := tsStart(t, "http2 = on\n", "", nil)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", s.TLS)
		},
		TLSClientConfig:   s.pki.config(""),
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, body := h2Get(t, c, s.url(tsSecure, "/env"))
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("GET over TLS: %s %d %q", resp.Proto, resp.StatusCode, body)
	}
	if want := fmt.Sprintf("HTTPS=on(true) UWSGI_SCHEME=https SERVER_PORT=%d", s.Port); body != want {
		t.Errorf("environ over h2: %q, want %q", body, want)
	}
}

// TestHTTP2Download: 10 MB from a node that speaks credits, over h2c, every
// byte checked (the client's flow-control window paces the proxy).
func TestHTTP2Download(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2 = on\n"+crConfig, crVHosts)
	crSetupOn(t, p)
	c := h2cClient(t, p.Addr)
	const size = 10 << 20
	resp, err := c.Get(fmt.Sprintf("http://x/big?size=%d&seed=5", size))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("%s %d, length %d", resp.Proto, resp.StatusCode, resp.ContentLength)
	}
	if err := hVerify(resp.Body, 5, size); err != nil {
		t.Fatal(err)
	}
}

// TestHTTP2Clients: Debian's nghttp with prior knowledge, and an HTTP/1.1
// `Upgrade: h2c` request, which is served as HTTP/1.1 (the upgrade is
// ignored, as RFC 9113 §3.1 allows: it is deprecated, and prior knowledge
// or ALPN are the ways in).
func TestHTTP2Clients(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2 = on\n", "[blastbeat:*]\nnode = n\n")
	hStartNode(t, p.ZMQ, "n", hEcho())
	waitRoutable(t, p, "", "/")
	if _, err := exec.LookPath("nghttp"); err == nil {
		out, err := exec.Command("nghttp", "-H", ":authority: x", "http://"+p.Addr+"/nghttp?q=1").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "n GET /nghttp?q=1" {
			t.Errorf("nghttp: %q %v", out, err)
		}
	} else {
		t.Log("no nghttp (Debian's nghttp2-client): skipped that client")
	}
	resp := rawExchange(t, p.Addr, "GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nConnection: close\r\n\r\n", 5*time.Second)
	if !strings.HasPrefix(resp, "HTTP/1.1 200 ") || !strings.HasSuffix(resp, "n GET /up") {
		t.Errorf("Upgrade: h2c got %q, want an HTTP/1.1 200 from the node", resp)
	}
}

// TestHTTP2Floods: a PING flood ends the connection (GOAWAY
// ENHANCE_YOUR_CALM, then a lingering close) after the limit; the proxy
// goes on serving.
func TestHTTP2Floods(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2 = on\n", "[blastbeat:*]\nnode = n\n")
	hStartNode(t, p.ZMQ, "n", hEcho())
	waitRoutable(t, p, "", "/")
	c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fr := http2.NewFramer(c, c)
	// All the pings in one write: sent one by one, a client slowed by a
	// loaded run may never put 2,000 into one 250 ms sweep period.
	var flood bytes.Buffer
	ffr := http2.NewFramer(&flood, nil)
	flood.WriteString(http2.ClientPreface)
	_ = ffr.WriteSettings()
	for i := 0; i < 5000; i++ {
		_ = ffr.WritePing(false, [8]byte{byte(i)})
	}
	go func() { _, _ = c.Write(flood.Bytes()) }()
	// The proxy stops answering after its limit and ends the connection;
	// the GOAWAY ENHANCE_YOUR_CALM it sends first may be lost to the
	// reset that unread pings cause, so it is checked when it arrives.
	acks := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if isTimeout(err) {
				t.Fatalf("the connection was not ended (%d PING acks)", acks)
			}
			break // EOF or reset: ended
		}
		if pf, ok := f.(*http2.PingFrame); ok && pf.IsAck() {
			acks++
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", ga.ErrCode)
			}
			break
		}
	}
	if acks >= 5000 {
		t.Fatalf("all %d PINGs were answered: no flood limit", acks)
	}
	t.Logf("%d of 5000 PINGs answered before the connection ended", acks)
	if resp, body := h2Get(t, h2cClient(t, p.Addr), "http://x/after"); resp.StatusCode != 200 || body != "n GET /after" {
		t.Errorf("after the flood: %d %q", resp.StatusCode, body)
	}
}

// TestHTTP2DownloadIsNoFlood: a client that gives back the window of a
// fast download in small pieces (Go's client sends a stream and a
// connection WINDOW_UPDATE for every 4 KiB it reads) sends more
// WINDOW_UPDATEs than http2-max-control-frames allows per 250 ms; they
// answer the proxy's DATA, so they are no flood. Before, such a
// download from Go's client ended in GOAWAY ENHANCE_YOUR_CALM. Window
// opened a byte at a time still counts.
func TestHTTP2DownloadIsNoFlood(t *testing.T) {
	t.Parallel()
	// The node sends it all at once (it speaks no credits): the proxy
	// may hold it all.
	p := startProxy(t, "max-pending-output = 64m\n", "[blastbeat:*]\nnode = n\n")
	const size = 20 << 20 // 1,280 DATA frames of 16 KiB
	hStartNode(t, p.ZMQ, "n", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		_ = n.Send([]byte(m.SID), "headers", []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)))
		for sent := 0; sent < size; sent += 64 << 10 {
			_ = n.Send([]byte(m.SID), "body", make([]byte, 64<<10))
		}
	})
	waitRoutable(t, p, "", "/")
	h := h2lDial(t, p.Addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	if err := h.fr.WriteWindowUpdate(0, 1<<30); err != nil {
		t.Fatal(err)
	}
	h.get(1, "/big")
	var frames, got int
	for got < size {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes in %d frames: %v", got, frames, err)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			frames++
			got += len(f.Data())
		case *http2.GoAwayFrame, *http2.RSTStreamFrame:
			t.Fatalf("during the download: %v", f)
		}
	}
	// The window back, 4 KiB at a time on the stream and the connection,
	// in one burst.
	var burst bytes.Buffer
	bf := http2.NewFramer(&burst, nil)
	for n := 0; n < size; n += 4 << 10 {
		_ = bf.WriteWindowUpdate(1, 4<<10)
		_ = bf.WriteWindowUpdate(0, 4<<10)
	}
	_ = bf.WritePing(false, [8]byte{7})
	if _, err := h.c.Write(burst.Bytes()); err != nil {
		t.Fatal(err)
	}
	switch f := h.next().(type) {
	case *http2.PingFrame:
	default:
		t.Fatalf("after %d WINDOW_UPDATEs for %d DATA frames: %v, want the PING's ack", 2*size/(4<<10), frames, f)
	}
	// Windows dribbled open a byte at a time still count: 5,000 of them
	// (more than twice the limit, so that a sweep between two halves
	// cannot spare them) end the connection.
	burst.Reset()
	for i := 0; i < 5000; i++ {
		_ = bf.WriteWindowUpdate(0, 1)
	}
	if _, err := h.c.Write(burst.Bytes()); err != nil {
		t.Fatal(err)
	}
	ga, ok := h.next().(*http2.GoAwayFrame)
	if !ok || ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("after 5,000 one-byte WINDOW_UPDATEs: %v, want GOAWAY ENHANCE_YOUR_CALM", ga)
	}
}

// TestHTTP2RapidReset: a client that opens and resets streams faster than
// http2-max-resets allows (CVE-2023-44487) loses its connection; each
// reset stream's node gets `end`; the proxy goes on serving.
func TestHTTP2RapidReset(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2 = on\nhttp2-max-resets = 50\n", "[blastbeat:*]\nnode = n\n")
	echo := hEcho()
	hn := hStartNode(t, p.ZMQ, "n", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Env["PATH_INFO"] != "/r" { // /r is never answered
			echo(hn, n, m)
		}
	})
	waitRoutable(t, p, "", "/ready")
	c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	fr := http2.NewFramer(c, c)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/r"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	go func() {
		_, _ = io.WriteString(c, http2.ClientPreface)
		_ = fr.WriteSettings()
		for id := uint32(1); id < 2000; id += 2 {
			if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}) != nil ||
				fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
		}
	}()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if isTimeout(err) {
				t.Fatal("the connection was not ended")
			}
			break
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok && ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
			t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", ga.ErrCode)
		}
	}
	// Every stream that reached the node was ended for it.
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		heads, ends := 0, hn.Log.count("end")
		for _, m := range hn.Log.heads() {
			if m.Env["PATH_INFO"] == "/r" {
				heads++
			}
		}
		if heads == 0 || heads > 1000 || ends < heads {
			return fmt.Errorf("%d heads, %d ends", heads, ends)
		}
		return nil
	})
	if resp := rawExchange(t, p.Addr, "GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second); !strings.HasPrefix(resp, "HTTP/1.1 200 ") {
		t.Errorf("after the resets: %q", resp)
	}
}
