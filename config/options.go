package config

import "time"

// Bind is one listen address with where it was configured.
type Bind struct {
	// Addr is host:port, e.g. "0.0.0.0:8080" or "[::1]:8080". A bare IPv6
	// address with a port ("fe80::1%eth0:8080", split at the last colon)
	// is normalised to its bracketed form "[fe80::1%eth0]:8080".
	Addr string
	// Line is the line of the file the address was read from.
	Line int
}

// VHost is one [blastbeat:HOST[:PORT]] section.
type VHost struct {
	// Name is the lower-cased "host" or "host:port", or "*" for the
	// catch-all virtual host.
	Name string
	// Nodes are the ZeroMQ identities of the backends serving this
	// virtual host (key node, repeatable, at least one; duplicates are
	// dropped).
	Nodes []string
	// Binds are extra plain listeners for this virtual host (key bind,
	// repeatable). An address may also appear in Options.Binds or in
	// another virtual host; the listener is then shared.
	Binds []Bind
	// BindSSL are extra TLS listeners for this virtual host (key
	// bind-ssl, repeatable).
	BindSSL []Bind
	// Certificate is the TLS certificate file (key certificate).
	Certificate string
	// Key is the TLS private key file (key key).
	Key string
	// Format is how request headers are sent to the backends: "uwsgi"
	// (the default) or "headers".
	Format string
	// WebSocketProtocols are the accepted WebSocket subprotocols (key
	// websocket-protocols, a comma separated list).
	WebSocketProtocols []string
	// WebSocketHandshake is who answers a WebSocket opening handshake:
	// "proxy" (the default, as the original: the proxy answers 101 at
	// once) or "node" (the node's response decides: 101 accepts, any
	// other status is sent to the client) (websocket-handshake).
	WebSocketHandshake string
	// Timeout bounds the wait for a backend's response head; 0 inherits
	// Options.Timeout.
	Timeout time.Duration
	// ResponseIdleTimeout bounds a node's silence in a response it began
	// (response-idle-timeout); 0 inherits Options.ResponseIdleTimeout.
	ResponseIdleTimeout time.Duration
	// MaxBody is the largest request body accepted in bytes; 0 inherits
	// Options.MaxBody.
	MaxBody int64
	// Aliases are more Host names served by this virtual host (alias,
	// repeatable, as in the original), lower-cased. A name another
	// virtual host has (as its Name or an alias) is an ErrDuplicate; one
	// this virtual host already has is dropped.
	Aliases []string
	// AllowTrace passes TRACE requests to the nodes (allow-trace, default
	// false: TRACE is answered 405 by the proxy).
	AllowTrace bool
	// HTTPSRedirect answers plain requests for a virtual host served only
	// on its own bind-ssl listeners with a 308 to https:// (https-redirect,
	// default true; false answers 404 like an unknown host).
	HTTPSRedirect bool
	// Line is the line of the section header.
	Line int
}

// Ignored is a key of the original project that this version accepts
// and ignores; the caller warns about it.
type Ignored struct {
	Section, Key string
	Line         int
}

