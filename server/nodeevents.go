package server

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/blastbeat/blastbeat/session"
)

// Node events in the log: a node speaks for the first time (connected),
// stops answering pings (down, after 3 × ping-freq of silence), speaks
// again (up: it reconnected, or came back), and messages from an
// identity that no virtual host lists (a warning naming it, once).

// maxUnknownLogged bounds the identities remembered for that warning.
const maxUnknownLogged = 1024

// A process that takes a node name already connected: ZeroMQ hands the
// identity over to the newest connection (ROUTER_HANDOVER) and the older
// process, still connected, gets no more messages. The pongs' instance
// tokens (PROTOCOL.md) tell the proxy a new process answers for the name:
// a restart, or such a second process; it is logged, at most every
// instanceWarnEvery per node, and the sessions bound to the node before
// are ended (session.Node.NewInstance).
const instanceWarnEvery = 10 * time.Second

// maxInstanceToken bounds an instance token the proxy keeps and logs (a
// process's random token is a few dozen bytes).
const maxInstanceToken = 128

// nodeInstance is what the bridge goroutine knows of a node's process.
type nodeInstance struct {
	last   string
	warned int64 // unix ns
}

// instanceSeen follows the instance token of node n's pong; on a bridge
// goroutine (pongs are rare: one lock for all the bridges).
func (s *Server) instanceSeen(n *session.Node, body []byte, now int64) {
	inst := featureValue(body, "instance")
	if len(inst) == 0 || len(inst) > maxInstanceToken || n.Index >= len(s.instances) {
		return // a node that names no instance (the original's), or one too long to keep and log
	}
	s.instMu.Lock()
	defer s.instMu.Unlock()
	st := &s.instances[n.Index]
	if st.last == string(inst) {
		return
	}
	prev := st.last
	st.last = string(inst)
	if prev == "" {
		return // the first token heard: the process the sessions know
	}
	// Another process: the sessions bound before are lost to it (the
	// loops' sweeps fail them over, answer 502, or close them).
	n.NewInstance()
	if now-st.warned < int64(instanceWarnEvery) {
		return
	}
	st.warned = now
	s.opts.Logger.Warn("a new process answers for this node name: a restart, or a second process using the name "+
		"(the older one then gets no more messages: give each process its own name, listed in the vhost)",
		"node", n.Name, "old-instance", prev, "new-instance", st.last)
}

// featureValue returns the value of a "name=value" token of a pong body.
func featureValue(body []byte, name string) []byte {
	for b := pongScan(body); len(b) > 0; {
		var t []byte
		t, b = nextToken(b)
		if len(t) > len(name) && t[len(name)] == '=' && string(t[:len(name)]) == name {
			return t[len(name)+1:]
		}
	}
	return nil
}

// nodeWatch is the ticker goroutine's view of which nodes are up.
type nodeWatch struct {
	up     []bool
	since  []int64 // when the node was first watched (the start, or the reload that listed it), on the heard clock
	warned []bool  // "has not connected" was logged
	deaf   deafPause
}

// watchNodes logs the nodes that went down or came up since the last
// sweep. Runs on the ticker goroutine.
func (s *Server) watchNodes(w *nodeWatch, now int64) {
	s.watchDeaf(&w.deaf, now)
	heard := s.heardAt(now)
	rt := s.rt.Load()
	nodes := rt.nodes.Nodes()
	for len(w.up) < len(nodes) {
		w.up = append(w.up, false) // nodes a reload added
		w.since = append(w.since, heard)
		w.warned = append(w.warned, false)
	}
	for i, n := range nodes {
		t := n.Traffic()
		if t.LastSeen == 0 && !w.up[i] {
			// Never spoke (or marked dead and not up before). A node
			// that never spoke is pinged but says nothing: a name that
			// does not match, or an endpoint it does not reach; said
			// once, after dead-after, if a vhost lists it.
			if t.MsgsIn == 0 && !w.warned[i] && heard-w.since[i] > int64(s.deadAfter) && rt.lists(n) {
				w.warned[i] = true
				s.opts.Logger.Warn("a node the virtual hosts list has not connected: its requests get 503 (check that the node's ZeroMQ identity is this name, and that it connects to a zmq endpoint)",
					"node", n.Name, "zmq", strings.Join(s.opts.ZMQ, ","), "waited", time.Duration(heard-w.since[i]).Round(time.Second))
			}
			continue
		}
		alive := n.Alive(heard, s.deadAfter)
		if alive == w.up[i] {
			continue
		}
		w.up[i] = alive
		if rt.retired(n) {
			continue // a reload removed it: its going is no news
		}
		if alive {
			s.opts.Logger.Info("node up", "node", n.Name, "sessions", n.Sessions())
			continue
		}
		silent := "unreachable"
		if t.LastSeen != 0 {
			silent = time.Duration(now - t.LastSeen).Round(time.Millisecond).String()
		}
		s.opts.Logger.Warn("node down: missed its pings", "node", n.Name, "silent", silent,
			"sessions", n.Sessions(), "dead-after", s.deadAfter)
	}
}

// nodeSpoke accounts a message from node n; on the bridge goroutine.
func (h *bridgeHandler) nodeSpoke(n *session.Node, typ []byte, body []byte, now int64) {
	pong := string(typ) == "pong"
	if n.Received(now, len(body), pong) {
		if h.opts.ZMQBridges > 1 {
			h.opts.Logger.Info("node connected", "node", n.Name, "bridge", h.k)
		} else {
			h.opts.Logger.Info("node connected", "node", n.Name)
		}
	}
	if pong && n.Bridge() == h.k {
		// Only through the bridge the node's sessions go: with several
		// bridges, a second process holding the name on another one
		// (a misconfiguration, which the other bridge's pongs would
		// show) must not end the sessions at every pong.
		h.instanceSeen(n, body, now)
	}
	if string(typ) == "retry" {
		n.Retried()
	}
}

// unknownIdentity warns, once per identity, about a DEALER whose identity
// no virtual host lists; on the bridge goroutine.
func (h *bridgeHandler) unknownIdentity(identity []byte) {
	if _, seen := h.unknownIDs[string(identity)]; seen || len(h.unknownIDs) >= maxUnknownLogged {
		return
	}
	if h.unknownIDs == nil {
		h.unknownIDs = map[string]struct{}{}
	}
	h.unknownIDs[string(identity)] = struct{}{}
	h.opts.Logger.Warn("message from a node no virtual host lists: dropped (add `node = NAME` to a vhost)",
		"identity", printableIdentity(identity))
}

// printableIdentity quotes an identity for the log (it is any bytes).
func printableIdentity(id []byte) string {
	for _, c := range id {
		if c < 0x20 || c >= 0x7f {
			return "0x" + hex.EncodeToString(id)
		}
	}
	return string(id)
}
