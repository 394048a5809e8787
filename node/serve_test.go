package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
	"github.com/blastbeat/blastbeat/protocol"
)

// Serve against the stub proxy (node_test.go): the messages a handler's
// response becomes, credits, `end`, the stop.

// syncBuf is a log destination safe for concurrent use.
type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// served is a Serve running against a stub.
type served struct {
	*stub
	id   string
	log  *syncBuf
	stop func() error // cancels Serve's context and returns what it returned
}

// startServe runs Serve with cfg and h against a new stub and waits for
// the node's announcement (an unsolicited pong).
func startServe(t *testing.T, cfg node.ServeConfig, h http.Handler) *served {
	t.Helper()
	return startServeOn(t, cfg, h, startStub(t))[0]
}

// environ encodes a uwsgi packet of the key/value pairs.
func environ(kv ...string) string {
	b, start := protocol.BeginUwsgi(nil)
	for i := 0; i+1 < len(kv); i += 2 {
		b = protocol.AppendUwsgiString(b, kv[i], kv[i+1])
	}
	b, err := protocol.FinishUwsgi(b, start)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// get is the environ of GET uri.
func get(uri string, kv ...string) string {
	path, query, _ := strings.Cut(uri, "?")
	return environ(append([]string{"REQUEST_METHOD", "GET", "REQUEST_URI", uri, "PATH_INFO", path,
		"QUERY_STRING", query, "SERVER_PROTOCOL", "HTTP/1.1", "HTTP_HOST", "example.test"}, kv...)...)
}

// request sends a head and the proxy's first credit.
func (s *served) request(sid, head string) {
	s.send(s.id, sid, "uwsgi", head)
	s.send(s.id, sid, "credit", "262144")
}

// expectFrom receives one message and checks its sid and type.
func (s *served) expectFrom(sid, typ string) frame {
	s.t.Helper()
	f := s.recv()
	if f.sid != sid || f.typ != typ {
		s.t.Fatalf("got %s %q %q, want %s for %q", f.typ, f.sid, short(f.body), typ, sid)
	}
	return f
}

func TestServeSmallResponse(t *testing.T) {
	s := startServe(t, node.ServeConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "hello %s", r.URL.Query().Get("who"))
	}))
	s.request("s1", get("/?who=you"))
	s.expect(frame{"srv", "s1", "headers", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nhello you"})

	// Pings are answered with the credits feature.
	s.send("srv", "", "ping", "")
	s.expect(frame{"srv", "", "pong", node.CreditsFeature})

	// The next request of the sid (keep-alive) starts afresh.
	s.request("s1", get("/?who=me"))
	s.expect(frame{"srv", "s1", "headers", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nhello me"})
}

func TestServeWithoutCredits(t *testing.T) {
	s := startServe(t, node.ServeConfig{DisableCredits: true}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<p>no credit needed</p>")
	}))
	s.send("srv", "s1", "uwsgi", get("/"))
	// Sniffed like net/http.
	s.expect(frame{"srv", "s1", "headers", "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 23\r\n\r\n<p>no credit needed</p>"})
	s.send("srv", "", "ping", "")
	s.expect(frame{"srv", "", "pong", ""})
}

// TestServeCreditPacing: a Write waits for credit; what credit allows
// goes at once.
func TestServeCreditPacing(t *testing.T) {
	const size = 100000
	wrote := make(chan error, 1)
	s := startServe(t, node.ServeConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		_, err := w.Write(bytes.Repeat([]byte("x"), size))
		wrote <- err
	}))
	s.send("srv", "s1", "uwsgi", get("/big"))
	s.send("srv", "s1", "credit", "10000")
	s.expect(frame{"srv", "s1", "headers", "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 100000\r\n\r\n"})
	if f := s.expectFrom("s1", "body"); len(f.body) != 10000 {
		t.Fatalf("first body: %d bytes, want 10000", len(f.body))
	}
	select {
	case err := <-wrote:
		t.Fatalf("Write returned (%v) before the credit for the rest", err)
	default:
	}
	s.send("srv", "s1", "credit", "90000")
	got := 10000
	for got < size {
		got += len(s.expectFrom("s1", "body").body)
	}
	if got != size {
		t.Fatalf("sent %d bytes, want %d", got, size)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// TestServeStreaming: Flush without Content-Length sends chunks; the
// handler's return sends the final empty chunk.
func TestServeStreaming(t *testing.T) {
	next := make(chan struct{})
	s := startServe(t, node.ServeConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for i := range 3 {
			fmt.Fprintf(w, "piece %d;", i)
			w.(http.Flusher).Flush()
			<-next
		}
	}))
	s.request("s1", get("/stream"))
	s.expect(frame{"srv", "s1", "headers", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"})
	for i := range 3 {
		s.expect(frame{"srv", "s1", "chunk", fmt.Sprintf("piece %d;", i)})
		next <- struct{}{}
	}
	s.expect(frame{"srv", "s1", "chunk", ""})
}

// TestServeRequestBody: bodies stream in (Content-Length, and chunked up
// to the empty body) and are echoed.
func TestServeRequestBody(t *testing.T) {
	s := startServe(t, node.ServeConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %v %q", r.ContentLength, r.TransferEncoding, b)
	}))
	s.request("s1", environ("REQUEST_METHOD", "POST", "REQUEST_URI", "/up", "SERVER_PROTOCOL", "HTTP/1.1", "CONTENT_LENGTH", "10"))
	s.send("srv", "s1", "body", "01234")
	s.send("srv", "s1", "body", "56789")
	f := s.expectFrom("s1", "headers")
	if !strings.HasSuffix(f.body, "\r\n\r\n10 [] \"0123456789\"") {
		t.Fatalf("response %q", f.body)
	}

	s.request("s2", environ("REQUEST_METHOD", "POST", "REQUEST_URI", "/up", "SERVER_PROTOCOL", "HTTP/1.1", "HTTP_TRANSFER_ENCODING", "chunked"))
	s.send("srv", "s2", "body", "abc")
	s.send("srv", "s2", "body", "def")
	s.send("srv", "s2", "body", "")
	f = s.expectFrom("s2", "headers")
	if !strings.HasSuffix(f.body, "\r\n\r\n-1 [chunked] \"abcdef\"") {
		t.Fatalf("response %q", f.body)
	}
}

