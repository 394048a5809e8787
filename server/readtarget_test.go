package server

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/blastbeat/blastbeat/internal/zmqio"
)

// inTurn returns a harness whose loop is inside a gnet turn until the
// test ends, and its handler.
func inTurn(t *testing.T) (*harness, *handler) {
	h := newHarness(t, testOptions())
	hd := (*handler)(h.s)
	hd.OnTurnStart(h.fc.el)
	t.Cleanup(func() { hd.OnTurnEnd(h.fc.el) })
	return h, hd
}

// readInto has the client's next n bytes (of 'b') read into the target
// gnet is offered, where they stay (gnet's Discard reslices them), and
// returns the target and the pooled buffer of the one body message the
// read sent (the fake ring copies the body itself, not the buffer).
func (h *harness) readInto(n int) (carried, tgt []byte) {
	h.t.Helper()
	hd := (*handler)(h.s)
	tgt = hd.ReadTarget(h.fc)
	if len(tgt) < n {
		h.t.Fatalf("offered %d bytes, want at least %d", len(tgt), n)
	}
	for i := range tgt[:n] {
		tgt[i] = 'b'
	}
	h.fc.in = tgt[:n] // gnet's c.buffer: the bytes read, where they lie
	h.fc.inPlace = true
	hd.OnTraffic(h.fc)
	h.fc.inPlace = false
	h.settle()
	sent := h.ring.take()
	if len(sent) != 1 || sent[0].Type != "body" || len(sent[0].Body) != n || sent[0].Buf == nil {
		h.t.Fatalf("read of %d: %d messages, want one body in a pooled buffer", n, len(sent))
	}
	return sent[0].Buf.B, tgt
}

