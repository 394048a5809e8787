package config

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// statsAddrOK reports whether the stats listener address is usable: off,
// or host:port on loopback unless public is set (metrics are never served
// on a public address by accident).
func statsAddrOK(addr string, public bool) bool {
	if addr == "" {
		return true
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return false
	}
	if public {
		return true
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// minPingFreq bounds ping-freq from below: a node is dead after three
// missed pings, and a shorter period flooded the nodes with pings and
// took any pong slower than a few milliseconds for a dead node.
const minPingFreq = 100 * time.Millisecond

// MaxWorkers bounds workers: the event loops a session id can address
// (session.MaxLoops; the server checks they agree). More were cut to it
// without a word.
const MaxWorkers = 64

// maxRingSize bounds ring-size (16M messages).
const maxRingSize = 1 << 24

// maxShutdownDelay bounds shutdown-delay: a load balancer takes seconds
// to drop a replica, and a supervisor kills one that takes too long.
const maxShutdownDelay = 10 * time.Minute

// maxTCPKeepAlive is the most Linux takes for TCP_KEEPIDLE and
// TCP_KEEPINTVL (32767 s): a longer tcp-keepalive made every listen fail.
const maxTCPKeepAlive = 32767 * time.Second

// MaxZMQIOThreads bounds zmq-io-threads: more I/O threads than nodes
// idle, and a machine with more cores than this serves them with fewer.
const MaxZMQIOThreads = 64

// MaxZMQBridges bounds zmq-bridges: each is a thread busy with libzmq,
// beside the event loops.
const MaxZMQBridges = 16

// MaxZMQRebalance bounds zmq-rebalance: each connection shut costs its
// node a reconnect interval (100 ms by default) before it serves.
const MaxZMQRebalance = 1000

// MaxZMQBusyPoll bounds zmq-busy-poll: a request that takes longer to
// come back than a scheduler tick gains nothing from a thread kept awake.
const MaxZMQBusyPoll = 10 * time.Millisecond

// minEmperorHeartbeat bounds emperor-heartbeat from below, when it is on.
const minEmperorHeartbeat = 10 * time.Millisecond

// validate checks what needs the whole file: required sections and keys,
// ranges, and relations between fields, recording every failure. Errors
// point at the key's line when it was set, else at its section's header.
// Once a section was dropped (its header unreadable, unknown or a
// duplicate) nothing is reported missing: it may have held it; nor is a
// key that is there with a bad value (already reported).
func (p *parser) validate() {
	o := &p.opts
	checkMissing := !p.dropped
	if checkMissing {
		p.required()
	}
	// A check between two keys blames the one that was set: the other
	// kept its default.
	pairKey := func(key, other string) string {
		if p.firstLine(p.mainRaw, key) == 0 && p.firstLine(p.mainRaw, other) > 0 {
			return other
		}
		return key
	}
	uriKey := pairKey("max-uri", "max-header-size")
	outKey := pairKey("max-pending-output-total", "max-pending-output")
	lingerKey := pairKey("lingering-time", "lingering-timeout")
	windowKey := pairKey("http2-stream-window", "max-read-ahead")
	if p.firstLine(p.mainRaw, "http2-stream-window") == 0 {
		// The default keeps within the bound below of a max-read-ahead
		// set lower (a config written before the key stays valid).
		o.HTTP2StreamWindow = max(65535, min(o.HTTP2StreamWindow, o.MaxReadAhead/2))
	}
	checks := []struct {
		key string
		ok  bool
		msg string
	}{
		{"ping-freq", o.PingFreq >= minPingFreq, fmt.Sprintf("must be at least %v (a node is dead after 3 missed pings)", minPingFreq)},
		{"timeout", o.Timeout > 0, "must be greater than 0"},
		{"response-idle-timeout", o.ResponseIdleTimeout >= 0, "must not be negative"},
		{"max-hops", o.MaxHops >= 0, "must not be negative"},
		{"max-connections", o.MaxConnections > 0, "must be greater than 0"},
		{"max-header-size", 256 <= o.MaxHeaderSize && o.MaxHeaderSize <= 65535, "must be between 256 and 65535"},
		{"max-uri", o.MaxURI > 0, "must be greater than 0"},
		{uriKey, o.MaxURI <= o.MaxHeaderSize, fmt.Sprintf("max-uri (%d) must not exceed max-header-size (%d)", o.MaxURI, o.MaxHeaderSize)},
		{"max-body", o.MaxBody > 0, "must be greater than 0"},
		{"max-websocket-message", o.MaxWebSocketMessage > 0, "must be greater than 0"},
		{"max-pending-output", o.MaxPendingOutput > 0, "must be greater than 0"},
		{outKey, o.MaxPendingOutputTotal >= int64(o.MaxPendingOutput),
			fmt.Sprintf("max-pending-output (%d) must not exceed max-pending-output-total (%d)", o.MaxPendingOutput, o.MaxPendingOutputTotal)},
		{"credit-window", o.CreditWindow >= 1024, "must be at least 1k"},
		{"max-read-ahead", o.MaxReadAhead >= 4096, "must be at least 4k"},
		{"tls-handshake-timeout", o.TLSHandshakeTimeout > 0, "must be greater than 0"},
		{"tls-handshake-idle-timeout", o.TLSHandshakeIdleTimeout > 0, "must be greater than 0"},
		{"max-tls-handshakes", o.MaxTLSHandshakes > 0, "must be greater than 0"},
		{"max-client-hello", o.MaxClientHello >= 4<<10 && o.MaxClientHello <= 64<<10, "must be from 4K to 64K"},
		{"http2-max-streams", o.HTTP2MaxStreams > 0 && o.HTTP2MaxStreams <= 1<<16, "must be from 1 to 65536"},
		{"http2-max-resets", o.HTTP2MaxResets > 0, "must be greater than 0"},
		{"http2-max-control-frames", o.HTTP2MaxControlFrames > 0, "must be greater than 0"},
		{"http2-header-table-size", o.HTTP2HeaderTableSize >= 0 && o.HTTP2HeaderTableSize <= 1<<20, "must be from 0 to 1M"},
		{"http2-max-header-block", o.HTTP2MaxHeaderBlock >= 1024 && o.HTTP2MaxHeaderBlock <= 16<<20, "must be from 1K to 16M"},
		// Below HTTP/2's 65535 a client could pass it before it reads the
		// SETTINGS that say so; above 2^31-1 is no window.
		{"http2-stream-window", o.HTTP2StreamWindow >= 65535 && o.HTTP2StreamWindow <= 1<<31-1, "must be from 65535 to 2147483647"},
		{"http2-connection-window", o.HTTP2ConnectionWindow >= 65535 && o.HTTP2ConnectionWindow <= 1<<31-1, "must be from 65535 to 2147483647"},
		// A stream whose node is stuck holds up to its window, and the
		// connection stops being read past max-read-ahead held: one
		// request body alone must not stop its connection's others.
		{windowKey, o.HTTP2StreamWindow <= max(65535, o.MaxReadAhead/2),
			fmt.Sprintf("http2-stream-window (%d) must not exceed half of max-read-ahead (%d): one request body waiting for a stuck node would stop its connection's other streams", o.HTTP2StreamWindow, o.MaxReadAhead)},
		{"header-timeout", o.HeaderTimeout > 0, "must be greater than 0"},
		{"workers", o.Workers >= 0 && o.Workers <= MaxWorkers, fmt.Sprintf("must be 0 (one per core) to %d", MaxWorkers)},
		{"stall-timeout", o.StallTimeout > 0, "must be greater than 0"},
		{"lingering-timeout", o.LingeringTimeout > 0, "must be greater than 0"},
		{lingerKey, o.LingeringTime >= o.LingeringTimeout, fmt.Sprintf("lingering-timeout (%v) must not exceed lingering-time (%v)", o.LingeringTimeout, o.LingeringTime)},
		{"send-timeout", o.SendTimeout > 0, "must be greater than 0"},
		{"zmq-hwm", o.ZMQHWM > 0, "must be greater than 0"},
		{"zmq-rcv-hwm", o.ZMQRcvHWM > 0, "must be greater than 0"},
		{"zmq-max-message", o.ZMQMaxMessage >= 64<<10, "must be at least 64k"},
		{"zmq-queue-bytes", o.ZMQQueueBytes >= 64<<10, "must be at least 64k"},
		{"zmq-io-threads", o.ZMQIOThreads >= 1 && o.ZMQIOThreads <= MaxZMQIOThreads, fmt.Sprintf("must be 1 to %d", MaxZMQIOThreads)},
		{"zmq-bridges", o.ZMQBridges >= 1 && o.ZMQBridges <= MaxZMQBridges, fmt.Sprintf("must be 1 to %d", MaxZMQBridges)},
		{"zmq-rebalance", o.ZMQRebalance >= 0 && o.ZMQRebalance <= MaxZMQRebalance, fmt.Sprintf("must be from 0 (off) to %d", MaxZMQRebalance)},
		{"zmq-busy-poll", o.ZMQBusyPoll >= 0 && o.ZMQBusyPoll <= MaxZMQBusyPoll, fmt.Sprintf("must be from 0 (off) to %v", MaxZMQBusyPoll)},
		{"emperor-heartbeat", o.EmperorHeartbeat == 0 || o.EmperorHeartbeat >= minEmperorHeartbeat,
			fmt.Sprintf("must be 0 (off) or at least %v", minEmperorHeartbeat)},
		{"max-nodes", o.MaxNodes > 0 && o.MaxNodes <= 1<<20, "must be from 1 to 1048576"},
		{"websocket-message-timeout", o.WebSocketMessageTimeout > 0, "must be greater than 0"},
		{"stats-max-connections", o.StatsMaxConnections >= 1, "must be at least 1"},
		{"stats-idle-timeout", o.StatsIdleTimeout > 0, "must be greater than 0"},
		{"shutdown-delay", o.ShutdownDelay >= 0 && o.ShutdownDelay <= maxShutdownDelay, fmt.Sprintf("must be from 0 (none) to %v", maxShutdownDelay)},
		{"tcp-keepalive", o.TCPKeepAlive == 0 || o.TCPKeepAlive >= 5*time.Second && o.TCPKeepAlive <= maxTCPKeepAlive && o.TCPKeepAlive%time.Second == 0,
			fmt.Sprintf("must be 0 (off) or whole seconds from 5 to %d", int(maxTCPKeepAlive/time.Second))},
		{"access-log-buffer", o.AccessLogBuffer >= 64<<10, "must be at least 64k"},
		{"log-buffer", o.LogBuffer >= 64<<10, "must be at least 64k"},
		{"node-read-ahead", o.NodeReadAhead >= 64<<10, "must be at least 64k"},
		{"stats", statsAddrOK(o.Stats, o.StatsPublic), "must be HOST:PORT on a loopback address (127.0.0.1:9090, [::1]:9090; set stats-public = true for another)"},
		{"ring-size", o.RingSize >= 1024 && o.RingSize <= maxRingSize && o.RingSize&(o.RingSize-1) == 0,
			fmt.Sprintf("must be a power of two from 1024 to %d", maxRingSize)},
	}
	for _, c := range checks {
		if !c.ok {
			line := p.firstLine(p.mainRaw, c.key)
			if line == 0 {
				line = p.mainLine
			}
			p.fail(line, mainSection, c.key, ErrBadValue, c.msg)
		}
	}
	for i := range o.VHosts {
		v := &o.VHosts[i]
		if len(v.BindSSL) == 0 {
			continue
		}
		// A TLS virtual host needs a certificate and key: its own, or
		// the [blastbeat] defaults.
		if v.Certificate == "" {
			v.Certificate = o.Certificate
		}
		if v.Key == "" {
			v.Key = o.Key
		}
		section := mainSection + ":" + v.Name
		given := func(key string) bool { return p.firstLine(p.vhostRaw[i], key) > 0 || p.firstLine(p.mainRaw, key) > 0 }
		if v.Certificate == "" && checkMissing && !given("certificate") {
			p.fail(v.BindSSL[0].Line, section, "certificate", ErrMissing, "bind-ssl needs a certificate (here or in [blastbeat])")
		}
		if v.Key == "" && checkMissing && !given("key") {
			p.fail(v.BindSSL[0].Line, section, "key", ErrMissing, "bind-ssl needs a key (here or in [blastbeat])")
		}
	}
}

// required records the required sections and keys that are missing. A
// key written with only bad values is not missing: its errors are
// already recorded.
func (p *parser) required() {
	o := &p.opts
	if p.mainLine == 0 {
		p.fail(0, "", "", ErrMissing, "no [blastbeat] section")
	} else if p.firstLine(p.mainRaw, "zmq") == 0 {
		p.fail(p.mainLine, mainSection, "zmq", ErrMissing, "at least one zmq endpoint is required")
	}
	if len(o.VHosts) == 0 {
		p.fail(0, "", "", ErrMissing, "at least one [blastbeat:HOST] section is required")
	}
	bind := p.firstLine(p.mainRaw, "bind") > 0
	for i, v := range o.VHosts {
		raw := p.vhostRaw[i]
		bind = bind || p.firstLine(raw, "bind") > 0 || p.firstLine(raw, "bind-ssl") > 0
		if p.firstLine(raw, "node") == 0 {
			p.fail(v.Line, mainSection+":"+v.Name, "node", ErrMissing, "at least one node is required")
		}
	}
	if !bind && p.mainLine > 0 {
		p.fail(p.mainLine, mainSection, "bind", ErrMissing, "at least one bind is required (in [blastbeat] or a virtual host)")
	}
}