// TestServeEndCancels: the proxy's `end` cancels the handler's context,
// and its later writes fail.
func TestServeEndCancels(t *testing.T) {
	result := make(chan error, 1)
	s := startServe(t, node.ServeConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		_, err := w.Write([]byte("too late"))
		result <- err
	}))
	s.request("s1", get("/wait"))
	s.expectFrom("s1", "headers")
	s.send("srv", "s1", "end", "")
	select {
	case err := <-result:
		if !errors.Is(err, node.ErrSessionEnded) {
			t.Fatalf("Write after end: %v, want ErrSessionEnded", err)
		}
	case <-time.After(stubTimeout):
		t.Fatal("the handler's context was not cancelled by end")
	}
	// Nothing more for s1: the next message is the pong.
	s.send("srv", "", "ping", "")
	s.expect(frame{"srv", "", "pong", node.CreditsFeature})
}

// TestServePanic: 500 before anything went out; `end` after.
func TestServePanic(t *testing.T) {
	s := startServe(t, node.ServeConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			io.WriteString(w, "started")
			w.(http.Flusher).Flush()
		}
		panic("boom")
	}))
	s.request("s1", get("/early"))
	if f := s.expectFrom("s1", "headers"); !strings.HasPrefix(f.body, "HTTP/1.1 500 ") {
		t.Fatalf("response %q", f.body)
	}
	s.request("s2", get("/late"))
	s.expectFrom("s2", "headers")
	s.expect(frame{"srv", "s2", "chunk", "started"})
	s.expect(frame{"srv", "s2", "end", ""})
	if !strings.Contains(s.log.String(), "boom") {
		t.Errorf("panic not logged: %q", s.log.String())
	}
}

