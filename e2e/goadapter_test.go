package e2e

// The Go adapter (node.Serve) end to end: net/http Handlers served
// through the real proxy to Go's own HTTP clients. Every identifier
// starts with ga to stay clear of the other e2e files.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/blastbeat/blastbeat/node"
)

// gaWait bounds every wait of these tests for an event.
const gaWait = 10 * time.Second

// gaServe runs node.Serve with h until the test ends (the stop must
// return nil) and returns its log.
func gaServe(t *testing.T, cfg node.ServeConfig, h http.Handler, endpoints ...string) *logBuffer {
	t.Helper()
	if cfg.Identity == "" {
		cfg.Identity = "ga"
	}
	cfg.Endpoints = endpoints
	logs := &logBuffer{}
	cfg.ErrorLog = log.New(logs, "", log.Lmicroseconds)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- node.Serve(ctx, cfg, h) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("node.Serve: %v", err)
			}
		case <-time.After(2 * gaWait):
			t.Errorf("node.Serve did not return after its context was cancelled")
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("node log:\n%s", logs.String())
		}
	})
	return logs
}

// gaInfo is what /info says of the request it got.
type gaInfo struct {
	Method, Path, RawQuery, RequestURI, Proto string
	ProtoMajor, ProtoMinor                    int
	Host, RemoteAddr                          string
	TLS, NoBody                               bool
	ContentLength                             int64
	Header                                    http.Header
	ServerName                                string // from node.RequestEnviron
}

func gaInfoHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(gaInfo{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, RequestURI: r.RequestURI,
		Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Host: r.Host, RemoteAddr: r.RemoteAddr, TLS: r.TLS != nil, NoBody: r.Body == http.NoBody,
		ContentLength: r.ContentLength, Header: r.Header, ServerName: node.RequestEnviron(r)["SERVER_NAME"],
	})
}

// gaEcho streams the request body back as it arrives, with the request's
// Content-Length when it has one (chunked otherwise); X-Req-Length says
// what the handler saw.
func gaEcho(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Req-Length", strconv.FormatInt(r.ContentLength, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	if r.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// gaGetInfo GETs url with c and decodes the answer.
func gaGetInfo(t *testing.T, c *http.Client, req *http.Request) gaInfo {
	t.Helper()
	resp, body := hDo(t, c, req)
	var info gaInfo
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &info) != nil {
		t.Fatalf("GET %s: %d %q", req.URL, resp.StatusCode, body)
	}
	return info
}

