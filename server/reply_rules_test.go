package server

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestNoCreditAfterNodeEnd: a node's `end` ends its session's credit
// (PROTOCOL.md): while the client drains the rest of a response the
// node ended, no `credit` goes to the node. Before, a close-delimited
// response the node ended got grants as its client read it (found by a
// review).
func TestNoCreditAfterNodeEnd(t *testing.T) {
	h := newHarness(t, testOptions())
	h.node("n1").SetCredits(true)
	h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	h.ring.take()
	w := h.s.opts.CreditWindow
	h.fc.outbound = w                                   // the client reads nothing yet
	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\n\r\n") // close-delimited
	h.reply("n1", "body", strings.Repeat("x", w*3/4))
	h.reply("n1", "end", "")
	h.ring.take()
	h.fc.outbound = 0 // it read everything
	(*handler)(h.s).OnOutboundDrained(h.fc, 0)
	h.settle()
	for _, m := range h.ring.take() {
		if m.Type == "credit" {
			t.Fatalf("credit %q granted after the node's end", m.Body)
		}
	}
}

// TestNoReplyToClosingConn: a reply for a connection the proxy is closing
// (gnet closes it at its next turn: closeNow) is dropped, not written
// past the check that closed it (a slow reader over its cap).
func TestNoReplyToClosingConn(t *testing.T) {
	h := newHarness(t, testOptions())
	h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	h.ring.take()
	h.c.closeNow()
	h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
	if out := h.takeOut(); len(out) > 0 {
		t.Fatalf("a closing connection was written %q", out)
	}
}

// TestLingeringOutputSettled: a connection that lingers after a fatal
// HTTP/2 error (its GOAWAY must reach the client, which may still be
// sending) settles what it counts of its output as the client reads it:
// before, what it held when it began to linger stayed counted in
// max-pending-output-total (and as a holder) until it closed, up to
// lingering-time (found by a review).
func TestLingeringOutputSettled(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	giveSocket(t, h.fc) // a socket to shut, so that the connection lingers
	q.open(1, "GET", "a", true)
	h.fc.outbound = 50000 // the client reads nothing for now
	q.deliver("n1", 1, "headers", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if h.s.pendingTotal.Load() == 0 {
		t.Fatal("the output held was not counted")
	}
	q.fr.AllowIllegalWrites = true
	_ = q.fr.WriteData(0, false, []byte("x")) // DATA on stream 0: a connection error
	q.send()
	if h.c.m != (lingering{}) || h.fc.closed {
		t.Fatalf("not lingering after the GOAWAY (closed %v)", h.fc.closed)
	}
	h.fc.outbound = 0 // it read everything
	(*handler)(h.s).OnOutboundDrained(h.fc, 0)
	h.settle()
	if got, holders := h.s.pendingTotal.Load(), h.s.holders.Load(); got != 0 || holders != 0 {
		t.Fatalf("lingering with nothing held: %d bytes and %d holders counted", got, holders)
	}
}

// TestLingerNotAStall: output that a lingering connection begins to hold
// (its GOAWAY, which the kernel could not take at once) starts
// stall-timeout's count then, not at the connection's last progress
// minutes before: the next sweep must not close the linger as a slow
// reader, dropping the output it lingers to deliver. (A review found
// settleOutput could count it from a stale progressAt; on this path
// accountOutput moved it already, so the test guards the behaviour
// rather than failing before the fix.)
func TestLingerNotAStall(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	giveSocket(t, h.fc)
	now := time.Unix(0, h.s.now()).Add(2 * h.s.opts.StallTimeout) // idle this long, holding nothing
	h.node("n1").Seen(now.UnixNano())
	h.s.tick(now)
	h.fc.outbound = 100 // the GOAWAY's last bytes stay in gnet
	q.fr.AllowIllegalWrites = true
	_ = q.fr.WriteData(0, false, []byte("x")) // DATA on stream 0: a connection error
	q.send()
	if h.c.m != (lingering{}) || h.fc.closed {
		t.Fatalf("not lingering after the GOAWAY (closed %v)", h.fc.closed)
	}
	slow := h.s.stats.SlowClients.Load()
	h.sweep(now.Add(time.Second))
	if h.fc.closed || h.s.stats.SlowClients.Load() != slow {
		t.Fatal("a linger whose output began to be held a second ago was closed as a slow reader")
	}
}

// giveSocket gives the fake connection one end of a real socket pair, so
// that shutWrite has a descriptor to shut and the connection lingers.
func giveSocket(t *testing.T, fc *fakeConn) {
	t.Helper()
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(sp[0]); unix.Close(sp[1]) })
	fc.fd = sp[0]
}