// TestServeMaxWaiting: with MaxConcurrent handlers running and
// MaxWaiting requests waiting, the next request is answered 503 with
// Retry-After at once (closing the connection when a body follows); a
// waiting request the proxy ends gives its place back.
func TestServeMaxWaiting(t *testing.T) {
	started := make(chan string, 4)
	release := make(chan struct{})
	s := startServe(t, node.ServeConfig{MaxConcurrent: 1, MaxWaiting: 1}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- r.URL.Path
		if r.URL.Path == "/first" {
			<-release
		}
		io.WriteString(w, r.URL.Path)
	}))
	s.request("s1", get("/first"))
	if p := <-started; p != "/first" {
		t.Fatalf("started %s", p)
	}
	s.request("s2", get("/second")) // waits
	s.request("s3", get("/third"))  // one too many
	f := s.expectFrom("s3", "headers")
	if !strings.HasPrefix(f.body, "HTTP/1.1 503 ") || !strings.Contains(f.body, "\r\nRetry-After: 1\r\n") || strings.Contains(f.body, "Connection: close") {
		t.Fatalf("over MaxWaiting: %q, want a 503 with Retry-After, keeping the connection", f.body)
	}
	s.request("s4", environ("REQUEST_METHOD", "POST", "REQUEST_URI", "/up", "SERVER_PROTOCOL", "HTTP/1.1", "CONTENT_LENGTH", "10"))
	if f := s.expectFrom("s4", "headers"); !strings.HasPrefix(f.body, "HTTP/1.1 503 ") || !strings.Contains(f.body, "\r\nConnection: close\r\n") {
		t.Fatalf("over MaxWaiting with a body: %q, want a 503 closing the connection", f.body)
	}
	if !strings.Contains(s.log.String(), "answered 503") {
		t.Errorf("refusal not logged: %q", s.log.String())
	}
	// s4's refusal came within a second of the report of s3's: it is
	// reported once that second is over, though no refusal follows.
	// Before, a count was reported only by the next refusal.
	for deadline := time.Now().Add(10 * time.Second); strings.Count(s.log.String(), "answered 503") < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the last refusal was never reported: %q", s.log.String())
		}
	}

	s.send("srv", "s2", "end", "") // the waiting one's client went away
	s.request("s5", get("/fifth"))
	s.send("srv", "", "ping", "")
	s.expect(frame{"srv", "", "pong", node.CreditsFeature}) // s5 waits: no 503 came first
	close(release)
	s.expectFrom("s1", "headers")
	if p := <-started; p != "/fifth" {
		t.Fatalf("started %s after /first, want /fifth (/second was ended)", p)
	}
	s.expectFrom("s5", "headers")
}

// TestServeMaxConcurrent: a request beyond the limit waits for a handler
// to return; at the stop it goes back to the proxy with `retry`, while
// the running one gets `end`.
func TestServeMaxConcurrent(t *testing.T) {
	started := make(chan string, 4)
	release := make(chan struct{})
	// /stuck waits for its context: the stop's drain cuts it at
	// ShutdownTimeout.
	s := startServe(t, node.ServeConfig{MaxConcurrent: 1, ShutdownTimeout: 100 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- r.URL.Path
		if r.URL.Path == "/first" {
			<-release
		}
		if r.URL.Path == "/stuck" {
			<-r.Context().Done()
		}
		io.WriteString(w, r.URL.Path)
	}))
	s.request("s1", get("/first"))
	if p := <-started; p != "/first" {
		t.Fatalf("started %s", p)
	}
	s.request("s2", get("/second"))
	s.send("srv", "", "ping", "")
	s.expect(frame{"srv", "", "pong", node.CreditsFeature}) // s2 is in: it waits
	select {
	case p := <-started:
		t.Fatalf("%s started beyond MaxConcurrent", p)
	default:
	}
	close(release)
	s.expectFrom("s1", "headers")
	if p := <-started; p != "/second" {
		t.Fatalf("started %s", p)
	}
	s.expectFrom("s2", "headers")

	s.request("s3", get("/stuck"))
	<-started
	s.request("s4", get("/queued"))
	s.send("srv", "", "ping", "")
	s.expect(frame{"srv", "", "pong", node.CreditsFeature})
	if err := s.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// The stop says draining first (a pong), then s4 goes back and s3,
	// stuck, is cut at ShutdownTimeout.
	s.expect(frame{"srv", "", "pong", node.CreditsFeature + " " + node.DrainingFeature})
	got := map[string]string{}
	for range 2 {
		f := s.recv()
		got[f.sid] = f.typ
	}
	if got["s3"] != "end" || got["s4"] != "retry" {
		t.Fatalf("at the stop: %v, want s3 end, s4 retry", got)
	}
}

