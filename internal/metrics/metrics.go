// Package metrics serves a running proxy's counters to operators: /metrics
// in the Prometheus text format (through client_golang, from one snapshot
// of server.Metrics per scrape: the event loops only keep their own
// counters), and /status, the node table as JSON.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/blastbeat/blastbeat/server"
)

// Source is what is scraped: *server.Server.
type Source interface {
	Metrics() server.Metrics
}

// namespace prefixes every metric name.
const namespace = "blastbeat"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

// The metrics, with stable names and labels (README "Metrics").
var (
	dConnsOpen      = desc("connections_open", "Client connections open now, by the protocol they speak.", "protocol")
	dConnsAccepted  = desc("connections_accepted_total", "Client connections accepted, by transport.", "transport")
	dUpgrades       = desc("connection_upgrades_total", "Connections that became WebSocket or HTTP/2.", "protocol")
	dRequests       = desc("requests_total", "Requests answered, by virtual host and status class (0xx: the client went away first).", "vhost", "code")
	dRequestSeconds = desc("request_duration_seconds", "From a request's head to the end of its response.")
	dHeadSeconds    = desc("response_head_seconds", "From forwarding a request to a node to its response head.")
	dRejected       = desc("rejected_total", "Requests and connections the proxy refused, by reason.", "reason")
	dNodeUp         = desc("node_up", "1 when the node answered within 3 x ping-freq.", "node")
	dNodeSessions   = desc("node_sessions", "Sessions bound to the node now.", "node")
	dNodeMsgs       = desc("node_messages_total", "Messages to and from the node.", "node", "direction")
	dNodeBytes      = desc("node_bytes_total", "Message body bytes to and from the node.", "node", "direction")
	dNodeFailures   = desc("node_send_failures_total", "Messages the proxy could not hand to the node.", "node")
	dNodeRetries    = desc("node_retries_total", "`retry` replies the node sent.", "node")
	dNodePongAge    = desc("node_last_pong_age_seconds", "Seconds since the node's last pong (absent: never).", "node")
	dNodeQueued     = desc("node_queued_messages", "Messages held for the node at its ZeroMQ high-water mark.", "node")
	dRingLen        = desc("bridge_ring_messages", "Messages waiting in the ring for the ZeroMQ bridge.")
	dRingCap        = desc("bridge_ring_capacity", "Slots of the ring.")
	dPendingOutput  = desc("pending_output_bytes", "Output held for clients that have not read it yet (max-pending-output-total counts it).")
	dOutputHolders  = desc("output_holders", "Client connections holding output they have not read yet.")
	dRefusals       = desc("bridge_refusals_total", "Messages the bridges refused for a while, by reason: node_full (their node at its high-water mark: only its sessions wait), ring_full (the bridge behind: their client waits).", "reason")
	dBusyPolls      = desc("bridge_busy_polls_total", "The bridges' polls for work before sleeping (zmq-busy-poll), by whether they found some.", "result")
	dBridgeConns    = desc("bridge_node_connections", "Connections open on each ZeroMQ bridge's endpoints, those in their handshake included (zmq-bridges above 1).", "bridge")
	dRebalanced     = desc("bridge_rebalanced_total", "Nodes' connections shut during their handshake for landing on a bridge with more than another (zmq-rebalance); the nodes reconnect.")
	dTLSHandshakes  = desc("tls_handshakes_total", "TLS handshakes completed.")
	dTLSFailures    = desc("tls_handshake_failures_total", "TLS handshakes failed or timed out.")
	dStale          = desc("stale_replies_total", "Node replies for sessions already gone.")
	dUnknownNode    = desc("unknown_node_messages_total", "Messages from identities no virtual host lists.")
	dNodeErrors     = desc("node_protocol_errors_total", "Node messages the proxy refused, by kind: unauthorized (a reply for a session the node is not bound to), bad_message (a bad sid or an unknown type), unexpected (not valid in the session's state, or body bytes past the response's framing), bad_response (a malformed response head: 502), no_loop (for an event loop that never had a connection), bad_frames (not [sid, type, body]).", "kind")
	dEndsDropped    = desc("ends_dropped_total", "`end`s of closed sessions given up for a node stuck long (past ring-size per event loop).")
	dAccessDropped  = desc("access_log_dropped_total", "Access log lines lost: a loop's buffer full (the file slower than the traffic), or a write that failed (a full disk, an I/O error).")
	dLogDropped     = desc("log_lines_dropped_total", "Log lines (not the access log) lost: stderr slower than the log (log-buffer).")
)

// LogSource is a Source that also counts the proxy's own log lines
// dropped (its log goes through a bounded buffer, internal/logbuf).
type LogSource interface {
	Source
	LogDropped() uint64
}

// collector turns one snapshot into the metrics.
type collector struct{ src Source }

