// Package zmqbridge owns BlastBeat's ZeroMQ ROUTER socket(s). One
// goroutine, locked to its OS thread, is the socket's only user: it drains
// a lock-free ring of messages from the event loops, sends them to nodes,
// receives replies and hands them to a Handler, and pings every node.
//
// The bridge moves opaque frames. It never parses HTTP, sids or bodies; it
// knows nodes only as identities indexed by position.
package zmqbridge