// Options is the whole configuration. The comment of each field names its
// key in the [blastbeat] section and its default.
type Options struct {
	// File is the name the options were loaded from.
	File string
	// Binds are the plain listeners shared by all virtual hosts (bind,
	// repeatable).
	Binds []Bind
	// ZMQ are the ZeroMQ router endpoints (zmq, repeatable), each
	// starting with tcp://, ipc:// or inproc://.
	ZMQ []string
	// PingFreq is how often backends are pinged (ping-freq, default 3s).
	PingFreq time.Duration
	// MaxHops bounds the hops of a request (max-hops, default 10).
	MaxHops int
	// Timeout bounds the wait for a backend's response head (timeout,
	// default 60s).
	Timeout time.Duration
	// ResponseIdleTimeout ends a response whose node, once the head went
	// out, sends nothing more of it for this long while the client is not
	// what holds it up (response-idle-timeout, default 5 min; 0: never):
	// the HTTP/1.x connection closes, the HTTP/2 stream is reset, and the
	// node gets `end`.
	ResponseIdleTimeout time.Duration
	// UID is the user to run as, a name or a number (uid, default none).
	UID string
	// GID is the group to run as, a name or a number (gid, default none).
	GID string
	// Daemon is accepted for compatibility (daemon); the caller warns.
	Daemon bool
	// Certificate is the default TLS certificate file (certificate).
	Certificate string
	// Key is the default TLS private key file (key).
	Key string
	// MaxConnections bounds the open client connections
	// (max-connections, default 100000).
	MaxConnections int
	// MaxHeaderSize bounds a request head in bytes (max-header-size,
	// default 16384, 256 to 65535).
	MaxHeaderSize int
	// MaxURI bounds the request URI in bytes (max-uri, default 8192, at
	// most MaxHeaderSize).
	MaxURI int
	// MaxBody bounds a request body in bytes (max-body, default 1 GiB).
	MaxBody int64
	// MaxWebSocketMessage bounds a WebSocket message in bytes
	// (max-websocket-message, default 1 MiB).
	MaxWebSocketMessage int
	// WebSocketMessageTimeout closes a WebSocket (1008) whose client
	// began a message (a frame, or a fragmented message) and did not
	// complete it this long after, whatever it sent meanwhile: what it
	// began is held in memory until then (websocket-message-timeout,
	// default 60 s).
	WebSocketMessageTimeout time.Duration
	// MaxPendingOutput bounds the output held for one client that reads
	// slower than its node writes; over it the client is closed as a slow
	// reader (max-pending-output, default 4 MiB).
	MaxPendingOutput int
	// MaxPendingOutputTotal bounds the output held for all clients
	// together (max-pending-output-total, default 256 MiB).
	MaxPendingOutputTotal int64
	// CreditWindow is how many response bytes a credit-speaking node may
	// send ahead of its client (credit-window, default 256 KiB).
	CreditWindow int
	// MaxReadAhead is how many bytes of pipelined requests are read while
	// a response is in flight before reading pauses, how many bytes of
	// an HTTP/2 connection's input may wait for stuck nodes before it
	// pauses, and how much its WebSocket streams may hold of messages in
	// part before all but one wait (max-read-ahead, default 1 MiB).
	MaxReadAhead int
	// TLSHandshakeTimeout bounds a TLS handshake (tls-handshake-timeout,
	// default 10s).
	TLSHandshakeTimeout time.Duration
	// MaxTLSHandshakes bounds the TLS handshakes in flight (each loop
	// runs its share, one at least: below the number of loops, that
	// number is the bound); more connections are accepted and wait unread
	// until a slot frees or tls-handshake-timeout closes them
	// (max-tls-handshakes, default 1024).
	MaxTLSHandshakes int
	// TLSHandshakeIdleTimeout: while connections wait for a handshake
	// slot, a handshake whose client has sent nothing for this long
	// gives its slot up and is closed, so that sockets that send a byte
	// and go quiet cannot hold every slot for tls-handshake-timeout
	// (tls-handshake-idle-timeout, default 2s).
	TLSHandshakeIdleTimeout time.Duration
	// MaxClientHello caps a TLS ClientHello's length (max-client-hello,
	// default 16 KiB): crypto/tls takes one of up to 64 KiB and keeps the
	// buffer it gathered it in for the connection's life. Browsers' are
	// about 2 KiB, post-quantum key shares included (from 4 KiB). A HelloRetryRequest's
	// second hello shares a bound of two of these and 4 KiB with the first.
	MaxClientHello int
	// HTTP2 serves HTTP/2: h2 through ALPN on bind-ssl listeners and h2c
	// with prior knowledge on plain ones (http2, default true).
	HTTP2 bool
	// HTTP2MaxStreams is SETTINGS_MAX_CONCURRENT_STREAMS
	// (http2-max-streams, default 100).
	HTTP2MaxStreams int
	// HTTP2MaxResets bounds a client's RST_STREAMs per 250 ms (rapid
	// reset, CVE-2023-44487; http2-max-resets, default 200).
	HTTP2MaxResets int
	// HTTP2MaxControlFrames bounds a client's SETTINGS, PING, PRIORITY,
	// WINDOW_UPDATE and empty DATA frames per 250 ms (floods;
	// http2-max-control-frames, default 2000). A WINDOW_UPDATE that gives
	// back at least 1 KiB of window the proxy's DATA used does not
	// count: a fast download is no flood.
	HTTP2MaxControlFrames int
	// HTTP2HeaderTableSize is the HPACK dynamic table a client's encoder
	// may use (SETTINGS_HEADER_TABLE_SIZE; http2-header-table-size,
	// default 4096, the RFC 7541 default).
	HTTP2HeaderTableSize int
	// HTTP2MaxHeaderBlock bounds one compressed field block on the wire,
	// HEADERS and every CONTINUATION with their frame headers (the
	// CONTINUATION flood, CVE-2024-27316; http2-max-header-block, default
	// 64 KiB). The decoded list is bounded by max-header-size.
	HTTP2MaxHeaderBlock int
	// HTTP2StreamWindow is what an HTTP/2 client may send of a request
	// body ahead of what the proxy gave back (a WINDOW_UPDATE after the
	// request's HEADERS; WebSocket streams keep HTTP/2's 65535;
	// http2-stream-window, default 512 KiB, at least 65535, at most half
	// of max-read-ahead): an upload runs at most one window per round
	// trip. The proxy gives it back as it forwards the body, so it holds
	// up to a window only for a stuck node; what waits so is bounded per
	// connection by max-read-ahead, past which the connection is not
	// read (so one body alone does not stop its connection's others).
	HTTP2StreamWindow int
	// HTTP2ConnectionWindow is the same for all of a connection's streams
	// together (http2-connection-window, default 4 MiB, at least 65535).
	HTTP2ConnectionWindow int
	// ReusePort gives every event loop a listening socket of its own
	// (SO_REUSEPORT): the kernel spreads new connections over the loops,
	// and no loop hands them on (reuse-port, default false: with it, a
	// second process binding the same port with SO_REUSEPORT would share
	// the traffic instead of failing to start).
	ReusePort bool
	// MaxNodes bounds the node identities the proxy knows, those a
	// reload adds included (max-nodes, default 4096).
	MaxNodes int
	// Stats is the address of the metrics listener (/metrics in the
	// Prometheus text format, /status as JSON); "" is off (stats,
	// default off). A non-loopback address needs StatsPublic.
	Stats string
	// StatsPublic allows Stats on an address that is not loopback
	// (stats-public, default false).
	StatsPublic bool
	// StatsMaxConnections bounds the stats listener's connections open at
	// once, an eighth of them (at least one from 2 up) kept for probes
	// (/healthz, /readyz: a connection taken while only those are free is
	// served within 2 s and gets 503 on any other path); more wait in its
	// listen backlog (stats-max-connections, default 64).
	StatsMaxConnections int
	// StatsIdleTimeout closes a stats connection idle between requests
	// this long (stats-idle-timeout, default 30 s).
	StatsIdleTimeout time.Duration
	// AccessLog is where request lines go: "stderr", "stdout", a file path, or ""
	// for none (access-log, default off: "off").
	AccessLog string
	// AccessLogFormat is "combined" (nginx's, with BlastBeat's fields
	// after it) or "json" (access-log-format, default combined).
	AccessLogFormat string
	// AccessLogBuffer bounds the lines an event loop holds for the access
	// log's writer; past it (the destination is slower than the traffic)
	// lines are dropped and counted (access-log-buffer, default 16 MiB
	// per loop).
	AccessLogBuffer int
	// NodeReadAhead bounds the reply bytes the bridges read from the
	// nodes ahead of the event loops (all loops together); past it the
	// bridges stop reading until the loops catch up (node-read-ahead,
	// default 1 MiB).
	NodeReadAhead int
	// RetryBuffer is how many bytes of a request body are kept to retry it
	// on another node (retry-buffer, default 1 MiB).
	RetryBuffer int
	// HeaderTimeout bounds the reading of a request head
	// (header-timeout, default 10s).
	HeaderTimeout time.Duration
	// IdleTimeout closes idle client connections (idle-timeout, default
	// 120s, 0 for none), counted from the last byte the client sent or
	// the socket took for it.
	IdleTimeout time.Duration
	// TCPKeepAlive turns on TCP keep-alive on client connections: a
	// connection idle this long gets probes, every fifth of it, and is
	// closed after five unanswered (tcp-keepalive, default 2 min, 0 for
	// off). It finds clients gone without a FIN (a host switched off, a
	// NAT entry dropped) on connections no timeout closes, such as quiet
	// WebSockets, without closing a live idle one.
	TCPKeepAlive time.Duration
	// ShutdownGrace is how long shutdown waits for requests in flight
	// (shutdown-grace, default 10s).
	ShutdownGrace time.Duration
	// ShutdownDelay is how long the proxy goes on serving, new
	// connections included, once a signal (SIGTERM, SIGINT; not the
	// Emperor's stop) told it to stop, with /readyz answering 503, before
	// its graceful stop begins: the time a load balancer takes to stop
	// sending it traffic (shutdown-delay, default 0: none, at most 10
	// min). A second SIGTERM or SIGINT ends it early.
	ShutdownDelay time.Duration
	// Workers is the number of event loops (workers, default 0: one per
	// CPU but one, at least 1; the CPUs are GOMAXPROCS, which follows a
	// container's CPU limit).
	Workers int
	// RingSize is the capacity in messages of the ring from the event
	// loops to ZeroMQ (ring-size, default 65536, a power of two of at
	// least 1024).
	RingSize int
	// LogFormat is "text" (the default) or "json" (log-format).
	LogFormat string
	// LogLevel is "debug", "info" (the default), "warn" or "error"
	// (log-level).
	LogLevel string
	// LogBuffer bounds the log lines waiting for stderr: the event loops
	// never wait for it (a stalled journald or container log pipe);
	// past it lines are dropped, and their count logged once stderr
	// takes lines again (log-buffer, default 1 MiB, at least 64 KiB).
	LogBuffer int
	// SendTimeout is how long a message may wait for a node stuck at its
	// ZeroMQ high-water mark before it is given up (send-timeout, default
	// 5s).
	SendTimeout time.Duration
	// ZMQHWM is the ZeroMQ high-water mark towards each node, in messages
	// (zmq-hwm, default 256).
	ZMQHWM int
	// ZMQRcvHWM is the ZeroMQ high-water mark from each node, in
	// messages: what libzmq reads ahead of the bridge, and what waits in
	// the proxy while the loops lag before TCP pushes back on the node
	// (times the messages' size: 8 MiB per node with 64 KiB messages)
	// (zmq-rcv-hwm, default 128).
	ZMQRcvHWM int
	// ZMQMaxMessage bounds a message from a node, in bytes per frame
	// (ZMQ_MAXMSGSIZE): libzmq disconnects a peer that sends a bigger one
	// before holding it (zmq-max-message, default 64 MiB).
	ZMQMaxMessage int64
	// ZMQQueueBytes bounds the request body bytes the event loops have
	// handed the ZeroMQ bridge and libzmq has not taken yet, and the
	// bytes held for one node at its high-water mark; past it the
	// clients whose bodies wait stop being read. It also bounds the bytes
	// of the buffers lent to libzmq uncopied (zmq-queue-bytes, default
	// 2 MiB).
	ZMQQueueBytes int64
	// ZMQIOThreads is the number of libzmq I/O threads behind the ROUTER
	// (zmq-io-threads, default 1, at most MaxZMQIOThreads). Each node's
	// connection is served by one of them, the least loaded when it
	// connects: more than one spreads several nodes' traffic over cores,
	// and does nothing for a single node.
	ZMQIOThreads int
	// ZMQBridges is the number of ZeroMQ bridges (zmq-bridges, default 1,
	// at most MaxZMQBridges): each a goroutine with its own ROUTER behind
	// the same endpoints, all in one libzmq context of ZMQBridges ×
	// ZMQIOThreads I/O threads. The kernel spreads the nodes' connections
	// over the ROUTERs (SO_REUSEPORT on each tcp:// endpoint; an ipc://
	// one is the first bridge's), libzmq over the I/O threads (the least
	// loaded), and each node's messages go through the bridge its
	// connection is on. More than one lifts the one-bridge ceiling on
	// many cores with several nodes.
	ZMQBridges int
	// ZMQRebalance, with ZMQBridges above 1, is how many nodes'
	// connections in a row may be shut during their handshake for landing
	// on a bridge with more connections than another, so that the node
	// reconnects and the kernel places it anew (zmq-rebalance, default
	// 32, at most MaxZMQRebalance; 0: off, the kernel's hash alone places
	// them). Nodes on libzmq before 4.0 (ZMTP 1.0, 2.0) need 0: libzmq
	// takes none of them on a socket that asks its ZAP handler, which the
	// rebalancing needs.
	ZMQRebalance int
	// ZMQBusyPoll is how long each bridge, its work done, keeps polling
	// for more before it sleeps (zmq-busy-poll, default 0: off; at most
	// MaxZMQBusyPoll). Waking a sleeping thread costs tens of microseconds
	// on a virtual machine; polling spends CPU to save it, as HAProxy's
	// busy-polling does: one connection's requests answer sooner, and the
	// bridge runs at up to a whole core while requests keep coming.
	ZMQBusyPoll time.Duration
	// StallTimeout is how long a client may read none of the output held
	// for it before it is closed (stall-timeout, default 60s).
	StallTimeout time.Duration
	// LingeringTimeout and LingeringTime bound a lingering close, as
	// nginx's directives of the same names do: after a connection's last
	// output, what its client still sends is read and dropped until it
	// closes, or until it sends nothing for LingeringTimeout while the
	// kernel holds no output for it (lingering-timeout, default 2s), and
	// for LingeringTime at most (lingering-time, default 30s).
	LingeringTimeout time.Duration
	LingeringTime    time.Duration
	// EmperorHeartbeat is how often a heartbeat is sent to the uWSGI
	// Emperor when running as its vassal (emperor-heartbeat, default 0:
	// none; else at least 10ms).
	EmperorHeartbeat time.Duration
	// Ignored lists the original's obsolete keys found (sessions, cache).
	Ignored []Ignored
	// VHosts are the virtual hosts in file order.
	VHosts []VHost
}

