package node_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// TestServeIdleFromWaitStart: IdleTimeout counts from when a session
// began to wait on its proxy, not from the proxy's last message. A
// streaming handler quiet for longer than IdleTimeout that then writes
// past its credit, and an upload handler that computes for that long
// before it reads on, both go on once the proxy answers within a round
// trip. Before, the first sweep that found them waiting ended them (the
// upload even while its handler was not reading at all).
func TestServeIdleFromWaitStart(t *testing.T) {
	const idle = 2 * time.Second
	release := make(chan struct{})
	readSome := make(chan struct{})
	wrote := make(chan error, 1)
	s := startServe(t, node.ServeConfig{IdleTimeout: idle}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			first := make([]byte, 5)
			if _, err := io.ReadFull(r.Body, first); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			close(readSome)
			<-release // computing: not reading
			rest, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintf(w, "%s%s", first, rest)
			return
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		// Quiet, then past its credit of 100.
		<-release
		_, err := w.Write(make([]byte, 200))
		if err == nil {
			err = http.NewResponseController(w).Flush()
		}
		wrote <- err
	}))
	s.send(s.id, "s1", "uwsgi", get("/stream"))
	s.send(s.id, "s1", "credit", "100")
	s.expectFrom("s1", "headers")
	s.request("s2", environ("REQUEST_METHOD", "POST", "REQUEST_URI", "/up", "PATH_INFO", "/up",
		"SERVER_PROTOCOL", "HTTP/1.1", "HTTP_HOST", "example.test", "CONTENT_LENGTH", "10"))
	s.send(s.id, "s2", "body", "01234")
	<-readSome

	time.Sleep(idle + idle/5) // nothing from the proxy for longer than IdleTimeout
	close(release)
	// s1 sends what its credit allows and waits; s2 reads on, and waits.
	var w idleWatch
	for w.s1 < 100 && !w.ended["s1"] {
		w.note(t, s.recv())
	}
	// The proxy takes its time, well within IdleTimeout: the sweeps find
	// both sessions waiting meanwhile (some of them more than
	// IdleTimeout after the proxy's last message).
	time.Sleep(idle/2 + idle/10)
	s.send(s.id, "s1", "credit", "100")
	s.send(s.id, "s2", "body", "56789")
	for (w.s1 <= 200 && !w.ended["s1"]) || (w.s2 == "" && !w.ended["s2"]) {
		w.note(t, s.recv())
	}
	if len(w.ended) > 0 {
		t.Fatalf("ended %v: IdleTimeout counted from the proxy's last message, not from the wait", w.ended)
	}
	if !strings.HasSuffix(w.s2, "\r\n\r\n0123456789") {
		t.Fatalf("s2's response %q", w.s2)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("s1's write: %v", err)
	}
}

// idleWatch is what TestServeIdleFromWaitStart got: the sessions ended,
// s1's chunk bytes (its final empty chunk counts one) and s2's response.
type idleWatch struct {
	ended map[string]bool
	s1    int
	s2    string
}

func (w *idleWatch) note(t *testing.T, f frame) {
	t.Helper()
	switch {
	case f.typ == "end":
		if w.ended == nil {
			w.ended = map[string]bool{}
		}
		w.ended[f.sid] = true
	case f.sid == "s1" && f.typ == "chunk":
		w.s1 += max(len(f.body), 1)
	case f.sid == "s2" && f.typ == "headers":
		w.s2 = f.body
	default:
		t.Fatalf("got %s for %q", f.typ, f.sid)
	}
}

// TestServeIdleBodyAfterReturn: a handler that returns before its
// request body is all in leaves the rest to drop as it arrives; when
// nothing more of it comes for IdleTimeout (its proxy restarted, and
// forgot the session) the session is ended. Before, it stayed for good.
func TestServeIdleBodyAfterReturn(t *testing.T) {
	s := startServe(t, node.ServeConfig{IdleTimeout: 100 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	s.request("s1", environ("REQUEST_METHOD", "POST", "REQUEST_URI", "/up", "PATH_INFO", "/up",
		"SERVER_PROTOCOL", "HTTP/1.1", "HTTP_HOST", "example.test", "CONTENT_LENGTH", "10"))
	s.send(s.id, "s1", "body", "01234")
	s.expectFrom("s1", "headers")
	s.expectFrom("s1", "end")
}
