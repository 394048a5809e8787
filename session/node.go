package session

import (
	"sync/atomic"
	"time"
)

// Node is one backend node, known by its ZeroMQ identity.
type Node struct {
	// Immutable.
	Name  string
	Index int // position in the Registry

	// Shared (atomic): written by the bridge and the event loops.
	lastSeen atomic.Int64 // unix nanoseconds of the last message; 0: never
	// lastHeard is lastSeen on the proxy's heard clock (see Heard), by
	// which its silence is judged; 0: never, or marked dead.
	lastHeard atomic.Int64
	sessions  atomic.Int64  // open sessions bound to this node
	credits   atomic.Bool   // its last pong said it speaks credits
	draining  atomic.Bool   // its last pong said it is stopping: no new sessions
	epoch     atomic.Uint32 // counts the processes seen answering for the name (NewInstance)

	// Traffic from the node, counted by the bridge goroutine its
	// connection is on and read by metrics scrapes.
	lastPong atomic.Int64 // unix nanoseconds of the last pong; 0: never
	msgsIn   atomic.Uint64
	bytesIn  atomic.Uint64
	retries  atomic.Uint64 // `retry` replies it sent
	seen     atomic.Bool   // it has spoken at least once (the connect log line)
	bridge   atomic.Int32  // 1 + the bridge its connection is on; 0: none known
	// homeHeard is when it last spoke through that bridge (unix ns).
	homeHeard atomic.Int64
}

// A proxy with several bridges serves each node's connection on one of
// them: the node's bridge is the first it is heard through, and stays
// until that bridge finds it unreachable (its connection closed) or has
// not heard it for a while that another bridge does, so that a second
// process with the same name, connected through another bridge, does not
// split its sessions.

// ClaimBridge records that the node spoke through bridge k at now (unix
// ns), and makes k its bridge if it has none, or if its bridge has not
// heard it for more than stale while k does: its old connection is gone
// without a close (its host died, a partition), which no ping through
// that bridge can tell, since libzmq takes pings into a dead TCP
// connection. It reports whether the node moved from another bridge.
func (n *Node) ClaimBridge(k int, now, stale int64) (moved bool) {
	want := int32(k + 1)
	for {
		switch cur := n.bridge.Load(); {
		case cur == want:
			if n.homeHeard.Load() != now { // now is a coarse clock: mostly equal
				n.homeHeard.Store(now)
			}
			return false
		case cur == 0:
			// The time first: a bridge that sees the claim sees it fresh.
			n.homeHeard.Store(now)
			if n.bridge.CompareAndSwap(0, want) {
				return false
			}
		default:
			// A move: one claimer takes the heard time, then the bridge.
			h := n.homeHeard.Load()
			if now-h <= stale || !n.homeHeard.CompareAndSwap(h, now) {
				return false
			}
			if n.bridge.CompareAndSwap(cur, want) {
				return true
			}
		}
		// Another bridge claimed or left it meanwhile: look again.
	}
}

// LeaveBridge forgets k as the node's bridge; it reports whether k was.
func (n *Node) LeaveBridge(k int) bool { return n.bridge.CompareAndSwap(int32(k+1), 0) }

// Bridge returns the node's bridge, or -1 when none is known.
func (n *Node) Bridge() int { return int(n.bridge.Load()) - 1 }

// Received counts one message of size body bytes from the node at now;
// pong says it was a pong. It reports whether this is the first message
// the node ever sent.
func (n *Node) Received(now int64, body int, pong bool) (first bool) {
	n.msgsIn.Add(1)
	n.bytesIn.Add(uint64(body))
	if pong {
		n.lastPong.Store(now)
	}
	return !n.seen.Load() && n.seen.CompareAndSwap(false, true)
}

// Retried counts a `retry` from the node.
func (n *Node) Retried() { n.retries.Add(1) }

// NodeTraffic is a snapshot of what a node sent.
type NodeTraffic struct {
	MsgsIn, BytesIn, Retries uint64
	LastPong, LastSeen       int64 // unix ns on the server's clock (its stamp: monotonic since its start); 0: never
}

// Traffic returns the node's counters.
func (n *Node) Traffic() NodeTraffic {
	return NodeTraffic{MsgsIn: n.msgsIn.Load(), BytesIn: n.bytesIn.Load(), Retries: n.retries.Load(),
		LastPong: n.lastPong.Load(), LastSeen: n.lastSeen.Load()}
}

