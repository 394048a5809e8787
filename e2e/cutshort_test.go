package e2e

import (
	"bufio"
	"crypto/tls"
	"errors"
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

// TestCutShortResets: a close-delimited response (a node's bare head: no
// Content-Length, not chunked) that its node leaves unfinished ends with a
// connection reset, over TLS with no close_notify, so that the client
// sees an error instead of an end that says the body is whole. Before,
// the proxy's FIN (and close_notify) made a cut body look complete.
func TestCutShortResets(t *testing.T) {
	t.Parallel()
	pki := tsNewPKI(t, "")
	port := freePort(t)
	tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cert, key := pki.issue(t, "secure", tsSecure)
	vhosts := "[blastbeat:cut.test]\nnode = cut\nresponse-idle-timeout = 1\n\n" +
		fmt.Sprintf("[blastbeat:%s]\nnode = cut\nbind-ssl = %s\ncertificate = %s\nkey = %s\nresponse-idle-timeout = 1\n", tsSecure, tlsAddr, cert, key)
	p := startProxy(t, "", vhosts)
	hStartNode(t, p.ZMQ, "cut", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		if m.Env["PATH_INFO"] == "/ready" {
			_ = n.Send([]byte(m.SID), "headers", []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			return
		}
		// Half a close-delimited body, then silence.
		_ = n.Send([]byte(m.SID), "headers", []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial"))
	})
	waitRoutable(t, p, "cut.test", "/ready")

	read := func(t *testing.T, c net.Conn, host string) {
		t.Helper()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(15 * time.Second))
		if _, err := io.WriteString(c, "GET /cut HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if !strings.HasPrefix(string(body), "partial") {
			t.Fatalf("body %q, want the part the node sent", body)
		}
		var ne net.Error
		switch {
		case err == nil:
			t.Fatal("the cut body ended like a whole one (EOF): want a connection reset")
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("no end within the deadline: %v", err)
		case !strings.Contains(err.Error(), "reset"):
			t.Fatalf("the cut body ended with %v, want a connection reset", err)
		}
	}
	t.Run("plain", func(t *testing.T) {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		read(t, c, "cut.test")
	})
	t.Run("tls", func(t *testing.T) {
		c, err := tls.Dial("tcp", tlsAddr, pki.config(tsSecure))
		if err != nil {
			t.Fatal(err)
		}
		read(t, c, tsSecure)
	})
}
