package server

import (
	"log/slog"
	"time"

	"github.com/blastbeat/blastbeat/protocol"
)

// Options configure a Server. They are values: the caller builds them
// (cmd/blastbeat from the .ini file) and the server never changes them.
type Options struct {
	Binds []string // listen addresses, host:port
	ZMQ   []string // ROUTER endpoints

	PingFreq      time.Duration // node ping period
	Timeout       time.Duration // response head deadline (504)
	HeaderTimeout time.Duration // request head deadline (408)
	IdleTimeout   time.Duration // keep-alive idle close; 0: never
	ShutdownGrace time.Duration // how long SIGTERM waits for responses

	MaxHops             int // retries per request before 502
	MaxConnections      int // open client connections (more are refused)
	Limits              protocol.Limits
	MaxPendingOutput    int           // per-connection output buffered before reading from nodes pauses
	StallTimeout        time.Duration // how long one lagging client may pause reading from nodes
	RetryBuffer         int           // request body bytes kept for retry/failover
	MaxWebSocketMessage int           // largest WebSocket message, joined (1009 above)
	Workers             int           // event loops; 0: one per CPU but one, at least 1
	RingSize            int           // loops→bridge ring slots
	ZMQHWM              int           // libzmq high-water mark towards each node, messages
	SendTimeout         time.Duration // a message waits this long for a node at its high-water mark

	VHosts []VHost
	Logger *slog.Logger
}

// VHost configures one virtual host.
type VHost struct {
	Name               string   // lower-case host, host:port or "*"
	Aliases            []string // more lower-case Host names
	Nodes              []string // node identities
	Format             string   // "uwsgi" (default) or "headers"
	WebSocketProtocols []string // subprotocols the vhost's nodes speak
	Timeout            time.Duration
	MaxBody            int64
}

// Defaults of the limits not set in Options.
const (
	DefaultPingFreq         = 3 * time.Second
	DefaultTimeout          = 60 * time.Second
	DefaultHeaderTimeout    = 10 * time.Second
	DefaultShutdownGrace    = 10 * time.Second
	DefaultMaxHops          = 10
	DefaultMaxConnections   = 100000
	DefaultMaxPendingOutput = 1 << 20
	DefaultRetryBuffer      = 1 << 20
	// DefaultMaxWebSocketMessage bounds the reassembly of one message.
	DefaultMaxWebSocketMessage = 1 << 20
	// DefaultStallTimeout bounds how long one client that does not read
	// its output may hold up every node's replies (ZeroMQ has no
	// per-session flow control, so the proxy pauses reading from nodes
	// while a client's output is over MaxPendingOutput); after it the
	// client is closed as a slow reader.
	DefaultStallTimeout = 2 * time.Second
	// DefaultZMQHWM bounds libzmq's queue towards each node, in messages
	// (the queue from each node is zmqbridge.DefaultRcvHWM).
	DefaultZMQHWM = 256
	// maxInboxed bounds the reply bytes the bridge reads ahead of the
	// loops (every loop's inbox together); beyond it the bridge pauses
	// reading from nodes until the loops catch up.
	maxInboxed = 1 << 20
	// ringWait is how long a loop blocks on a full ring before it fails
	// the session with 503.
	ringWait = 2 * time.Second
	// sweepEvery is the resolution of every timeout.
	sweepEvery = 250 * time.Millisecond
	// maxPipelined bounds the bytes a client may send ahead while its
	// previous response is still in flight.
	maxPipelined = 1 << 20
)

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.PingFreq, DefaultPingFreq)
	def(&o.Timeout, DefaultTimeout)
	def(&o.HeaderTimeout, DefaultHeaderTimeout)
	def(&o.ShutdownGrace, DefaultShutdownGrace)
	if o.MaxHops <= 0 {
		o.MaxHops = DefaultMaxHops
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MaxPendingOutput <= 0 {
		o.MaxPendingOutput = DefaultMaxPendingOutput
	}
	def(&o.StallTimeout, DefaultStallTimeout)
	if o.MaxWebSocketMessage <= 0 {
		o.MaxWebSocketMessage = DefaultMaxWebSocketMessage
	}
	if o.RetryBuffer <= 0 {
		o.RetryBuffer = DefaultRetryBuffer
	}
	if o.ZMQHWM <= 0 {
		o.ZMQHWM = DefaultZMQHWM
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}
