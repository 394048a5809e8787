package server

import (
	"sync/atomic"

	"github.com/blastbeat/blastbeat/zmqbridge"
)

// Stats are the server's counters, each under a stable metric name.
type Stats struct {
	Requests      atomic.Uint64 // requests forwarded to a node
	Rejected      atomic.Uint64 // requests answered by the proxy with 4xx/5xx
	Unauthorized  atomic.Uint64 // replies from a node not bound to the sid
	UnknownNode   atomic.Uint64 // messages from an identity not in the config
	BadMessage    atomic.Uint64 // bad sid or unknown type
	Stale         atomic.Uint64 // replies for sessions already gone
	Unexpected    atomic.Uint64 // replies not valid in the session's state
	BadResponse   atomic.Uint64 // malformed response heads (502)
	Timeouts      atomic.Uint64 // 504s
	Retries       atomic.Uint64
	SlowClients   atomic.Uint64 // closed for not reading their responses
	SilentClosed  atomic.Uint64 // closed at header-timeout without a byte
	Redirected    atomic.Uint64 // plain requests for TLS-only vhosts sent to https (308)
	TLSHandshakes atomic.Uint64 // completed
	TLSFailures   atomic.Uint64 // failed or timed out (logged at debug)
	DroppedNoLoop atomic.Uint64 // replies for a loop that never had a connection
	RingFull      atomic.Uint64
	ConnsRefused  atomic.Uint64
	EndsDropped   atomic.Uint64 // `end`s of closed sessions given up for a node stuck long (loop.orphan)
}

// StatsSnapshot is a copy of the counters with the bridge's.
type StatsSnapshot struct {
	Requests, Rejected, Unauthorized, UnknownNode, BadMessage, Stale,
	Unexpected, BadResponse, Timeouts, Retries, SlowClients, RingFull,
	ConnsRefused, SilentClosed, DroppedNoLoop, Redirected,
	TLSHandshakes, TLSFailures, EndsDropped uint64
	Bridge zmqbridge.Stats
}

func (s *Stats) snapshot(bs []*zmqbridge.Bridge) StatsSnapshot {
	out := StatsSnapshot{
		Requests: s.Requests.Load(), Rejected: s.Rejected.Load(),
		Unauthorized: s.Unauthorized.Load(), UnknownNode: s.UnknownNode.Load(),
		BadMessage: s.BadMessage.Load(), Stale: s.Stale.Load(),
		Unexpected: s.Unexpected.Load(), BadResponse: s.BadResponse.Load(),
		Timeouts: s.Timeouts.Load(), Retries: s.Retries.Load(),
		SlowClients: s.SlowClients.Load(), RingFull: s.RingFull.Load(),
		ConnsRefused: s.ConnsRefused.Load(),
		SilentClosed: s.SilentClosed.Load(), Redirected: s.Redirected.Load(),
		TLSHandshakes: s.TLSHandshakes.Load(), TLSFailures: s.TLSFailures.Load(), DroppedNoLoop: s.DroppedNoLoop.Load(),
		EndsDropped: s.EndsDropped.Load(),
	}
	out.Bridge = bridgeStats(bs)
	return out
}
