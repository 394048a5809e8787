package server

import (
	"strings"
	"testing"
)

// TestHTTP10NoTransferEncoding: an HTTP/1.0 client never gets
// Transfer-Encoding (RFC 9112 §6.1): a node's chunked head for a HEAD
// request or a 304 lost it only when a body was de-chunked.
func TestHTTP10NoTransferEncoding(t *testing.T) {
	for _, tc := range []struct{ name, req, head string }{
		{"HEAD", "HEAD / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"304", "GET / HTTP/1.0\r\nIf-None-Match: \"a\"\r\n\r\n", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nETag: \"a\"\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testOptions())
			h.client(tc.req)
			h.reply("n1", "headers", tc.head)
			out := string(h.takeOut())
			if !strings.HasPrefix(out, "HTTP/1.1 ") || strings.Contains(strings.ToLower(out), "transfer-encoding") {
				t.Fatalf("an HTTP/1.0 client got %q", out)
			}
		})
	}
}

// TestOverSendingNodeClosesConnection: a node that sends more than its
// response frames (body bytes past Content-Length, a body with a HEAD
// answer) may send more still, and nothing tells its stray messages from
// the next request's on the session: the connection ends with the
// response (it was kept alive, and the strays could reach the next
// response). A node that frames right keeps it alive.
func TestOverSendingNodeClosesConnection(t *testing.T) {
	for _, tc := range []struct {
		name, req, head, body string
		closed                bool
	}{
		{"past Content-Length", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "hello, and more", true},
		{"body with a HEAD answer", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "", true},
		{"framed right", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "hello", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testOptions())
			h.client(tc.req)
			h.reply("n1", "headers", tc.head)
			if tc.body != "" {
				h.reply("n1", "body", tc.body)
			}
			out := string(h.takeOut())
			if strings.Contains(out, "more") {
				t.Fatalf("bytes past Content-Length reached the client: %q", out)
			}
			if closing := h.fc.closed || h.c.closeAfter; closing != tc.closed {
				t.Fatalf("connection closing %v, want %v; client got %q", closing, tc.closed, out)
			}
			if tc.name == "body with a HEAD answer" && !strings.Contains(out, "\r\nConnection: close\r\n") {
				t.Fatalf("the head does not say the connection closes: %q", out)
			}
		})
	}
}