// TestReadTarget: while a request body has at least zmqio.MinRefBody bytes
// left to frame, gnet is offered a pooled buffer to read into (patch 13),
// and a read that fills at least half of it goes to the node as it lies:
// the body message points into it and holds a reference, as does the
// retry buffer; the loop's own reference goes at the turn's end. A short
// read is copied into a buffer of its size; a head, a small remainder
// and a read outside a turn get gnet's buffer.
func TestReadTarget(t *testing.T) {
	h := newHarness(t, testOptions())
	hd := (*handler)(h.s)
	el := h.fc.el
	const size = 200 << 10

	hd.OnTurnStart(el)
	if tgt := hd.ReadTarget(h.fc); tgt != nil {
		t.Fatalf("offered %d bytes before the head", len(tgt))
	}
	h.client(fmt.Sprintf("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size))
	if got := len(h.ring.take()); got != 1 {
		t.Fatalf("%d messages for the head, want 1", got)
	}
	read := h.readInto

	// A full read: sent as it lies.
	body, tgt := read(maxReadTarget)
	if len(tgt) != maxReadTarget || unsafe.SliceData(body) != unsafe.SliceData(tgt) {
		t.Fatalf("a read of %d into a target of %d was copied", len(body), len(tgt))
	}
	rb := h.c.retry[len(h.c.retry)-1].buf
	if got := rb.Refs(); got != 3 {
		t.Fatalf("the read target holds %d references, want 3 (message, retry, loop)", got)
	}
	hd.OnTurnEnd(el)
	if got := rb.Refs(); got != 2 {
		t.Fatalf("after the turn: %d references, want 2 (message, retry)", got)
	}

	// A short read (under half the target): copied.
	hd.OnTurnStart(el)
	body, tgt = read(1000)
	if unsafe.SliceData(body) == unsafe.SliceData(tgt) {
		t.Fatal("a short read was not copied")
	}
	left := size - maxReadTarget - 1000
	body, tgt = read(maxReadTarget)
	if unsafe.SliceData(body) != unsafe.SliceData(tgt) {
		t.Fatal("a full read was copied")
	}
	left -= maxReadTarget
	body, tgt = read(left - zmqio.MinRefBody + 1) // leaves under MinRefBody
	if len(tgt) != min(left, maxReadTarget) {
		t.Fatalf("a target of %d for the body's last %d bytes", len(tgt), left)
	}
	if unsafe.SliceData(body) != unsafe.SliceData(tgt) {
		t.Fatal("a read filling its target was copied")
	}
	if tgt := hd.ReadTarget(h.fc); tgt != nil {
		t.Fatalf("offered %d bytes for a remainder under zmqio.MinRefBody", len(tgt))
	}
	hd.OnTurnEnd(el)
	if tgt := hd.ReadTarget(h.fc); tgt != nil {
		t.Fatal("offered a read target outside a turn")
	}
	if n := len(h.c.l.readBufs); n != 0 {
		t.Fatalf("the loop holds %d read targets after the turn", n)
	}
}

// TestReadTargetNextHead: once a request's body reached zmqio.MinRefBody,
// the connection's next head is read into a target too (the body that
// follows it in the same read goes to the node as it lies); a connection
// whose last body was small, or that waits for a response, reads into
// gnet's buffer.
func TestReadTargetNextHead(t *testing.T) {
	h, hd := inTurn(t)
	post := func(n int) string {
		return fmt.Sprintf("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", n, strings.Repeat("b", n))
	}
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

	h.client(post(100))
	if tgt := hd.ReadTarget(h.fc); tgt != nil {
		t.Fatal("offered a target while the response is due")
	}
	h.reply("n1", "headers", ok)
	if tgt := hd.ReadTarget(h.fc); tgt != nil {
		t.Fatal("offered a target after a small body")
	}
	h.ring.take()

	h.client(post(zmqio.MinRefBody))
	h.reply("n1", "headers", ok)
	h.ring.take()
	tgt := hd.ReadTarget(h.fc)
	if len(tgt) != maxReadTarget {
		t.Fatalf("offered %d bytes after a big body, want %d", len(tgt), maxReadTarget)
	}
	req := post(40 << 10)
	h.fc.in = tgt[:copy(tgt, req)]
	h.fc.inPlace = true
	hd.OnTraffic(h.fc)
	h.fc.inPlace = false
	h.settle()
	sent := h.ring.take()
	if len(sent) != 2 || sent[1].Type != "body" || len(sent[1].Body) != 40<<10 || sent[1].Buf == nil ||
		unsafe.SliceData(sent[1].Buf.B) != unsafe.SliceData(tgt) {
		t.Fatalf("the head and body read together: %d messages, the body not carried in the target", len(sent))
	}
}

// TestReadTargetReused: a turn of short reads (each copied) holds one
// read target, offered again; one that a body message took is not.
func TestReadTargetReused(t *testing.T) {
	h, _ := inTurn(t)
	h.client("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
	h.ring.take()
	read := func(n int) []byte {
		_, tgt := h.readInto(n)
		return tgt
	}
	first := read(10)
	for i := 0; i < 100; i++ {
		if tgt := read(10); unsafe.SliceData(tgt) != unsafe.SliceData(first) {
			t.Fatalf("short read %d got a new target", i)
		}
	}
	if n := len(h.c.l.readBufs); n != 1 {
		t.Fatalf("the turn holds %d read targets after short reads, want 1", n)
	}
	read(maxReadTarget) // taken by its body message
	if tgt := read(10); unsafe.SliceData(tgt) == unsafe.SliceData(first) {
		t.Fatal("a target a body message holds was offered again")
	}
	if n := len(h.c.l.readBufs); n != 2 {
		t.Fatalf("the turn holds %d read targets, want 2", n)
	}
}

// TestReadTargetSizeClass: the turn's last target is offered again only
// for a read of its size class: a smaller read gets a buffer of its own
// class, so that filling it still counts as a full read, which is lent.
func TestReadTargetSizeClass(t *testing.T) {
	h, _ := inTurn(t)
	h.client("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\n\r\n")
	h.ring.take()
	read := h.readInto
	_, first := read(10)         // a 64 KiB class target, copied from
	_, again := read(20000 - 10) // the same target again (40000 left), copied from
	carried, last := read(20000) // 20000 left: a 32 KiB target, filled
	if unsafe.SliceData(again) != unsafe.SliceData(first) {
		t.Fatal("a read of the same size class got a new target")
	}
	if unsafe.SliceData(last) == unsafe.SliceData(first) || cap(last) != 32<<10 {
		t.Fatalf("a 20000-byte read got a target of capacity %d, want a new one of 32 KiB", cap(last))
	}
	if unsafe.SliceData(carried) != unsafe.SliceData(last) {
		t.Fatal("a read that filled its target was copied")
	}
}
