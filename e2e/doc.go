// Package e2e holds BlastBeat's end-to-end tests: they build the real
// blastbeat binary (with the race detector), start it on random loopback
// ports, and talk to it with real clients and real ZeroMQ nodes.
package e2e
