package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/blastbeat/blastbeat/node"
)

// TestHTTP2StuckStreamIsolation: one HTTP/2 connection, two streams.
// Stream A uploads to a node that stopped reading (its handler blocks),
// until the bridge holds zmq-hwm messages for it and refuses the next:
// the node is stuck, and A's next body pieces wait in the proxy. Stream B then asks another node
// over the same connection: it is answered while A's node is still stuck
// (before, the whole connection stopped being read until send-timeout).
// Once the node moves, A's whole upload comes back: nothing was lost.
func TestHTTP2StuckStreamIsolation(t *testing.T) {
	t.Parallel()
	stats := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// Pings and send-timeout far beyond the test: the node stays stuck,
	// not dead, until it is released.
	p := startProxy(t, "zmq-hwm = 8\nping-freq = 60s\nsend-timeout = 300s\nstats = "+stats+"\n",
		"[blastbeat:a]\nnode = sa\n\n[blastbeat:b]\nnode = gb\n")
	release := make(chan struct{})
	echo := hEcho()
	// Node sa takes almost nothing ahead (one message, a 4 KiB socket
	// buffer), so that it is stuck once the proxy's zmq-hwm is full.
	sa, err := node.Dial("sa")
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(sa.Socket().SetRcvhwm(1), sa.Socket().SetRcvbuf(4096), sa.Socket().Connect(p.ZMQ)); err != nil {
		t.Fatal(err)
	}
	hRunNode(t, sa, "sa", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type == "uwsgi" && m.Env["PATH_INFO"] == "/up" {
			<-release
		}
		echo(hn, n, m)
	})
	var once sync.Once
	unstick := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unstick) // before the node's Stop (cleanups run last first)
	hStartNode(t, p.ZMQ, "gb", hEcho())
	waitRoutable(t, p, "a", "/")
	waitRoutable(t, p, "b", "/")

	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cc, err := (&http2.Transport{AllowHTTP: true}).NewClientConn(conn)
	if err != nil {
		t.Fatal(err)
	}

	const size = 64 << 20
	reqA, _ := http.NewRequest("POST", "http://a/up", io.LimitReader(zeros{}, size))
	reqA.ContentLength = size
	type result struct {
		resp *http.Response
		err  error
	}
	aDone := make(chan result, 1)
	go func() {
		resp, err := cc.RoundTrip(reqA)
		aDone <- result{resp, err}
	}()
	// The node is stuck once the bridge holds zmq-hwm messages for it,
	// refused the next (a piece of A's body, which waits in the proxy),
	// and the node took nothing between two looks.
	var took float64 = -1
	checkFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		fams := opsScrape(t, stats)
		refused, _ := opsValue(fams, "blastbeat_bridge_refusals_total", map[string]string{"reason": "node_full"})
		held, _ := opsValue(fams, "blastbeat_node_queued_messages", map[string]string{"node": "sa"})
		out, _ := opsValue(fams, "blastbeat_node_bytes_total", map[string]string{"node": "sa", "direction": "out"})
		last := took
		took = out
		if refused < 1 || held < 8 || out != last {
			return fmt.Errorf("node sa: %v refusals, %v messages held, %v bytes taken (%v before)", refused, held, out, last)
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reqB, _ := http.NewRequestWithContext(ctx, "GET", "http://b/beside", nil)
	resp, err := cc.RoundTrip(reqB)
	if err != nil {
		t.Fatalf("stream B, beside a stream whose node is stuck: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(body) != "gb GET /beside" {
		t.Fatalf("stream B: %d %q %v, want gb's answer", resp.StatusCode, body, err)
	}
	select {
	case r := <-aDone:
		t.Fatalf("stream A was answered while its node was stuck: %v %v", r.resp, r.err)
	default:
	}

	unstick()
	var r result
	select {
	case r = <-aDone:
	case <-time.After(60 * time.Second):
		t.Fatal("stream A got no response after its node moved")
	}
	if r.err != nil {
		t.Fatalf("stream A: %v", r.err)
	}
	defer r.resp.Body.Close()
	n, err := io.Copy(io.Discard, r.resp.Body)
	if err != nil || r.resp.StatusCode != 200 || n != size {
		fams := opsScrape(t, stats)
		for _, name := range []string{"blastbeat_rejected_total", "blastbeat_requests_total"} {
			if f := fams[name]; f != nil {
				for _, m := range f.Metric {
					t.Logf("%s %v %v", name, m.Label, m.Counter.GetValue())
				}
			}
		}
		t.Fatalf("stream A: %d, %d of %d bytes echoed, %v", r.resp.StatusCode, n, size, err)
	}
}
