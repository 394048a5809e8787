package server

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

// bodyMsgs is the `body` and `end` messages the nodes got since the last
// take, as "sid-stream:type:body", the stream named by its id in ids.
func bodyMsgs(q *h2qClient, ids ...uint32) []string {
	name := map[[16]byte]string{}
	for _, id := range ids {
		if st := q.h.c.h2.streams[id]; st != nil {
			name[st.sid] = string(rune('0' + id))
		}
	}
	var out []string
	for _, m := range q.h.ring.take() {
		if m.Type == "body" || m.Type == "end" {
			out = append(out, name[m.SID]+":"+m.Type+":"+string(m.Body))
		}
	}
	return out
}

// TestH2SmallDataCoalesced: the small DATA frames of one read go to the
// node as one `body` message per run of frames of a stream, in order, up
// to maxCoalesced; a frame of another stream, a big frame or END_STREAM
// sends what was joined first. Before, each frame was a message with its
// own pooled buffer kept for retry: one-byte frames cost the node a
// message per byte.
func TestH2SmallDataCoalesced(t *testing.T) {
	q := newH2qHarness(t, nil)
	q.open(1, "POST", "a", false)
	q.open(3, "POST", "a", false)
	q.h.ring.take()

	var want bytes.Buffer
	for i := range 3000 {
		b := []byte{byte('a' + i%26)}
		want.Write(b)
		_ = q.fr.WriteData(1, false, b)
	}
	q.send()
	if got := bodyMsgs(q, 1, 3); len(got) != 1 || got[0] != "1:body:"+want.String() {
		t.Fatalf("3000 one-byte frames in one read: node got %d messages (%.40q …), want one body of 3000 bytes", len(got), got[:min(len(got), 3)])
	}

	// Runs of two streams, a big frame and the end, in one read.
	big := strings.Repeat("B", coalesceBelow)
	_ = q.fr.WriteData(1, false, []byte("ab"))
	_ = q.fr.WriteData(1, false, []byte("c"))
	_ = q.fr.WriteData(3, false, []byte("xy"))
	_ = q.fr.WriteData(1, false, []byte("d"))
	_ = q.fr.WriteData(1, false, []byte(big))
	_ = q.fr.WriteData(1, false, []byte("e"))
	_ = q.fr.WriteData(3, false, []byte("z"))
	_ = q.fr.WriteData(1, true, []byte("f"))
	q.send()
	got := bodyMsgs(q, 1, 3)
	wantMsgs := []string{"1:body:abc", "3:body:xy", "1:body:d", "1:body:" + big, "1:body:e", "3:body:z", "1:body:f", "1:body:"}
	if strings.Join(got, "|") != strings.Join(wantMsgs, "|") {
		t.Fatalf("node got\n%.200q\nwant\n%.200q", got, wantMsgs)
	}

	// A read past maxCoalesced is cut into messages of about that (the
	// proxy gives the window back as the frames come).
	chunk := bytes.Repeat([]byte("q"), coalesceBelow-1)
	for range 20 {
		_ = q.fr.WriteData(3, false, chunk)
	}
	q.send()
	msgs, sum := bodyMsgs(q, 3), 0
	for _, m := range msgs {
		n := len(m) - len("3:body:")
		if n > maxCoalesced+coalesceBelow {
			t.Fatalf("a joined body of %d bytes, want at most %d", n, maxCoalesced+coalesceBelow)
		}
		sum += n
	}
	if len(msgs) < 2 || sum != 20*len(chunk) {
		t.Fatalf("20 frames of %d bytes in one read: %d messages of %d bytes in all, want them cut at %d", len(chunk), len(msgs), sum, maxCoalesced)
	}
}

