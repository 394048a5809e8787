package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/blastbeat/blastbeat/session"
)

// Metrics: every loop counts its own connections, requests and latencies
// in its own counters (atomics that only its goroutine writes, on cache
// lines of their own), and a scrape sums them (Server.Metrics). Nothing on
// the hot path is shared between loops.

// Proto is what a connection speaks now.
type Proto uint8

// Connection protocols, as metrics label them.
const (
	ProtoHTTP1 Proto = iota
	ProtoWebSocket
	ProtoHTTP2
	protoCount
)

// String is the metric label.
func (p Proto) String() string {
	switch p {
	case ProtoWebSocket:
		return "ws"
	case ProtoHTTP2:
		return "h2"
	}
	return "http1"
}

// LatencyBuckets are the upper bounds of the latency histograms, in
// seconds (the Prometheus defaults, stretched to the response timeout).
var LatencyBuckets = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// hist is a latency histogram written by one loop.
type hist struct {
	counts [len(LatencyBuckets) + 1]atomic.Uint64 // the last: above every bound
	// sumUS is in microseconds: nanoseconds in an int64 wrap after
	// 292 years of summed durations, which 50,000 long polls open at
	// once run up in two days.
	sumUS atomic.Int64
}

func (h *hist) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(LatencyBuckets) && s > LatencyBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumUS.Add(d.Microseconds())
}

// Histogram is a snapshot: Counts[i] observations at most Bounds[i]
// (not cumulative), the last past every bound.
type Histogram struct {
	Counts     [len(LatencyBuckets) + 1]uint64
	SumSeconds float64
}

func (h *hist) addTo(out *Histogram) {
	for i := range h.counts {
		out.Counts[i] += h.counts[i].Load()
	}
	out.SumSeconds += float64(h.sumUS.Load()) / 1e6
}

// Status classes of the requests counter: 1xx (a 101 upgrade) … 5xx, and
// 0 for a request whose connection ended before any response.
const statusClasses = session.StatusClasses

// loopMetrics are one loop's counters.
type loopMetrics struct {
	_        [64]byte // keeps other loops' counters off this cache line
	open     [protoCount]atomic.Int64
	accepted [2]atomic.Uint64 // plain, TLS
	upgrades [protoCount]atomic.Uint64
	// noVHost[k]: requests no vhost matched (or none was read), answered
	// with status class k; each vhost counts its own (VHost.Stats).
	noVHost  [statusClasses]atomic.Uint64
	request  hist // head read → response complete
	respHead hist // request forwarded → response head
	_        [64]byte
}

// rejections counts the requests and connections the proxy refused, by
// reason (protocol.Error metric names and the proxy's own). Rare, so one
// lock for all loops.
type rejections struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (r *rejections) add(reason string) {
	r.mu.Lock()
	if r.n == nil {
		r.n = map[string]uint64{}
	}
	r.n[reason]++
	r.mu.Unlock()
}

func (r *rejections) snapshot() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.n))
	for k, v := range r.n {
		out[k] = v
	}
	return out
}

// Metrics is a snapshot of everything /metrics and /status show.
type Metrics struct {
	Open     [protoCount]int64  // connections open now, by protocol
	Accepted [2]uint64          // connections accepted: plain, TLS
	Upgrades [protoCount]uint64 // connections that became ws or h2
	VHosts   []VHostMetrics
	Request  Histogram // head read → response complete
	RespHead Histogram // request forwarded → response head
	Rejected map[string]uint64
	Nodes    []NodeMetrics
	Stats    StatsSnapshot
	// Now is when the snapshot was taken, on the clock of the node
	// fields' times (LastPong, LastSeen: Server's stamp, which a wall
	// clock step does not move): ages are Now less them.
	Now int64
	// RingLen and RingCap: messages waiting for the bridge, and room.
	RingLen, RingCap int
	// BridgeConns are the nodes' connections open on each bridge; nil
	// with one bridge (not counted).
	BridgeConns []int
	// PendingOutput is the output held for clients that have not read
	// it yet (max-pending-output-total counts it); OutputHolders the
	// connections holding some.
	PendingOutput, OutputHolders int64
	// AccessLogDropped counts access log lines lost to a file slower
	// than the traffic.
	AccessLogDropped uint64
	// Stopping: a graceful stop began (connections drain; no new ones),
	// or the shutdown-delay before it (Leaving).
	Stopping bool
}

