package server

// Regressions found by review (each failed before its fix).

import (
	"bytes"
	"crypto/tls"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
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
	h.s.handlers[0].Room()
	h.settle()
	var seq []string
	for _, m := range h.ring.take() {
		seq = append(seq, h.s.rt.Load().nodes.Nodes()[m.Node].Name+":"+m.Type)
	}
	t.Logf("to nodes: %v", seq)
	if n := len(seq); n >= 2 && seq[n-1] == x.Name+":end" {
		t.Errorf("node %s got `end` after the new head of the same sid: it drops the live session", x.Name)
	}
}

// Closing an HTTP/2 connection while messages wait for a stuck node: the
// `end` of every stream must still reach the node (h2load showed nodes
// short of one `end` per connection).
func TestH2CloseKeepsStreamEnds(t *testing.T) {
	h := newHarness(t, testOptions())
	var buf bytes.Buffer
	buf.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&buf, nil)
	_ = fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	open := func(id uint32) {
		hb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "x"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	}
	open(1)
	h.client(buf.String())
	buf.Reset()
	n1 := h.node("n1").Index
	h.ring.full[n1] = true // the node is stuck: the next head waits in outq
	open(3)
	h.client(buf.String())
	if len(h.c.outq) == 0 {
		t.Fatalf("stream 3's head did not wait for the stuck node")
	}
	h.fc.closed = true
	h.settle()
	h.ring.full[n1] = false
	h.ring.take()
	h.s.loops[0].retryRoom()
	ends := 0
	for _, m := range h.ring.take() {
		if m.Type == "end" {
			ends++
		}
	}
	if ends != 2 {
		t.Errorf("%d ends reached the node after the close, want 2 (one per stream)", ends)
	}
}