// TestGoAdapterHTTP: one node, one proxy (with HTTP/2 on), a Handler per
// feature.
func TestGoAdapterHTTP(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2 = on\n", "[blastbeat:*]\nnode = ga\n")

	streamNext := make(chan struct{})    // /stream writes its next piece
	hintSeen := make(chan struct{})      // the client saw the 103
	slowCancelled := make(chan error, 1) // /slow's context ended: its later Write's error
	statusWrites := make(chan error, 2)  // Write's error for 204 and 304
	backendNext := make(chan struct{})   // the reverse proxy's backend writes its next piece
	mux := http.NewServeMux()
	mux.HandleFunc("/info/", gaInfoHandler)
	mux.HandleFunc("/echo", gaEcho)
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "Hello, World!")
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "piece %d;", i)
			w.(http.Flusher).Flush()
			select {
			case <-streamNext:
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		_, err := w.Write([]byte("must not go"))
		statusWrites <- err
	})
	mux.HandleFunc("/notmodified", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusNotModified)
		_, err := w.Write([]byte("must not go"))
		statusWrites <- err
	})
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, r *http.Request) {
		_, _, err1 := w.(http.Hijacker).Hijack()
		_, _, err2 := http.NewResponseController(w).Hijack()
		fmt.Fprintf(w, "refused: %v %v", errors.Is(err1, http.ErrNotSupported), errors.Is(err2, http.ErrNotSupported))
	})
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		panic("gaPanicEarly")
	})
	mux.HandleFunc("/panic-late", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "begun")
		w.(http.Flusher).Flush()
		panic("gaPanicLate")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "start")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		_, err := w.Write([]byte("after"))
		if err == nil {
			err = http.NewResponseController(w).Flush()
		}
		slowCancelled <- err
	})
	mux.HandleFunc("/hints", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		select {
		case <-hintSeen:
			io.WriteString(w, "final")
		case <-time.After(gaWait):
			io.WriteString(w, "the client saw no 103")
		}
	})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			w.Header().Set("X-Backend-Path", r.URL.Path)
			io.Copy(w, r.Body)
			return
		}
		for i := range 3 {
			fmt.Fprintf(w, "backend %d;", i)
			w.(http.Flusher).Flush()
			select {
			case <-backendNext:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(backend.Close)
	backendURL, _ := url.Parse(backend.URL)
	mux.Handle("/rp/", &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(backendURL) },
		FlushInterval: -1,
	})
	logs := gaServe(t, node.ServeConfig{}, mux, p.ZMQ)
	waitRoutable(t, p, "", "/hello")
	c, _ := hClient(t)

	t.Run("GET with query and headers", func(t *testing.T) {
		req, _ := http.NewRequest("GET", p.URL("/info/a%2Fb/c?x=1&y=two%20words"), nil)
		req.Header.Set("X-Test", "v1")
		req.Header.Add("Accept", "text/plain")
		req.AddCookie(&http.Cookie{Name: "k", Value: "v"})
		info := gaGetInfo(t, c, req)
		if info.Method != "GET" || info.Path != "/info/a/b/c" || info.RawQuery != "x=1&y=two%20words" ||
			info.RequestURI != "/info/a%2Fb/c?x=1&y=two%20words" || info.Proto != "HTTP/1.1" || info.ProtoMinor != 1 ||
			info.Host != p.Addr || info.TLS || !info.NoBody || info.ContentLength != 0 || info.ServerName != "127.0.0.1" {
			t.Fatalf("request as the handler saw it: %+v", info)
		}
		if info.Header.Get("X-Test") != "v1" || info.Header.Get("Accept") != "text/plain" || info.Header.Get("Cookie") != "k=v" ||
			info.Header.Get("Host") != "" {
			t.Fatalf("header as the handler saw it: %v", info.Header)
		}
		if host, port, err := net.SplitHostPort(info.RemoteAddr); err != nil || host != "127.0.0.1" || port == "" {
			t.Fatalf("RemoteAddr %q", info.RemoteAddr)
		}
	})

	t.Run("POST echoed", func(t *testing.T) {
		for _, size := range []int{0, 11, 100 << 10, 5 << 20} {
			payload := make([]byte, size)
			_, _ = hPattern(byte(size)).Read(payload)
			resp, err := c.Post(p.URL("/echo"), "application/octet-stream", bytes.NewReader(payload))
			if err != nil {
				t.Fatalf("POST %d bytes: %v", size, err)
			}
			err = hVerify(resp.Body, byte(size), int64(size))
			rest, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || len(rest) > 0 || resp.StatusCode != 200 || resp.ContentLength != int64(size) ||
				resp.Header.Get("X-Req-Length") != strconv.Itoa(size) {
				t.Fatalf("POST %d bytes: %d, Content-Length %d, X-Req-Length %s, %d extra bytes: %v",
					size, resp.StatusCode, resp.ContentLength, resp.Header.Get("X-Req-Length"), len(rest), err)
			}
		}
	})

	t.Run("chunked upload", func(t *testing.T) {
		pr, pw := io.Pipe()
		var want bytes.Buffer
		for i := range 200 {
			fmt.Fprintf(&want, "line %d of a body of unknown length\n", i)
		}
		go func() {
			data := want.Bytes()
			for len(data) > 0 {
				k := min(len(data), 1000)
				if _, err := pw.Write(data[:k]); err != nil {
					return
				}
				data = data[k:]
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", p.URL("/echo"), pr)
		resp, body := hDo(t, c, req)
		if resp.StatusCode != 200 || body != want.String() || resp.Header.Get("X-Req-Length") != "-1" ||
			len(resp.TransferEncoding) != 1 {
			t.Fatalf("chunked echo: %d, %d bytes (want %d), X-Req-Length %s, TransferEncoding %v",
				resp.StatusCode, len(body), want.Len(), resp.Header.Get("X-Req-Length"), resp.TransferEncoding)
		}
	})

	t.Run("Flusher streams", func(t *testing.T) {
		resp, err := c.Get(p.URL("/stream"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		for i := range 3 {
			want := fmt.Sprintf("piece %d;", i)
			got := make([]byte, len(want))
			if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != want {
				t.Fatalf("piece %d: %q %v", i, got, err)
			}
			// The handler writes the next piece only now: the client had
			// this one before.
			streamNext <- struct{}{}
		}
		if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
			t.Fatalf("after the pieces: %q %v", rest, err)
		}
	})

	t.Run("ReverseProxy streams", func(t *testing.T) {
		resp, err := c.Get(p.URL("/rp/stream"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		for i := range 3 {
			want := fmt.Sprintf("backend %d;", i)
			got := make([]byte, len(want))
			if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != want {
				t.Fatalf("piece %d: %q %v", i, got, err)
			}
			backendNext <- struct{}{}
		}
		if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
			t.Fatalf("after the pieces: %q %v", rest, err)
		}
		resp2, body := hDo(t, c, gaRequest("POST", p.URL("/rp/up"), strings.NewReader("through two proxies")))
		if resp2.StatusCode != 200 || body != "through two proxies" || resp2.Header.Get("X-Backend-Path") != "/rp/up" {
			t.Fatalf("POST through the ReverseProxy: %d %q %v", resp2.StatusCode, body, resp2.Header)
		}
	})

	t.Run("HEAD 204 304 without bodies", func(t *testing.T) {
		// One connection: a body byte too many would break the next
		// response.
		r := hDial(t, p.Addr, gaWait)
		r.write("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := r.response("HEAD")
		if resp.StatusCode != 200 || resp.ContentLength != 13 || body != "" {
			t.Fatalf("HEAD: %d, Content-Length %d, body %q", resp.StatusCode, resp.ContentLength, body)
		}
		r.write("GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body = r.response("GET"); resp.StatusCode != 204 || body != "" {
			t.Fatalf("204: %d %q", resp.StatusCode, body)
		}
		r.write("GET /notmodified HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body = r.response("GET"); resp.StatusCode != 304 || body != "" || resp.Header.Get("ETag") != `"v1"` {
			t.Fatalf("304: %d %q %v", resp.StatusCode, body, resp.Header)
		}
		r.write("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body = r.response("GET"); resp.StatusCode != 200 || body != "Hello, World!" {
			t.Fatalf("GET after them: %d %q", resp.StatusCode, body)
		}
		for range 2 {
			if err := <-statusWrites; !errors.Is(err, http.ErrBodyNotAllowed) {
				t.Fatalf("Write for 204/304: %v, want http.ErrBodyNotAllowed", err)
			}
		}
	})

	t.Run("Hijack refused", func(t *testing.T) {
		resp, body := hDo(t, c, gaRequest("GET", p.URL("/hijack"), nil))
		if resp.StatusCode != 200 || body != "refused: true true" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})

	t.Run("panic", func(t *testing.T) {
		resp, _ := hDo(t, c, gaRequest("GET", p.URL("/panic"), nil))
		if resp.StatusCode != 500 {
			t.Fatalf("panic before the head: %d, want 500", resp.StatusCode)
		}
		resp, err := c.Get(p.URL("/panic-late"))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil || string(body) != "begun" {
			t.Fatalf("panic mid-response: %q, %v; want the start and an error", body, err)
		}
		if l := logs.String(); !strings.Contains(l, "gaPanicEarly") || !strings.Contains(l, "gaPanicLate") {
			t.Fatalf("panics not logged:\n%s", l)
		}
	})

	t.Run("client disconnect cancels", func(t *testing.T) {
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: gaWait}).Get(p.URL("/slow"))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != "start" {
			t.Fatalf("%q %v", got, err)
		}
		resp.Body.Close() // mid-body: the connection closes
		select {
		case err := <-slowCancelled:
			if !errors.Is(err, node.ErrSessionEnded) {
				t.Fatalf("write after the client left: %v, want node.ErrSessionEnded", err)
			}
		case <-time.After(gaWait):
			t.Fatal("the handler's context was not cancelled when its client went away")
		}
	})

	t.Run("103 Early Hints", func(t *testing.T) {
		var mu sync.Mutex
		var hints []string
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			mu.Lock()
			hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
			mu.Unlock()
			if code == http.StatusEarlyHints {
				close(hintSeen)
			}
			return nil
		}}
		req := gaRequest("GET", p.URL("/hints"), nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, body := hDo(t, c, req)
		mu.Lock()
		defer mu.Unlock()
		if resp.StatusCode != 200 || body != "final" || len(hints) != 1 || hints[0] != "103 </style.css>; rel=preload; as=style" {
			t.Fatalf("final %d %q; 1xx seen: %q", resp.StatusCode, body, hints)
		}
		if resp.Header.Get("Link") == "" {
			t.Errorf("the final head lost the Link field (net/http keeps the header map after a 1xx)")
		}
	})

	t.Run("HTTP/2", func(t *testing.T) {
		info := gaGetInfo(t, h2cClient(t, p.Addr), gaRequest("GET", "http://h2.test/info/h2?q=2", nil))
		if info.Proto != "HTTP/2.0" || info.ProtoMajor != 2 || info.ProtoMinor != 0 || info.Host != "h2.test" ||
			info.Path != "/info/h2" || info.RawQuery != "q=2" {
			t.Fatalf("request as the handler saw it: %+v", info)
		}
	})
}

// gaRequest is http.NewRequest for a URL known to be valid.
func gaRequest(method, url string, body io.Reader) *http.Request {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		panic(err)
	}
	return req
}