// TestH2CoalescedDataDroppedOnAnswer: small DATA joined in a read whose
// later frame makes the proxy answer the stream itself (here: past
// max-body, a 413) is not sent after the stream's `end`.
func TestH2CoalescedDataDroppedOnAnswer(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.VHosts[0].MaxBody = 4 })
	q.open(1, "POST", "a", false)
	q.h.ring.take()
	_ = q.fr.WriteData(1, false, []byte("ab"))
	_ = q.fr.WriteData(1, false, []byte("cd"))
	_ = q.fr.WriteData(1, false, []byte("e")) // the fifth byte: past max-body
	q.send()
	var sawEnd bool
	for _, m := range q.h.ring.take() {
		switch {
		case m.Type == "body":
			t.Fatalf("body %q sent for a stream reset in the same read", m.Body)
		case m.Type == "end":
			sawEnd = true
		case sawEnd:
			t.Fatalf("%s %q sent after the stream's end", m.Type, m.Body)
		}
	}
	if !sawEnd {
		t.Fatal("the node got no end for the reset stream")
	}
	if status := q.status(1); status != "413" {
		t.Fatalf("stream 1 past max-body: status %q, want 413", status)
	}
}

// TestH2MaxBodyEndStream: the DATA frame that takes a body of unknown
// length past max-body, carrying END_STREAM (curl's and nghttp2's way
// with small bodies), gets the 413 and its stream closes: it held a
// stream slot, half-closed, until idle-timeout. The node got the request
// and then end: counted as abandoned, not as the client's reset.
func TestH2MaxBodyEndStream(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.VHosts[0].MaxBody = 4 })
	q.open(1, "POST", "a", false)
	_ = q.fr.WriteData(1, true, []byte("hello"))
	q.send()
	if status := q.status(1); status != "413" {
		t.Fatalf("status %q, want 413", status)
	}
	if st := q.h.c.h2.streams[1]; st != nil {
		t.Fatalf("stream 1 still open after its 413 (phase %v, endRecv %v)", st.phase, st.endRecv)
	}
	if q.h.c.h2.resets != 0 || q.h.c.h2.abandoned != 1 {
		t.Fatalf("resets %d, abandoned %d: want 0 and 1", q.h.c.h2.resets, q.h.c.h2.abandoned)
	}
}

// TestH2CoalescedDataStuckNodeHoldsWindow: small DATA frames for a stuck
// node hold the stream's window back as big ones do (what was joined is
// queued before the window would go back). Found by review: the joined
// bytes were not queued yet when the window was given, and the client
// got a second window's worth to send for a node that takes nothing.
func TestH2CoalescedDataStuckNodeHoldsWindow(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	q.open(1, "POST", "a", false)
	h.ring.take()
	h.ring.full[h.node("n1").Index] = true
	for range 40 { // 40 KiB, past half the window, in one read
		_ = q.fr.WriteData(1, false, make([]byte, 1024))
	}
	q.send()
	if w := windowFor(q.frames(), 1); w != 0 {
		t.Fatalf("stream 1 got %d bytes of window while its body waits for a stuck node, want none", w)
	}
	if len(h.c.outq) == 0 {
		t.Fatal("the joined body did not wait for the stuck node")
	}
}

// TestH2CoalescedDataBeforeTrailersAndReset: small DATA joined in a read
// reaches the node before what the frames after it cause: trailers' end
// of body, or the client's RST_STREAM (`end`); and the loop's scratch
// buffer is empty afterwards for the next connection it serves.
func TestH2CoalescedDataBeforeTrailersAndReset(t *testing.T) {
	q := newH2qHarness(t, nil)
	q.open(1, "POST", "a", false)
	q.open(3, "POST", "a", false)
	q.h.ring.take()
	_ = q.fr.WriteData(1, false, []byte("ab"))
	_ = q.fr.WriteData(1, false, []byte("cd"))
	q.hb.Reset()
	_ = q.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: q.hb.Bytes(), EndStream: true, EndHeaders: true}) // empty trailers
	_ = q.fr.WriteData(3, false, []byte("xy"))
	_ = q.fr.WriteRSTStream(3, http2.ErrCodeCancel)
	name := map[[16]byte]string{q.h.c.h2.streams[1].sid: "1", q.h.c.h2.streams[3].sid: "3"}
	q.send()
	var got []string
	for _, m := range q.h.ring.take() {
		if m.Type == "body" || m.Type == "end" {
			got = append(got, name[m.SID]+":"+m.Type+":"+string(m.Body))
		}
	}
	want := []string{"1:body:abcd", "1:body:", "3:body:xy", "3:end:"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("node got %q, want %q", got, want)
	}
	if n := len(q.h.s.loops[0].bodyAcc); n != 0 {
		t.Fatalf("%d bytes left in the loop's body buffer", n)
	}
}