// TestServeBufferFull: a body the handler does not read, past
// MaxBuffer, fails the request with 413 and Connection: close.
func TestServeBufferFull(t *testing.T) {
	result := make(chan error, 1)
	s := startServe(t, node.ServeConfig{MaxBuffer: 10}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		_, err := io.ReadAll(r.Body)
		result <- err
	}))
	s.request("s1", environ("REQUEST_METHOD", "PUT", "REQUEST_URI", "/", "SERVER_PROTOCOL", "HTTP/1.1", "CONTENT_LENGTH", "16"))
	s.send("srv", "s1", "body", "01234567")
	s.send("srv", "s1", "body", "89abcdef")
	f := s.expectFrom("s1", "headers")
	if !strings.HasPrefix(f.body, "HTTP/1.1 413 ") || !strings.Contains(f.body, "Connection: close\r\n") {
		t.Fatalf("response %q", f.body)
	}
	if err := <-result; !errors.Is(err, node.ErrBufferFull) {
		t.Fatalf("body read: %v, want ErrBufferFull", err)
	}
}

// TestServeWebSocket: messages both ways, the proxy's end is io.EOF.
func TestServeWebSocket(t *testing.T) {
	result := make(chan error, 1)
	s := startServe(t, node.ServeConfig{WebSocket: func(ws *node.WebSocket) {
		ctx := ws.Context()
		for {
			msg, binary, err := ws.Receive(ctx)
			if err != nil {
				result <- err
				return
			}
			if err := ws.Send(ctx, append([]byte(ws.Request().URL.Path+":"), msg...), binary); err != nil {
				result <- err
				return
			}
		}
	}}, http.NotFoundHandler())
	s.request("w1", get("/chat", "HTTP_CONNECTION", "Upgrade", "HTTP_UPGRADE", "websocket"))
	s.send("srv", "w1", "websocket", "hi")
	s.expect(frame{"srv", "w1", "websocket", "/chat:hi"})
	s.send("srv", "w1", "websocket-binary", "\x00\x01")
	s.expect(frame{"srv", "w1", "websocket-binary", "/chat:\x00\x01"})
	s.send("srv", "w1", "end", "")
	if err := <-result; err != io.EOF {
		t.Fatalf("Receive after end: %v, want io.EOF", err)
	}
}

// TestServeWebSocketCloseWith: CloseWith's code and reason are `end`'s
// body; a code a peer may not send is refused, and nothing is sent.
func TestServeWebSocketCloseWith(t *testing.T) {
	refused := make(chan error, 1)
	s := startServe(t, node.ServeConfig{WebSocket: func(ws *node.WebSocket) {
		refused <- ws.CloseWith(1005, "")
		_ = ws.CloseWith(4001, "unauthorized")
	}}, http.NotFoundHandler())
	s.request("w1", get("/chat", "HTTP_CONNECTION", "Upgrade", "HTTP_UPGRADE", "websocket"))
	if err := <-refused; !errors.Is(err, node.ErrCloseCode) {
		t.Fatalf("CloseWith(1005): %v, want ErrCloseCode", err)
	}
	s.expect(frame{"srv", "w1", "end", "\x0f\xa1unauthorized"})
}