// TestGoAdapterWebSocket: the WebSocket callback echoes; the client's
// close is io.EOF for it; the node's Close is a close frame for the
// client, CloseWith one with its code.
func TestGoAdapterWebSocket(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "", "[blastbeat:*]\nnode = ga\n")
	ended := make(chan string, 4)
	gaServe(t, node.ServeConfig{WebSocket: func(s *node.WebSocket) {
		ctx := s.Context()
		for {
			msg, binary, err := s.Receive(ctx)
			if err != nil {
				ended <- s.Request().URL.Path + ": " + err.Error()
				return
			}
			if string(msg) == "bye" {
				s.Close()
				ended <- s.Request().URL.Path + ": closed"
				return
			}
			if string(msg) == "deny" {
				if err := s.CloseWith(4001, "unauthorized"); err != nil {
					ended <- s.Request().URL.Path + ": CloseWith: " + err.Error()
					return
				}
				ended <- s.Request().URL.Path + ": closed"
				return
			}
			if err := s.Send(ctx, msg, binary); err != nil {
				ended <- s.Request().URL.Path + ": send: " + err.Error()
				return
			}
		}
	}}, http.HandlerFunc(gaInfoHandler), p.ZMQ)
	waitRoutable(t, p, "", "/")

	c, _ := wDial(t, p, "/ws/echo", ws.Dialer{})
	if err := c.echo(ws.OpText, []byte("hello, node")); err != nil {
		t.Fatal(err)
	}
	if err := c.echo(ws.OpBinary, []byte{0, 1, 2, 0xff}); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 40<<10) // 640 KiB: more than a credit window
	if err := c.echo(ws.OpBinary, big); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case got := <-ended:
		if got != "/ws/echo: EOF" {
			t.Fatalf("callback ended with %q, want io.EOF", got)
		}
	case <-time.After(gaWait):
		t.Fatal("the callback did not see the client go")
	}

	c2, _ := wDial(t, p, "/ws/bye", ws.Dialer{})
	_ = c2.SetDeadline(time.Now().Add(gaWait))
	if err := wsutil.WriteClientMessage(c2, ws.OpText, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	c2.expectClose(t, ws.StatusNormalClosure)
	if got := <-ended; got != "/ws/bye: closed" {
		t.Fatalf("callback: %q", got)
	}

	// CloseWith: the node's code reaches the client.
	c3, _ := wDial(t, p, "/ws/deny", ws.Dialer{})
	_ = c3.SetDeadline(time.Now().Add(gaWait))
	if err := wsutil.WriteClientMessage(c3, ws.OpText, []byte("deny")); err != nil {
		t.Fatal(err)
	}
	f, err := c3.frame(gaWait)
	if err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("CloseWith: %v frame, %v; want a close frame", f.Header.OpCode, err)
	}
	if code, reason := ws.ParseCloseFrameData(f.Payload); code != 4001 || reason != "unauthorized" {
		t.Fatalf("CloseWith: close %d %q, want 4001 \"unauthorized\"", code, reason)
	}
	if got := <-ended; got != "/ws/deny: closed" {
		t.Fatalf("callback: %q", got)
	}
}

