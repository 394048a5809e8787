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

	MaxHops               int // retries per request before 502
	MaxConnections        int // open client connections (more are refused)
	Limits                protocol.Limits
	MaxPendingOutput      int           // output held for one client that lags; over it the client is closed
	MaxPendingOutputTotal int64         // output held for all lagging clients together
	StallTimeout          time.Duration // a client that reads none of its held output for this long is closed
	CreditWindow          int           // response bytes granted ahead to a credit-speaking node
	MaxReadAhead          int           // pipelined bytes read ahead of the response in flight
	RetryBuffer           int           // request body bytes kept for retry/failover
	MaxWebSocketMessage   int           // largest WebSocket message, joined (1009 above)
	Workers               int           // event loops; 0: one per CPU but one, at least 1
	RingSize              int           // loops→bridge ring slots
	ZMQHWM                int           // libzmq high-water mark towards each node, messages
	SendTimeout           time.Duration // a message waits this long for a node at its high-water mark

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
	AllowTrace         bool // pass TRACE to the nodes (else 405)
}

// Defaults of the limits not set in Options.
const (
	DefaultPingFreq       = 3 * time.Second
	DefaultTimeout        = 60 * time.Second
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultShutdownGrace  = 10 * time.Second
	DefaultMaxHops        = 10
	DefaultMaxConnections = 100000
	// DefaultMaxPendingOutput is the output held for one client that
	// reads slower than its node writes (a node without credits): a few
	// MB absorb a fast node's burst to a normal client; beyond, the client
	// is closed as a slow reader, costing nobody else anything.
	DefaultMaxPendingOutput = 4 << 20
	// DefaultMaxPendingOutputTotal bounds that memory for all clients.
	DefaultMaxPendingOutputTotal = 256 << 20
	// DefaultCreditWindow is what a credit-speaking node may send ahead of
	// its client: 256 KiB keeps a 100 Mbit/s link busy at 20 ms RTT.
	DefaultCreditWindow = 256 << 10
	// DefaultMaxReadAhead is how many bytes of pipelined requests are
	// read while a response is in flight; then reading pauses.
	DefaultMaxReadAhead = 1 << 20
	DefaultRetryBuffer  = 1 << 20
	// DefaultMaxWebSocketMessage bounds the reassembly of one message.
	DefaultMaxWebSocketMessage = 1 << 20
	// DefaultStallTimeout is how long a client may read none of the
	// output held for it before it is closed (nginx's send_timeout).
	DefaultStallTimeout = 60 * time.Second
	// DefaultZMQHWM bounds libzmq's queue towards each node, in messages
	// (the queue from each node is zmqbridge.DefaultRcvHWM).
	DefaultZMQHWM = 256
	// maxInboxed bounds the reply bytes the bridge reads ahead of the
	// loops (every loop's inbox together); beyond it the bridge pauses
	// reading from nodes until the loops catch up.
	maxInboxed = 1 << 20
	// sweepEvery is the resolution of every timeout.
	sweepEvery = 250 * time.Millisecond
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
	if o.MaxPendingOutputTotal <= 0 {
		o.MaxPendingOutputTotal = DefaultMaxPendingOutputTotal
	}
	if o.CreditWindow <= 0 {
		o.CreditWindow = DefaultCreditWindow
	}
	if o.MaxReadAhead <= 0 {
		o.MaxReadAhead = DefaultMaxReadAhead
	}
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