// TestServeWebSocketRefused: without a WebSocket callback the session is
// ended at once.
func TestServeWebSocketRefused(t *testing.T) {
	s := startServe(t, node.ServeConfig{}, http.NotFoundHandler())
	s.request("w1", get("/chat", "HTTP_CONNECTION", "Upgrade", "HTTP_UPGRADE", "websocket"))
	s.expect(frame{"srv", "w1", "end", "\x03\xf3no WebSocket handler"}) // 1011
}

// TestServeWebSocketCloseCodes: how the node's own endings of a WebSocket
// close it for the client (`end`'s body): its stop with 1001 (the client
// should come back, to another node; it said 1000, all done), a panic in
// the callback with 1011.
func TestServeWebSocketCloseCodes(t *testing.T) {
	s := startServe(t, node.ServeConfig{WebSocket: func(ws *node.WebSocket) {
		if ws.Request().URL.Path == "/panic" {
			panic("boom")
		}
		<-ws.Context().Done()
	}}, http.NotFoundHandler())
	s.request("p1", get("/panic", "HTTP_CONNECTION", "Upgrade", "HTTP_UPGRADE", "websocket"))
	s.expect(frame{"srv", "p1", "end", "\x03\xf3internal error"}) // 1011
	s.request("w1", get("/chat", "HTTP_CONNECTION", "Upgrade", "HTTP_UPGRADE", "websocket"))
	s.send("srv", "", "ping", "")
	s.expect(frame{"srv", "", "pong", node.CreditsFeature}) // w1 runs
	if err := s.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	s.expect(frame{"srv", "", "pong", node.CreditsFeature + " " + node.DrainingFeature}) // first: no new sessions
	s.expect(frame{"srv", "w1", "end", "\x03\xe9node shutting down"})                    // 1001
}

// TestServeConfigErrors: what Serve refuses before it starts.
func TestServeConfigErrors(t *testing.T) {
	ctx := context.Background()
	if err := node.Serve(ctx, node.ServeConfig{Identity: "x"}, http.NotFoundHandler()); err == nil {
		t.Error("Serve without endpoints: no error")
	}
	if err := node.Serve(ctx, node.ServeConfig{Identity: "x", Endpoints: []string{"tcp://127.0.0.1:1"}}, nil); err == nil {
		t.Error("Serve with a nil handler: no error")
	}
	if err := node.Serve(ctx, node.ServeConfig{Identity: "x", Endpoints: []string{"bogus"}}, http.NotFoundHandler()); err == nil {
		t.Error("Serve with a bad endpoint: no error")
	}
}

// TestServeWebSocketCredit: a whole message that does not fit the credit
// left waits while the proxy will top it up (less than half the window
// left), and goes at once while it will not (more than half left: the
// proxy waits for the node to spend it).
func TestServeWebSocketCredit(t *testing.T) {
	s := startServe(t, node.ServeConfig{WebSocket: func(ws *node.WebSocket) {
		ctx := ws.Context()
		for {
			msg, _, err := ws.Receive(ctx)
			if err != nil {
				return
			}
			n, _ := strconv.Atoi(string(msg))
			if ws.Send(ctx, bytes.Repeat([]byte("m"), n), true) != nil {
				return
			}
		}
	}}, http.NotFoundHandler())
	s.send("srv", "w1", "uwsgi", get("/ws", "HTTP_CONNECTION", "Upgrade", "HTTP_UPGRADE", "websocket"))
	s.send("srv", "w1", "credit", "1000")
	s.send("srv", "w1", "websocket", "10")
	s.expectFrom("w1", "websocket-binary")
	// 990 left, more than half the window: 995 bytes go, 5 over.
	s.send("srv", "w1", "websocket", "995")
	if f := s.expectFrom("w1", "websocket-binary"); len(f.body) != 995 {
		t.Fatalf("%d bytes", len(f.body))
	}
	s.send("srv", "w1", "credit", "605") // back to 600
	s.send("srv", "w1", "websocket", "200")
	s.expectFrom("w1", "websocket-binary")
	// 400 left, less than half: 500 bytes wait for the proxy's top-up.
	s.send("srv", "w1", "websocket", "500")
	s.send("srv", "", "ping", "")
	s.expect(frame{"srv", "", "pong", node.CreditsFeature})
	s.send("srv", "w1", "credit", "600")
	if f := s.expectFrom("w1", "websocket-binary"); len(f.body) != 500 {
		t.Fatalf("%d bytes", len(f.body))
	}
}