// NewCollector returns a prometheus.Collector of src.
func NewCollector(src Source) prometheus.Collector { return collector{src} }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dConnsOpen, dConnsAccepted, dUpgrades, dRequests, dRequestSeconds,
		dHeadSeconds, dRejected, dNodeUp, dNodeSessions, dNodeMsgs, dNodeBytes, dNodeFailures, dNodeRetries,
		dNodePongAge, dNodeQueued, dRingLen, dRingCap, dPendingOutput, dOutputHolders, dRefusals, dBusyPolls, dRebalanced, dBridgeConns, dTLSHandshakes, dTLSFailures, dStale, dUnknownNode, dNodeErrors, dEndsDropped, dAccessDropped, dLogDropped} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.src.Metrics()
	// A sample whose labels Prometheus refuses (config checks node and
	// vhost names, so this is a bug's doing) is left out rather than
	// panicking: Gather runs Collect with no recover, and a panic there
	// would end the proxy.
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		if m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, labels...); err == nil {
			ch <- m
		}
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		if m, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(v), labels...); err == nil {
			ch <- m
		}
	}
	for p := server.ProtoHTTP1; p <= server.ProtoHTTP2; p++ {
		gauge(dConnsOpen, float64(m.Open[p]), p.String())
		if p != server.ProtoHTTP1 {
			counter(dUpgrades, m.Upgrades[p], p.String())
		}
	}
	counter(dConnsAccepted, m.Accepted[0], "plain")
	counter(dConnsAccepted, m.Accepted[1], "tls")
	for _, vh := range m.VHosts {
		name := vh.Name
		if name == "" {
			name = "-" // no virtual host matched (or none was read)
		}
		for k, n := range vh.Classes {
			if n > 0 {
				counter(dRequests, n, name, strconv.Itoa(k)+"xx")
			}
		}
	}
	ch <- histogram(dRequestSeconds, &m.Request)
	ch <- histogram(dHeadSeconds, &m.RespHead)
	for reason, n := range m.Rejected {
		counter(dRejected, n, reason)
	}
	now := m.Now // the node times' clock
	if now == 0 {
		now = time.Now().UnixNano()
	}
	for _, n := range m.Nodes {
		up := 0.0
		if n.Up {
			up = 1
		}
		gauge(dNodeUp, up, n.Name)
		gauge(dNodeSessions, float64(n.Sessions), n.Name)
		counter(dNodeMsgs, n.MsgsOut, n.Name, "out")
		counter(dNodeMsgs, n.MsgsIn, n.Name, "in")
		counter(dNodeBytes, n.BytesOut, n.Name, "out")
		counter(dNodeBytes, n.BytesIn, n.Name, "in")
		counter(dNodeFailures, n.SendFailures, n.Name)
		counter(dNodeRetries, n.Retries, n.Name)
		gauge(dNodeQueued, float64(n.Queued), n.Name)
		if n.LastPong != 0 {
			gauge(dNodePongAge, time.Duration(now-n.LastPong).Seconds(), n.Name)
		}
	}
	gauge(dRingLen, float64(m.RingLen))
	gauge(dRingCap, float64(m.RingCap))
	gauge(dPendingOutput, float64(m.PendingOutput))
	gauge(dOutputHolders, float64(m.OutputHolders))
	counter(dRefusals, m.Stats.Bridge.NodeFull, "node_full")
	counter(dRefusals, m.Stats.Bridge.RingFull, "ring_full")
	counter(dBusyPolls, m.Stats.Bridge.BusyPollWork, "work")
	counter(dBusyPolls, m.Stats.Bridge.BusyPollIdle, "idle")
	counter(dRebalanced, m.Stats.Bridge.Rebalanced)
	for k, n := range m.BridgeConns {
		gauge(dBridgeConns, float64(n), strconv.Itoa(k))
	}
	counter(dTLSHandshakes, m.Stats.TLSHandshakes)
	counter(dTLSFailures, m.Stats.TLSFailures)
	counter(dStale, m.Stats.Stale)
	counter(dUnknownNode, m.Stats.UnknownNode)
	counter(dNodeErrors, m.Stats.Unauthorized, "unauthorized")
	counter(dNodeErrors, m.Stats.BadMessage, "bad_message")
	counter(dNodeErrors, m.Stats.Unexpected, "unexpected")
	counter(dNodeErrors, m.Stats.BadResponse, "bad_response")
	counter(dNodeErrors, m.Stats.DroppedNoLoop, "no_loop")
	counter(dNodeErrors, m.Stats.Bridge.DroppedFrames, "bad_frames")
	counter(dEndsDropped, m.Stats.EndsDropped)
	counter(dAccessDropped, m.AccessLogDropped)
	if ls, ok := c.src.(LogSource); ok {
		counter(dLogDropped, ls.LogDropped())
	}
}

// histogram converts a snapshot to a Prometheus histogram (cumulative
// buckets).
func histogram(d *prometheus.Desc, h *server.Histogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(server.LatencyBuckets))
	var cum uint64
	for i, bound := range server.LatencyBuckets {
		cum += h.Counts[i]
		buckets[bound] = cum
	}
	total := cum + h.Counts[len(server.LatencyBuckets)]
	return prometheus.MustNewConstHistogram(d, total, h.SumSeconds, buckets)
}
