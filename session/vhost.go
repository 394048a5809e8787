package session

import (
	"sync/atomic"
	"time"
)

// Format is how a request head reaches the node.
type Format uint8

const (
	FormatUwsgi   Format = iota // a uwsgi packet (the default)
	FormatHeaders               // the raw request head
)

// VHost is a virtual host: the nodes that serve a set of Host names.
type VHost struct {
	// Immutable.
	Name    string
	Aliases []string // more lower-case Host names
	Nodes   []*Node
	Format  Format
	Timeout time.Duration // response head deadline
	// ResponseIdleTimeout: a node's longest silence in a response it
	// began (0: none).
	ResponseIdleTimeout time.Duration
	MaxBody             int64    // 0: no limit
	AllowTrace          bool     // TRACE goes to the nodes (else 405)
	HTTPSRedirect       bool     // plain requests for a TLS-only vhost get 308
	WebSocketProtocols  []string // subprotocols offered to clients
	NodeHandshake       bool     // the node answers WebSocket handshakes
	Index               int      // position in the Router's list
	// Stats counts the vhost's requests by status class, per event loop;
	// a reload hands a vhost of the same name the same Stats.
	Stats *VHostStats

	rr atomic.Uint32 // round-robin start for ties
}

// Allows reports whether n serves this virtual host (the authorization
// rule: a node only touches sessions of vhosts that list it).
func (v *VHost) Allows(n *Node) bool {
	for _, m := range v.Nodes {
		if m == n {
			return true
		}
	}
	return false
}

// Pick returns the live node with the fewest open sessions, breaking ties
// round robin, or nil when no node is alive. except, when not nil, is
// skipped if another live node exists (used by retry).
func (v *VHost) Pick(now int64, deadAfter time.Duration, except *Node) *Node {
	k := len(v.Nodes)
	if k == 0 {
		return nil
	}
	start := int(v.rr.Add(1))
	var best *Node
	var bestN int64
	bestDraining := false
	for i := 0; i < k; i++ {
		n := v.Nodes[(start+i)%k]
		if n == except || !n.Alive(now, deadAfter) {
			continue
		}
		// A draining node (its pongs say it stops) only when no other is
		// live: it would have the fewest sessions, and answer retry.
		d := n.Draining()
		if s := n.Sessions(); best == nil || bestDraining && !d || d == bestDraining && s < bestN {
			best, bestN, bestDraining = n, s, d
		}
	}
	return best
}

// Router maps Host header values to virtual hosts. It is immutable and
// safe for concurrent use.
type Router struct {
	exact    map[string]*VHost
	catchAll *VHost
	nodes    *Registry
	all      []*VHost
}

// NewRouter builds a router; a vhost named "*" is the catch-all. Names
// must already be lower case.
func NewRouter(vhosts []*VHost, nodes *Registry) *Router {
	r := &Router{exact: make(map[string]*VHost, len(vhosts)), nodes: nodes, all: vhosts}
	for i, v := range vhosts {
		v.Index = i
		if v.Name == "*" {
			r.catchAll = v
			continue
		}
		r.exact[v.Name] = v
		for _, a := range v.Aliases {
			if _, taken := r.exact[a]; !taken {
				r.exact[a] = v
			}
		}
	}
	return r
}

// Nodes returns the node registry.
func (r *Router) Nodes() *Registry { return r.nodes }

// VHosts returns every virtual host in configuration order (VHost.Index).
// The slice must not be changed.
func (r *Router) VHosts() []*VHost { return r.all }

// maxHostBytes bounds the Host values looked up (longer ones miss).
const maxHostBytes = 255 + 6

// Match finds the vhost of a Host value: with its port, then without,
// case-insensitively, then the catch-all. It returns nil for no match. A
// name's trailing dot (a.test., the fully qualified form) is dropped, as
// TLS's SNI drops it.
func (r *Router) Match(host []byte) *VHost {
	var buf [maxHostBytes]byte
	if len(host) <= len(buf) {
		b := buf[:len(host)]
		for i, c := range host {
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		end := len(b)
		if i := hostPortColon(b); i >= 0 {
			end = i
		}
		if end > 1 && b[end-1] == '.' {
			b = append(b[:end-1], b[end:]...)
		}
		if v, ok := r.exact[string(b)]; ok {
			return v
		}
		if i := hostPortColon(b); i >= 0 {
			if v, ok := r.exact[string(b[:i])]; ok {
				return v
			}
		}
	}
	return r.catchAll
}

// hostPortColon returns the index of the colon before a port, or -1.
func hostPortColon(h []byte) int {
	for i := len(h) - 1; i >= 0; i-- {
		switch h[i] {
		case ':':
			return i
		case ']':
			return -1
		}
	}
	return -1
}

// StatusClasses are the classes VHostStats counts: 0 (no response: the
// client left first), 1xx … 5xx.
const StatusClasses = 6

// VHostStats are a virtual host's request counters, one line per event
// loop (each written by its loop only), summed when read.
type VHostStats struct {
	loops []vhostLoopStats
}

type vhostLoopStats struct {
	class [StatusClasses]atomic.Uint64
	_     [64 - (StatusClasses*8)%64]byte // one cache line per loop
}

// NewVHostStats returns counters for loops event loops.
func NewVHostStats(loops int) *VHostStats {
	return &VHostStats{loops: make([]vhostLoopStats, loops)}
}

// Count counts a request answered with status class k (0…5) on loop l.
func (s *VHostStats) Count(l, k int) {
	if l < len(s.loops) && k < StatusClasses {
		s.loops[l].class[k].Add(1)
	}
}

// Classes sums the loops' counters.
func (s *VHostStats) Classes() (out [StatusClasses]uint64) {
	for i := range s.loops {
		for k := range out {
			out[k] += s.loops[i].class[k].Load()
		}
	}
	return out
}
