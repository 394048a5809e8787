// Package node is a small Go library for writing BlastBeat backend nodes:
// it connects to one or more BlastBeat instances under the node's name
// (its ZeroMQ identity) and speaks PROTOCOL.md's [sid, type, body]
// messages.
//
// A node that calls EnableCredits also speaks the opt-in flow control
// (credit.go): the proxy then grants it response body bytes per session,
// and SendBody keeps within them.
//
// A Node is not safe for concurrent use: like the libzmq sockets under it,
// it belongs to one goroutine.
//
// # Several proxies
//
// BlastBeat scales out as N proxy instances side by side behind an L4
// (TCP) load balancer (HAProxy in mode tcp, IPVS, a cloud network load
// balancer) that spreads client connections over them. The proxies share
// nothing: a session lives, from its first byte to its `end`, in the
// proxy that accepted its connection, and its sid (16 random bytes) is
// unique across instances. So every node connects to every proxy, and
// each proxy pings it, balances over it and fails over from it on its
// own:
//
//	n, err := node.Dial("app1", "tcp://proxy-a:5000", "tcp://proxy-b:5000")
//	for {
//		m, err := n.Recv()      // from any proxy
//		...
//		n.Send(m.SID, typ, body) // back to the proxy m came from
//	}
//
// Dial keeps one DEALER socket per endpoint, all with the node's name, and
// Send puts each reply on the socket its session's messages came from (a
// single DEALER connected to several proxies would deal replies round
// robin, and a reply that reaches the wrong proxy is dropped there). See
// Send for the table that remembers which socket a session belongs to and
// how it stays bounded. Adding a proxy means restarting its nodes with
// one more endpoint; a proxy that is down only costs its own sessions
// (ZeroMQ reconnects in the background; the other proxies go on).
//
// # One name per process
//
// The node name is a routing identity: a proxy's ROUTER knows one
// connection per name, and a second process that connects under a name
// already in use takes the connection over (ZMQ_ROUTER_HANDOVER), so the
// first stops getting requests and its sessions in flight break. Run
// every process of an application under its own name and list each one in
// the virtual host, the same list in every proxy's config:
//
//	[blastbeat:app.example.com]
//	node = app1
//	node = app2
//	node = app3
//
// with `node.Dial("app2", endpoints...)` in the second process, and so on.
// Each proxy then spreads new sessions over the processes (fewest open
// sessions first) and skips the ones that stop answering its pings.
package node
