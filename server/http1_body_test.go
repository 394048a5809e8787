package server

import (
	"strings"
	"testing"
)

// TestTinyChunksCoalesced: the chunks of a chunked body that come in one
// read go to the node as one `body` message. Before, each chunk was a
// message of its own, with a pooled buffer of at least 512 bytes: a
// client sending one-byte chunks made the proxy hold about a hundred
// times what it sent, and the node take a message per byte.
func TestTinyChunksCoalesced(t *testing.T) {
	h := newHarness(t, testOptions())
	h.client("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strings.Repeat("1\r\nX\r\n", 3000) + "0\r\n\r\n")
	got := sentTypes(h)
	want := []string{"body:" + strings.Repeat("X", 3000), "body:"}
	if len(got) != 3 || got[1] != want[0] || got[2] != want[1] {
		t.Fatalf("node got %d messages (%.60q …), want the head, one body of 3000 bytes and the empty body", len(got), got)
	}
	// A big piece after small ones keeps its place.
	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	big := strings.Repeat("b", coalesceBelow)
	h.client("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2000\r\n" + big + "\r\n2\r\nde\r\n0\r\n\r\n")
	got = sentTypes(h)
	if len(got) != 5 || got[1] != "body:abc" || got[2] != "body:"+big || got[3] != "body:de" || got[4] != "body:" {
		t.Fatalf("node got %d messages (%.60q …), want head, abc, the big chunk, de, end", len(got), got)
	}
}

// TestRetryChargesBuffers: a request body kept for a retry counts against
// retry-buffer as the memory its pieces hold, not their length. Before,
// a client trickling one-byte chunks, one read each, made the proxy keep
// a 512-byte buffer per byte: 1 MiB of retry-buffer held 512 MiB.
func TestRetryChargesBuffers(t *testing.T) {
	h := newHarness(t, testOptions())
	h.client("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	for range 4096 {
		h.client("1\r\nX\r\n")
	}
	if !h.c.retryLost || len(h.c.retry) > 2048 {
		t.Fatalf("after 4096 one-byte pieces: %d kept, %d bytes charged, lost %v; want the retry given up at retry-buffer (1 MiB) of buffers",
			len(h.c.retry), h.c.retryBytes, h.c.retryLost)
	}
}

// TestExpectContinueEarlyAnswerCloses: a request that waits for 100
// Continue and is answered by the proxy itself (here TRACE's 405) gets
// Connection: close and the connection closes: the client may send the
// announced body or not, and whatever it sends next would be taken for
// the other. Before, the connection stayed open and a next request was
// read as the skipped body. A request the node gets keeps keep-alive.
func TestExpectContinueEarlyAnswerCloses(t *testing.T) {
	h := newHarness(t, testOptions())
	h.client("POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
	if out := string(h.takeOut()); out != "HTTP/1.1 100 Continue\r\n\r\n" {
		t.Fatalf("forwarded request: client got %q, want 100 Continue", out)
	}
	h.client("abc")
	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	if out := string(h.takeOut()); strings.Contains(out, "close") || h.fc.closed {
		t.Fatalf("forwarded request: %q, closed %v; want keep-alive", out, h.fc.closed)
	}
	sentTypes(h)

	h.client("TRACE / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 40\r\n\r\n")
	out := string(h.takeOut())
	if !strings.HasPrefix(out, "HTTP/1.1 405 ") || !strings.Contains(out, "\r\nConnection: close\r\n") {
		t.Fatalf("early answer: %q, want a 405 with Connection: close", out)
	}
	h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if !h.fc.closed {
		t.Fatal("the connection stays open after an early answer to Expect: 100-continue")
	}
	for _, m := range sentTypes(h) {
		if m != "end:" { // the closed connection's session ends
			t.Fatalf("node got %q after the early answer", m)
		}
	}
}

// TestCoalescedBodyOverMaxBody: small chunks that would take the body
// past the vhost's max-body are not joined, so the flush of those joined
// before cannot fail the request: the client gets one answer (413), not
// a 413 from the flush and then a 400 for the malformed chunk behind it.
func TestCoalescedBodyOverMaxBody(t *testing.T) {
	o := testOptions()
	o.VHosts[0].MaxBody = 100
	h := newHarness(t, o)
	h.client("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strings.Repeat("1\r\nX\r\n", 150) + "zz\r\n")
	out := string(h.takeOut())
	if strings.Count(out, "HTTP/1.1 ") != 1 || !strings.HasPrefix(out, "HTTP/1.1 413 ") {
		t.Fatalf("client got %q, want one 413", out)
	}
}
