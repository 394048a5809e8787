package server

// Regressions found by review (each failed before its fix).

import (
	"crypto/tls"
	"strings"
	"testing"
)

// Credit grants must go on for a response on a connection that will close
// after it (client sent Connection: close).
func TestCreditGoesOnWhenClosingAfter(t *testing.T) {
	for _, hdr := range []string{"", "Connection: close\r\n"} {
		t.Run("hdr="+strings.TrimSpace(hdr), func(t *testing.T) {
			h := newHarness(t, testOptions())
			h.node("n1").SetCredits(true)
			h.client("GET / HTTP/1.1\r\nHost: x\r\n" + hdr + "\r\n")
			h.ring.take()
			h.reply("n1", "headers", "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n")
			piece := strings.Repeat("x", 64<<10)
			for i := 0; i < 4; i++ { // spend the whole 256 KiB window
				h.reply("n1", "body", piece)
			}
			// the client read everything (fakeConn outbound == 0)
			var credits []string
			for _, m := range h.ring.take() {
				if m.Type == "credit" {
					credits = append(credits, string(m.Body))
				}
			}
			if len(credits) == 0 {
				t.Errorf("no credit granted after the window was spent and drained: node waits forever (closeAfter=%v)", h.c.closeAfter)
			}
		})
	}
}

// A request and close_notify in one read: the request must be served.
func TestTLSRequestThenCloseNotify(t *testing.T) {
	h := newHarness(t, testOptions())
	p := newOpenTRPeer(t, newTRPKI(t), h.c.l, tls.VersionTLS13)
	h.c.tls, h.c.t = p.tr, p.tr
	if _, err := p.client.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := p.client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	p.sock.in = append(p.sock.in, p.toSrv.take()...)
	h.c.onTraffic()
	h.settle()
	sent := h.ring.take()
	t.Logf("sent to nodes: %d msgs; closeAfter=%v phase=%d plaintext left=%d sockClosed=%v", len(sent), h.c.closeAfter, h.c.phase, h.c.t.InboundBuffered(), p.sock.closed)
	if len(sent) == 0 {
		t.Fatalf("request before close_notify was never forwarded")
	}
	if !h.c.closeAfter {
		t.Errorf("the connection does not close after the response")
	}
}

// An `end` orphaned for node X on failover must not overtake... or trail a
// new request head sent to X for the same sid.
func TestOrphanEndBeforeNewHead(t *testing.T) {
	h := newHarness(t, testOptions())
	h.node("n2").Seen(h.s.now())
	h.client("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	x := h.c.node
	var y string
	if x.Name == "n1" {
		y = "n2"
	} else {
		y = "n1"
	}
	h.ring.take()
	h.ring.full[x.Index] = true // X is stuck at its HWM
	h.reply(x.Name, "retry", "")
	h.ring.full[x.Index] = false // X drains; the bridge's Room is on its way
	h.reply(y, "retry", "")      // Y answers first: back to X
	(*bridgeHandler)(h.s).Room()
	h.settle()
	var seq []string
	for _, m := range h.ring.take() {
		seq = append(seq, h.s.nodes.Nodes()[m.Node].Name+":"+m.Type)
	}
	t.Logf("to nodes: %v", seq)
	if n := len(seq); n >= 2 && seq[n-1] == x.Name+":end" {
		t.Errorf("node %s got `end` after the new head of the same sid: it drops the live session", x.Name)
	}
}