// SetCredits records whether the node speaks credits (PROTOCOL.md).
func (n *Node) SetCredits(on bool) { n.credits.Store(on) }

// Credits reports whether the node speaks credits.
func (n *Node) Credits() bool { return n.credits.Load() }

// SetDraining records whether the node's last pong said it is stopping
// (the feature token "draining"): it finishes its sessions, and Pick
// gives it no new one while another node is live.
func (n *Node) SetDraining(on bool) { n.draining.Store(on) }

// Draining reports whether the node said it is stopping.
func (n *Node) Draining() bool { return n.draining.Load() }

// Seen records that the node spoke at now (unix nanoseconds), on a proxy
// whose heard clock is the wall clock (Heard).
func (n *Node) Seen(now int64) { n.Heard(now, now) }

// Heard records that the node spoke at now (unix nanoseconds), heard at
// heard on the proxy's heard clock: a clock that stands still while the
// proxy does not read from nodes, so that silence it could not hear is
// not the node's (Alive and Serves take their time on it).
func (n *Node) Heard(now, heard int64) {
	n.lastHeard.Store(heard)
	n.lastSeen.Store(now)
}

// MarkDead makes the node dead until it speaks again (e.g. the ROUTER
// found its identity unroutable).
func (n *Node) MarkDead() {
	n.lastHeard.Store(0)
	n.lastSeen.Store(0)
}

// Alive reports whether the node spoke within deadAfter of now, on the
// heard clock.
func (n *Node) Alive(now int64, deadAfter time.Duration) bool {
	ls := n.lastHeard.Load()
	return ls != 0 && now-ls < int64(deadAfter)
}

// Sessions returns the number of sessions bound to the node.
func (n *Node) Sessions() int64 { return n.sessions.Load() }

// NewInstance records that another process answers for the name (its
// pongs' instance token changed: a restart, or a second process taking
// the name over): the sessions bound to the node before are lost to it.
func (n *Node) NewInstance() { n.epoch.Add(1) }

// Epoch is the count NewInstance keeps, as a session records it when it
// binds: 16 bits, since a session outlives fewer restarts than that.
func (n *Node) Epoch() uint16 { return uint16(n.epoch.Load()) }

// Serves reports whether the node still serves a session bound at epoch:
// alive, and the same process.
func (n *Node) Serves(epoch uint16, now int64, deadAfter time.Duration) bool {
	return n.Alive(now, deadAfter) && n.Epoch() == epoch
}

// Bind counts one more session on the node; Unbind one fewer.
func (n *Node) Bind()   { n.sessions.Add(1) }
func (n *Node) Unbind() { n.sessions.Add(-1) }

// Registry is the immutable set of nodes named by the configuration.
type Registry struct {
	nodes     []*Node
	byName    map[string]*Node
	deadAfter time.Duration
}

// NewRegistry makes a registry of the given names (duplicates collapse).
// A node is dead when it has sent nothing for deadAfter.
func NewRegistry(names []string, deadAfter time.Duration) *Registry {
	r := &Registry{byName: make(map[string]*Node), deadAfter: deadAfter}
	for _, name := range names {
		if _, dup := r.byName[name]; dup {
			continue
		}
		n := &Node{Name: name, Index: len(r.nodes)}
		r.nodes = append(r.nodes, n)
		r.byName[name] = n
	}
	return r
}

// With returns a registry with r's nodes (the same *Node, at the same
// indexes) and, after them, those of names r does not have; added lists
// those. r is unchanged (a reload builds the next registry with it).
func (r *Registry) With(names []string) (next *Registry, added []string) {
	next = &Registry{nodes: append([]*Node(nil), r.nodes...), byName: make(map[string]*Node, len(r.byName)), deadAfter: r.deadAfter}
	for k, v := range r.byName {
		next.byName[k] = v
	}
	for _, name := range names {
		if _, ok := next.byName[name]; ok {
			continue
		}
		n := &Node{Name: name, Index: len(next.nodes)}
		next.nodes = append(next.nodes, n)
		next.byName[name] = n
		added = append(added, name)
	}
	return next, added
}

// Lookup finds a node by identity without allocating.
func (r *Registry) Lookup(identity []byte) *Node { return r.byName[string(identity)] }

// Nodes returns every node, in index order. The slice must not be changed.
func (r *Registry) Nodes() []*Node { return r.nodes }

// DeadAfter is how long a silent node stays alive.
func (r *Registry) DeadAfter() time.Duration { return r.deadAfter }
