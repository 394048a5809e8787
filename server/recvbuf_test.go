package server

import (
	"bytes"
	"testing"

	"github.com/blastbeat/blastbeat/internal/bufpool"
)

// TestReplyBufferHeldUntilWritten: replies lie in the bridge's pooled
// receive buffer, whose batch reference is given back as soon as the
// batch was delivered. A body bigger than copyOutMax is queued by
// reference, so the loop must hold the buffer until the flush wrote it,
// then give it back (else the pool would hand bytes still queued for one
// client to the next batch, another client's reply).
func TestReplyBufferHeldUntilWritten(t *testing.T) {
	h := newHarness(t, testOptions())
	h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	node := []byte(h.c.node.Name)
	h.ring.take()

	head := []byte("HTTP/1.1 200 OK\r\nContent-Length: 16384\r\n\r\n")
	body := bytes.Repeat([]byte("0123456789abcdef"), 1024)
	var pool bufpool.Pool
	buf := pool.Get(len(head) + len(body))
	copy(buf.B, head)
	copy(buf.B[len(head):], body)
	var refsAtWrite []int
	h.fc.onWritev = func() { refsAtWrite = append(refsAtWrite, buf.Refs()) }

	bh := h.s.handlers[0]
	bh.Deliver(node, h.sid[:], []byte("headers"), buf.B[:len(head)], buf)
	bh.Deliver(node, h.sid[:], []byte("body"), buf.B[len(head):], buf)
	buf.Release() // the batch's own reference, as RecvPooled gives it back
	if got := buf.Refs(); got != 2 {
		t.Fatalf("after delivery the buffer has %d references, want 2 (one per reply)", got)
	}
	bh.Flush()
	h.settle()

	if len(refsAtWrite) == 0 {
		t.Fatal("nothing was written")
	}
	for i, n := range refsAtWrite {
		if n < 1 {
			t.Errorf("write %d: the receive buffer had %d references: given back before its bytes were written", i, n)
		}
	}
	if got := buf.Refs(); got != 0 {
		t.Errorf("after the flush the buffer has %d references, want 0 (back in the pool)", got)
	}
	if out := h.takeOut(); !bytes.HasPrefix(out, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(out, append([]byte("\r\n\r\n"), body...)) {
		t.Errorf("client got %d bytes, not a 200 head and the %d-byte body", len(out), len(body))
	}
}

// TestReplyBufferStale: replies for a session that is gone still give
// their reference back.
func TestReplyBufferStale(t *testing.T) {
	h := newHarness(t, testOptions())
	h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	node := []byte(h.c.node.Name)
	sid := h.sid
	h.fc.closed = true
	h.settle() // the connection is gone
	var pool bufpool.Pool
	buf := pool.Get(8)
	bh := h.s.handlers[0]
	bh.Deliver(node, sid[:], []byte("body"), buf.B, buf)
	buf.Release()
	bh.Flush()
	h.settle()
	if got := buf.Refs(); got != 0 {
		t.Errorf("a stale reply kept %d references", got)
	}
}