// TestGoAdapterMultiProxy: one node serving two proxies; concurrent
// requests through both, plain and streamed, each answered whole by the
// proxy that was asked.
func TestGoAdapterMultiProxy(t *testing.T) {
	t.Parallel()
	vhosts := "[blastbeat:*]\nnode = ga\n"
	proxies := []*proxy{startProxy(t, mpExtra, vhosts), startProxy(t, mpExtra, vhosts)}
	gaServe(t, node.ServeConfig{MaxConcurrent: 4}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/stream/") {
			for i := range 3 {
				fmt.Fprintf(w, "%s %d;", r.URL.Path, i)
				w.(http.Flusher).Flush()
			}
			return
		}
		io.WriteString(w, "ga "+r.URL.Path)
	}), proxies[0].ZMQ, proxies[1].ZMQ)
	for _, p := range proxies {
		waitRoutable(t, p, "", "/ready")
	}

	const total, workers = 200, 8
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * gaWait}
	jobs := make(chan int)
	errs := make(chan error, total)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				via := i % len(proxies)
				path := fmt.Sprintf("/plain/%d/via/%d", i, via)
				want := "ga " + path
				if i%4 == 0 {
					path = fmt.Sprintf("/stream/%d/via/%d", i, via)
					want = fmt.Sprintf("%s 0;%s 1;%s 2;", path, path, path)
				}
				status, body, err := mpGet(client, proxies[via].URL(path))
				switch {
				case err != nil:
					errs <- fmt.Errorf("GET %s: %v", path, err)
				case status != 200 || body != want:
					errs <- fmt.Errorf("GET %s: %d %q", path, status, body)
				}
			}
		}()
	}
	for i := range total {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	bad := 0
	for err := range errs {
		if bad++; bad <= 10 {
			t.Error(err)
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d requests failed", bad, total)
	}
}