// TestServeIdleTimeout: a session that waits on its proxy (its response
// for credit, its handler for request body) and hears nothing from it for
// IdleTimeout is ended: `end` goes out, and the handler's Write or Read
// fails. Before, the handler waited for good (a proxy that restarted
// forgets its sessions and never sends their `end`).
func TestServeIdleTimeout(t *testing.T) {
	results := make(chan error, 2)
	s := startServe(t, node.ServeConfig{IdleTimeout: 100 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			_, err := io.ReadAll(r.Body)
			results <- err
			return
		}
		w.WriteHeader(200)
		_, err := w.Write(make([]byte, 4096)) // more than its credit
		if err == nil {
			w.(http.Flusher).Flush()
			_, err = w.Write(make([]byte, 4096))
		}
		results <- err
	}))
	s.send(s.id, "s1", "uwsgi", get("/download"))
	s.send(s.id, "s1", "credit", "100")
	s.expectFrom("s1", "headers")
	for f := s.recv(); f.typ != "end"; f = s.recv() {
		if f.sid != "s1" || f.typ != "chunk" {
			t.Fatalf("got %s for %q, want s1's chunks within its credit, then end", f.typ, f.sid)
		}
	}
	if err := <-results; !errors.Is(err, node.ErrSessionEnded) {
		t.Fatalf("Write of a session idle past IdleTimeout: %v, want ErrSessionEnded", err)
	}
	s.send(s.id, "s2", "uwsgi", environ("REQUEST_METHOD", "POST", "REQUEST_URI", "/up", "PATH_INFO", "/up",
		"SERVER_PROTOCOL", "HTTP/1.1", "HTTP_HOST", "example.test", "CONTENT_LENGTH", "10"))
	s.send(s.id, "s2", "credit", "262144")
	s.send(s.id, "s2", "body", "abc")
	s.expectFrom("s2", "end")
	if err := <-results; !errors.Is(err, node.ErrSessionEnded) {
		t.Fatalf("Read of a session idle past IdleTimeout: %v, want ErrSessionEnded", err)
	}
}

// TestServeCloseNotify: the ResponseWriter is an http.CloseNotifier (gin
// asserts it unchecked), whose channel fires once the proxy ends the
// session.
func TestServeCloseNotify(t *testing.T) {
	fired := make(chan bool, 1)
	s := startServe(t, node.ServeConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn, ok := w.(http.CloseNotifier) //nolint:staticcheck // the deprecated interface is the point
		if !ok {
			fired <- false
			return
		}
		if cn.CloseNotify() != cn.CloseNotify() {
			t.Error("CloseNotify made a new channel per call")
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		fired <- <-cn.CloseNotify()
	}))
	s.request("s1", get("/sse"))
	s.expectFrom("s1", "headers")
	s.send("srv", "s1", "end", "")
	select {
	case ok := <-fired:
		if !ok {
			t.Fatal("no http.CloseNotifier, or it said false")
		}
	case <-time.After(stubTimeout):
		t.Fatal("CloseNotify did not fire on end")
	}
}

// TestServePanicAfterWholeResponse: a handler that panics once its
// response went whole (Content-Length written and flushed) sends no
// `end` after it, which would cut the client's kept-alive connection.
func TestServePanicAfterWholeResponse(t *testing.T) {
	s := startServe(t, node.ServeConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		_, _ = w.Write([]byte("ok"))
		w.(http.Flusher).Flush()
		panic("after the response")
	}))
	s.request("s1", get("/x"))
	s.expectFrom("s1", "headers")
	s.expectFrom("s1", "body")
	// The handler has returned once its panic is in the log.
	deadline := time.Now().Add(stubTimeout)
	for !strings.Contains(s.log.String(), "after the response") {
		if time.Now().After(deadline) {
			t.Fatal("no panic in the log")
		}
		time.Sleep(time.Millisecond)
	}
	s.send("srv", "", "ping", "")
	s.expect(frame{"srv", "", "pong", node.CreditsFeature}) // no end before it
}

