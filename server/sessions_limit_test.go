package server

import (
	"testing"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/session"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/net/http2"
)

// TestH2StreamsLeaveConnectionSlots: HTTP/2 streams are sessions of the
// loop's table, which is sized for max-connections connections with
// http2-max-streams streams each: streams do not use up the places of
// connections. Before, it was sized for connections only: here two
// streams filled it, the other streams were refused and so was a second
// connection, with one connection open under max-connections = 2.
func TestH2StreamsLeaveConnectionSlots(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.MaxConnections, o.HTTP2MaxStreams = 2, 4 })
	for _, id := range []uint32{1, 3, 5, 7} {
		q.open(id, "POST", "a", false)
	}
	q.readOut(func(f http2.Frame) {
		if rst, ok := f.(*http2.RSTStreamFrame); ok {
			t.Errorf("stream %d reset: %v", rst.StreamID, rst.ErrCode)
		}
	})
	fc := &fakeConn{el: &fakeLoop{}}
	if _, act := (*handler)(q.h.s).OnOpen(fc); act != gnet.None {
		t.Fatal("a second connection refused under max-connections")
	}
}

// TestRefusedConnectionsInMetrics: a connection refused at
// max-connections shows in rejected_total{reason="max_connections"}.
// Before, it was counted only in the exit log's conns_refused, and the
// metric that says "requests and connections the proxy refused" never
// saw the proxy's main capacity signal.
func TestRefusedConnectionsInMetrics(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.MaxConnections = 2 })
	h := (*handler)(q.h.s)
	if _, act := h.OnOpen(&fakeConn{el: &fakeLoop{}}); act != gnet.None {
		t.Fatal("the second connection refused under max-connections = 2")
	}
	if _, act := h.OnOpen(&fakeConn{el: &fakeLoop{}}); act != gnet.Close {
		t.Fatal("a third connection served over max-connections = 2")
	}
	if n := q.h.s.Metrics().Rejected["max_connections"]; n != 1 {
		t.Fatalf("rejected_total{reason=max_connections} = %d, want 1", n)
	}
}

// TestMaxWorkersIsMaxLoops: config's bound on workers is the number of
// event loops a session id can address.
func TestMaxWorkersIsMaxLoops(t *testing.T) {
	if config.MaxWorkers != session.MaxLoops {
		t.Fatalf("config.MaxWorkers %d, session.MaxLoops %d", config.MaxWorkers, session.MaxLoops)
	}
}