// VHostMetrics counts a virtual host's requests by status class.
type VHostMetrics struct {
	Name    string // "" for requests that matched none
	Classes [statusClasses]uint64
}

// NodeMetrics is one node's line of the node table.
type NodeMetrics struct {
	Name     string
	VHosts   []string
	Up       bool
	Sessions int64
	session.NodeTraffic
	MsgsOut, BytesOut, SendFailures uint64
	Queued                          int64 // messages held for it at its high-water mark
}

// Metrics sums every loop's counters with the server's and the bridge's.
// Safe from any goroutine; it allocates, so it is for scrapes only.
func (s *Server) Metrics() Metrics {
	m := Metrics{Stopping: s.Stopping()}
	rt := s.rt.Load()
	vhosts := rt.router.VHosts()
	m.VHosts = make([]VHostMetrics, len(vhosts)+1)
	for i, vh := range vhosts {
		m.VHosts[i] = VHostMetrics{Name: vh.Name, Classes: vh.Stats.Classes()}
	}
	for _, l := range s.loops {
		lm := l.metrics
		for p := range lm.open {
			m.Open[p] += lm.open[p].Load()
			m.Upgrades[p] += lm.upgrades[p].Load()
		}
		for i := range lm.accepted {
			m.Accepted[i] += lm.accepted[i].Load()
		}
		for k := range lm.noVHost {
			m.VHosts[len(vhosts)].Classes[k] += lm.noVHost[k].Load()
		}
		lm.request.addTo(&m.Request)
		lm.respHead.addTo(&m.RespHead)
	}
	m.Rejected = s.rejects.snapshot()
	m.Stats = s.Stats()
	if m.Stats.ConnsRefused > 0 {
		// Counted apart (an atomic: a flood of refusals takes no lock).
		m.Rejected["max_connections"] += m.Stats.ConnsRefused
	}
	now := s.stamp(time.Now())
	m.Now = now
	for _, n := range rt.nodes.Nodes() {
		if rt.retired(n) {
			continue
		}
		nm := NodeMetrics{Name: n.Name, Up: n.Alive(s.heardAt(now), s.deadAfter), Sessions: n.Sessions(),
			NodeTraffic: n.Traffic()}
		for _, vh := range vhosts {
			if vh.Allows(n) {
				nm.VHosts = append(nm.VHosts, vh.Name)
			}
		}
		t := nodeTraffic(s.bridges, n.Index)
		nm.MsgsOut, nm.BytesOut, nm.SendFailures, nm.Queued = t.Msgs, t.Bytes, t.Failures, t.Held
		m.Nodes = append(m.Nodes, nm)
	}
	m.RingLen, m.RingCap = ringLen(s.bridges)
	if len(s.bridges) > 1 {
		m.BridgeConns = make([]int, len(s.bridges))
		for k, b := range s.bridges {
			m.BridgeConns[k] = b.Conns()
		}
	}
	m.PendingOutput, m.OutputHolders = s.pendingTotal.Load(), s.holders.Load()
	if s.alog != nil {
		m.AccessLogDropped = s.alog.dropped.Load()
	}
	return m
}

// Connection accounting, on the connection's loop.

func (c *conn) opened(tls bool) {
	i := 0
	if tls {
		i = 1
	}
	c.l.metrics.accepted[i].Add(1)
	c.l.metrics.open[ProtoHTTP1].Add(1)
	c.proto = ProtoHTTP1
}

// switchProto moves the connection to p (an upgrade to ws or h2).
func (c *conn) switchProto(p Proto) {
	if c.proto == p {
		return
	}
	c.l.metrics.open[c.proto].Add(-1)
	c.l.metrics.open[p].Add(1)
	c.l.metrics.upgrades[p].Add(1)
	c.proto = p
}

func (c *conn) closedMetrics() { c.l.metrics.open[c.proto].Add(-1) }

// reject counts a refusal by reason.
func (s *Server) reject(reason string) { s.rejects.add(reason) }