// TestServeGoexit: a handler that ends with runtime.Goexit (t.FailNow in
// a test server, say) ends its session at once; before, nothing was sent
// and the client waited for the proxy's timeout.
func TestServeGoexit(t *testing.T) {
	s := startServe(t, node.ServeConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runtime.Goexit()
	}))
	s.request("s1", get("/x"))
	s.expectFrom("s1", "end")
}

// TestServeHeadSniffsContentType: HEAD gets the Content-Type the GET
// would (sniffed from what the handler writes), as with net/http.
func TestServeHeadSniffsContentType(t *testing.T) {
	s := startServe(t, node.ServeConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<html><body>hello</body></html>")
	}))
	s.request("s1", environ("REQUEST_METHOD", "HEAD", "REQUEST_URI", "/", "PATH_INFO", "/",
		"SERVER_PROTOCOL", "HTTP/1.1", "HTTP_HOST", "example.test"))
	f := s.expectFrom("s1", "headers")
	if !strings.Contains(f.body, "Content-Type: text/html") {
		t.Fatalf("HEAD head %q, want the sniffed text/html", f.body)
	}
}

// TestServeTrailerPrefixNotInHead: a header key with http.TrailerPrefix
// announces a trailer (net/http sends it after the body); it is not a
// field of the head ("Trailer:X-Sum: v" read as a Trailer field).
// http.Header.WriteSubset drops names that are not tokens: this guards
// that.
func TestServeTrailerPrefixNotInHead(t *testing.T) {
	s := startServe(t, node.ServeConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set(http.TrailerPrefix+"X-Sum", "v")
		io.WriteString(w, "ok")
	}))
	s.request("s1", get("/"))
	s.expect(frame{"srv", "s1", "headers", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"})
}

// TestServeWebSocketOverBuffer: messages the callback does not receive,
// past MaxBuffer, end the session with 1009 (too big), not 1000.
func TestServeWebSocketOverBuffer(t *testing.T) {
	s := startServe(t, node.ServeConfig{MaxBuffer: 10, WebSocket: func(ws *node.WebSocket) {
		<-ws.Context().Done()
	}}, http.NotFoundHandler())
	s.request("w1", get("/chat", "HTTP_CONNECTION", "Upgrade", "HTTP_UPGRADE", "websocket"))
	s.send("srv", "w1", "websocket", "0123456789")
	s.send("srv", "w1", "websocket", "more")
	s.expect(frame{"srv", "w1", "end", "\x03\xf1messages over the node's buffer"}) // 1009
}

// TestServeStopDrains: at the stop a request in flight finishes, as with
// net/http's Shutdown: its handler keeps its context and its response
// goes whole (before, the stop cancelled it and sent `end`: every
// request in flight during a deploy was cut); new requests go back to
// the proxy (`retry`), and Serve returns once the handler did.
func TestServeStopDrains(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	s := startServe(t, node.ServeConfig{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			io.WriteString(w, "new") // answered until the stop begins
			return
		}
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "done")
	}))
	s.request("s1", get("/slow"))
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	// The stop has begun once a new request goes back.
	for i := 0; ; i++ {
		s.request(fmt.Sprintf("n%d", i), get("/new"))
		if f := s.recv(); f.typ == "retry" {
			break
		} else if f.sid == "s1" {
			t.Fatalf("s1 got %s before its handler returned", f.typ)
		}
	}
	close(release)
	for {
		f := s.recv()
		if f.sid != "s1" {
			continue // another n's answer
		}
		if f.typ != "headers" || !strings.HasSuffix(f.body, "\r\n\r\ndone") {
			t.Fatalf("s1 at the stop: %s %q, want its whole response", f.typ, f.body)
		}
		break
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestServeBufferTotal: past MaxBufferTotal, the session holding the most
// unread fails (413) and what it held is freed; the others go on (before,
// MaxBuffer alone bounded each session: MaxConcurrent + MaxWaiting
// uploads to handlers that do not read held up to gigabytes).
func TestServeBufferTotal(t *testing.T) {
	read := make(chan string, 2)
	release := make(chan struct{})
	s := startServe(t, node.ServeConfig{MaxBuffer: 100, MaxBufferTotal: 150}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reader" {
			<-r.Context().Done() // reads nothing until the session ends
		} else {
			<-release // reads once the hog failed
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			read <- r.URL.Path + " " + err.Error()
		} else {
			read <- r.URL.Path + " " + string(b)
		}
		io.WriteString(w, "ok")
	}))
	put := func(sid, path string, n int) {
		s.request(sid, environ("REQUEST_METHOD", "PUT", "REQUEST_URI", path, "PATH_INFO", path, "SERVER_PROTOCOL", "HTTP/1.1", "CONTENT_LENGTH", strconv.Itoa(n)))
	}
	put("hog", "/reader", 95)
	s.send("srv", "hog", "body", strings.Repeat("h", 90))
	s.send("srv", "hog", "body", strings.Repeat("h", 5)) // 95 held: the whole body
	// Another upload: 95 + 40 + 20 > 150.
	put("small", "/small", 60)
	s.send("srv", "small", "body", strings.Repeat("s", 40))
	s.send("srv", "small", "body", strings.Repeat("s", 20))
	f := s.expectFrom("hog", "headers")
	if !strings.HasPrefix(f.body, "HTTP/1.1 413 ") {
		t.Fatalf("the session holding the most: %q, want 413", f.body)
	}
	// Its whole body was freed: it reads the failure, not a short EOF.
	if got := <-read; got != "/reader "+node.ErrBufferFull.Error() {
		t.Fatalf("the failed session's body read: %q", got)
	}
	close(release)
	if got := <-read; got != "/small "+strings.Repeat("s", 60) {
		t.Fatalf("the other session's body: %q", got)
	}
	if f := s.expectFrom("small", "headers"); !strings.HasPrefix(f.body, "HTTP/1.1 200 ") {
		t.Fatalf("the other session: %q", f.body)
	}
}