// Defaults returns Options with every default filled in and no binds,
// endpoints or virtual hosts.
func Defaults() Options {
	return Options{
		PingFreq:                3 * time.Second,
		MaxHops:                 10,
		Timeout:                 60 * time.Second,
		MaxConnections:          100000,
		MaxHeaderSize:           16384,
		MaxURI:                  8192,
		MaxBody:                 1 << 30,
		MaxWebSocketMessage:     1 << 20,
		WebSocketMessageTimeout: 60 * time.Second,
		MaxPendingOutput:        4 << 20,
		MaxPendingOutputTotal:   256 << 20,
		CreditWindow:            256 << 10,
		MaxReadAhead:            1 << 20,
		TLSHandshakeTimeout:     10 * time.Second,
		TLSHandshakeIdleTimeout: 2 * time.Second,
		MaxTLSHandshakes:        1024,
		MaxClientHello:          16 << 10,
		HTTP2:                   true,
		AccessLogFormat:         "combined",
		AccessLogBuffer:         16 << 20,
		NodeReadAhead:           1 << 20,
		MaxNodes:                4096,
		StatsMaxConnections:     64,
		StatsIdleTimeout:        30 * time.Second,
		HTTP2MaxStreams:         100,
		HTTP2MaxResets:          200,
		HTTP2MaxControlFrames:   2000,
		HTTP2HeaderTableSize:    4096,
		HTTP2MaxHeaderBlock:     64 << 10,
		HTTP2StreamWindow:       512 << 10,
		HTTP2ConnectionWindow:   4 << 20,
		RetryBuffer:             1 << 20,
		HeaderTimeout:           10 * time.Second,
		IdleTimeout:             120 * time.Second,
		TCPKeepAlive:            2 * time.Minute,
		ShutdownGrace:           10 * time.Second,
		RingSize:                65536,
		LogFormat:               "text",
		LogLevel:                "info",
		LogBuffer:               1 << 20,
		StallTimeout:            60 * time.Second,
		LingeringTimeout:        2 * time.Second,
		LingeringTime:           30 * time.Second,
		SendTimeout:             5 * time.Second,
		ResponseIdleTimeout:     5 * time.Minute,
		ZMQHWM:                  256,
		ZMQRcvHWM:               128,
		ZMQMaxMessage:           64 << 20,
		ZMQQueueBytes:           2 << 20,
		ZMQIOThreads:            1,
		ZMQBridges:              1,
		ZMQRebalance:            32,
	}
}