// TestServeStopCancelsSuperseded: a handler still running after its
// response went whole, whose sid a newer request took (keep-alive), is in
// no session any more; the stop's deadline cancels its context all the
// same (it ran on for good once the stop stopped cancelling Serve's).
func TestServeStopCancelsSuperseded(t *testing.T) {
	cancelled := make(chan struct{})
	s := startServe(t, node.ServeConfig{ShutdownTimeout: 50 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
		if r.URL.Path == "/bg" {
			w.(http.Flusher).Flush() // whole: the sid may take its next request
			<-r.Context().Done()     // work after the response
			close(cancelled)
		}
	}))
	s.request("s1", get("/bg"))
	s.expectFrom("s1", "headers")
	s.expectFrom("s1", "body")
	s.request("s1", get("/next")) // supersedes /bg's session
	s.expectFrom("s1", "headers")
	if err := s.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(stubTimeout):
		t.Fatal("the superseded handler's context was not cancelled at the stop's deadline")
	}
}

// TestServeStopNotHeldByUnreadBody: a handler that returned without its
// body, whose rest never comes, does not hold the stop until
// ShutdownTimeout: nothing of it waits to go out.
func TestServeStopNotHeldByUnreadBody(t *testing.T) {
	s := startServe(t, node.ServeConfig{ShutdownTimeout: time.Minute}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok") // the body is not read
	}))
	s.request("s1", environ("REQUEST_METHOD", "PUT", "REQUEST_URI", "/", "SERVER_PROTOCOL", "HTTP/1.1", "CONTENT_LENGTH", "100"))
	s.send("srv", "s1", "body", "part")
	s.expectFrom("s1", "headers")
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(stubTimeout):
		t.Fatal("the stop waited for the rest of a body nobody reads")
	}
}
