package node

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
)

// Serve runs a net/http Handler as a BlastBeat node: see "Serving a
// net/http Handler" in the package doc. The files serve_*.go hold its
// parts: the loop that owns the sockets (serve_loop.go), the environ →
// *http.Request mapping (serve_request.go), the request body
// (serve_body.go), the ResponseWriter (serve_writer.go) and WebSocket
// sessions (serve_websocket.go).

// Defaults of ServeConfig.
const (
	DefaultMaxConcurrent   = 256
	DefaultMaxWaiting      = 1024
	DefaultMaxBuffer       = 16 << 20
	DefaultMaxBufferTotal  = 256 << 20
	DefaultShutdownTimeout = 5 * time.Second
	DefaultIdleTimeout     = 5 * time.Minute
	DefaultProxyTimeout    = 30 * time.Second
	DefaultSendTimeout     = 5 * time.Second
	DefaultSendBacklog     = 256
)

// The loop looks for sessions to end (ServeConfig.IdleTimeout,
// ServeConfig.ProxyTimeout, ServeConfig.SendTimeout) every
// idleSweepEvery, or every quarter of a shorter timeout, but not more
// often than every minSweepEvery.
const (
	idleSweepEvery = time.Second
	minSweepEvery  = time.Millisecond
)

// serveLinger is how long the sockets keep trying to deliver what was
// sent last (the `end` and `retry` messages of a stop) once closed.
const serveLinger = time.Second

// ServeConfig configures Serve. Only Identity and Endpoints are required.
type ServeConfig struct {
	// Identity is the node name: the `node = NAME` of the virtual hosts
	// it serves (one name per process, see the package doc).
	Identity string
	// Endpoints are the proxies' `zmq` endpoints, one per proxy; the node
	// serves them all, each reply going to the proxy its request came
	// from. At least one.
	Endpoints []string
	// MaxConcurrent bounds the HTTP handlers running at once (default
	// DefaultMaxConcurrent). Requests beyond it wait, in arrival order,
	// for a handler to return (their bodies are buffered meanwhile); the
	// proxy's `timeout` (504) bounds the wait. WebSocket callbacks do not
	// count: each holds its session for its whole life.
	MaxConcurrent int
	// MaxWaiting bounds the requests that wait for a handler slot
	// (default DefaultMaxWaiting). A request beyond it is answered at
	// once with 503 Service Unavailable and Retry-After: 1, instead of
	// the queue, and the bodies it buffers, growing without bound while
	// the handlers are slow.
	MaxWaiting int
	// MaxBuffer bounds what one session holds that its handler has not
	// taken yet: request body bytes not read, WebSocket messages not
	// received (default DefaultMaxBuffer). The protocol has no flow
	// control from the proxy to a node, so a session over it fails: its
	// request body reads ErrBufferFull, the client gets 413 when no
	// response head went out yet, and the session is ended otherwise.
	MaxBuffer int
	// MaxBufferTotal bounds what all sessions hold together (default
	// DefaultMaxBufferTotal, at least MaxBuffer): MaxBuffer alone lets
	// MaxConcurrent + MaxWaiting uploads to handlers that do not read
	// hold gigabytes. Past it, the session holding the most fails as one
	// over MaxBuffer does, and what it held is freed.
	MaxBufferTotal int
	// WebSocket serves WebSocket sessions (a request with Upgrade:
	// websocket, which the proxy has already accepted: Serve needs the
	// proxy's default websocket-handshake = proxy; with = node the proxy
	// would wait for a 101 that Serve does not send). It runs on a
	// goroutine of its own for the session's life; when it returns the
	// session is closed. Nil: every WebSocket session is closed at once.
	WebSocket func(ws *WebSocket)
	// DisableCredits turns flow control off (see credit.go): by default
	// the node speaks credits, so a response goes at the pace of its
	// client and a handler's Write blocks while the client is behind.
	// Turn it off only for a proxy that predates credits, which would
	// never grant any.
	DisableCredits bool
	// IdleTimeout ends a session that waits on its proxy for this long:
	// its handler's response waits for credit, its handler is blocked
	// reading request body, or its handler returned before the request
	// body was all in (the rest is dropped as it comes), and no message
	// of the session came meanwhile: the time counts from the later of
	// the wait's start and the session's last message, so a handler that
	// was busy or quiet for long gets the whole of it once it waits
	// (default DefaultIdleTimeout; negative: never). The proxy then went
	// away (a restart forgets its sessions, and a lost `end` is never
	// sent again): the handler's context is cancelled and its reads and
	// writes fail with ErrSessionEnded, instead of it waiting for good
	// with its MaxConcurrent slot. A WebSocket session that only waits
	// for messages is not idle (ProxyTimeout ends it if its proxy is
	// gone). Keep it above the proxy's timeout and above what a slow
	// client takes to read half the proxy's credit-window (credit comes
	// back by halves): 128 KiB at 1 KiB/s is 2 minutes.
	IdleTimeout time.Duration
	// ProxyTimeout ends the sessions of a proxy that has sent nothing,
	// not even a ping, for this long (default DefaultProxyTimeout;
	// negative: never): it died, or the network between lost it. Their
	// handlers' contexts are cancelled, their body reads,
	// WebSocket.Receive and sends fail with ErrSessionEnded, and what the
	// node kept for them (credit, routes) is dropped; nothing is sent to
	// that proxy for them. The other proxies' sessions go on. A proxy
	// pings each of its nodes every ping-freq (3 s by default), however
	// idle (PROTOCOL.md, "Health"): keep ProxyTimeout several times above
	// the proxies' ping-freq. The default, 10 pings at the default
	// ping-freq, is long after the proxy took the node for dead (3 ×
	// ping-freq of silence) and failed its sessions over. A proxy that
	// restarts and pings again within ProxyTimeout cannot be told from
	// one that did not: of its old sessions, IdleTimeout ends those that
	// wait on it.
	ProxyTimeout time.Duration
	// SendTimeout ends a session whose proxy took none of its messages
	// for this long (default DefaultSendTimeout; negative: never). A
	// proxy that is stuck, or dead or unreachable without the node
	// knowing yet, takes what ZeroMQ's pipe to it holds (its high-water
	// mark, 1000 messages) and then nothing: the node never waits for it
	// (it goes on answering the other proxies' pings and serving their
	// sessions); the session's sends wait instead, and past SendTimeout
	// the session is ended as for IdleTimeout, its handler's writes
	// failing with ErrSessionEnded. The node's messages outside a
	// session (`end`, `retry`, its own 400 and 503 answers) wait for
	// such a proxy for SendTimeout too, and are then dropped.
	SendTimeout time.Duration
	// SendBacklog bounds, per proxy, the node's messages outside a
	// session that wait for a proxy that takes nothing (see SendTimeout;
	// default DefaultSendBacklog). Beyond it they are dropped, and the
	// count is logged.
	SendBacklog int
	// ShutdownTimeout bounds how long Serve lets requests in flight
	// finish once its context is done; what is left then is cut (default
	// DefaultShutdownTimeout). A handler that waits on its request's
	// context (a long poll) is cut at this deadline, not at the stop.
	ShutdownTimeout time.Duration
	// ErrorLog receives handler panics and the node's errors; nil means
	// the log package's standard logger.
	ErrorLog *log.Logger
}

// Errors of Serve's sessions.
var (
	// ErrSessionEnded is what writes, body reads and WebSocket sends
	// return once their session is over: the client went away (the
	// proxy's `end`), the node ended it, or Serve stopped.
	ErrSessionEnded = errors.New("node: session ended")

	// ErrBufferFull is what a request body read returns when more of the
	// body arrived than MaxBuffer while the handler did not read it, or
	// the session held the most when all of them went over
	// MaxBufferTotal; the session has failed. WebSocket.Receive returns
	// it the same way.
	ErrBufferFull = errors.New("node: session buffer full (ServeConfig.MaxBuffer, MaxBufferTotal)")

	// ErrHijack is what Hijack returns: the proxy owns the client's
	// connection, a node only has its session. WebSocket sessions are
	// served by ServeConfig.WebSocket instead. errors.Is(err,
	// http.ErrNotSupported) holds.
	ErrHijack = fmt.Errorf("node: %w: Hijack (the proxy owns the client connection; use ServeConfig.WebSocket)", http.ErrNotSupported)
)

// Serve connects to cfg.Endpoints as cfg.Identity and serves every
// request the proxies route to it with h, each on a goroutine of its own
// whose request context carries ctx's values, until ctx is done. Then it
// stops as net/http's Shutdown does: requests in flight finish (their
// contexts stay, their responses and bodies go on), requests whose
// handler had not started and new ones go back to the proxy with `retry`
// (for another node), WebSockets are closed with 1001; what is left after
// cfg.ShutdownTimeout is cut (its context cancelled, its session ended).
// Then Serve closes the sockets. It returns nil after a stop, or the
// error that ended it (a bad config, a socket that failed).
func Serve(ctx context.Context, cfg ServeConfig, h http.Handler) error {
	if h == nil {
		return errors.New("node: Serve with a nil Handler")
	}
	if len(cfg.Endpoints) == 0 {
		return errors.New("node: Serve with no endpoint")
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.MaxWaiting <= 0 {
		cfg.MaxWaiting = DefaultMaxWaiting
	}
	if cfg.MaxBuffer <= 0 {
		cfg.MaxBuffer = DefaultMaxBuffer
	}
	if cfg.MaxBufferTotal <= 0 {
		cfg.MaxBufferTotal = DefaultMaxBufferTotal
	}
	cfg.MaxBufferTotal = max(cfg.MaxBufferTotal, cfg.MaxBuffer)
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.ProxyTimeout == 0 {
		cfg.ProxyTimeout = DefaultProxyTimeout
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.SendBacklog <= 0 {
		cfg.SendBacklog = DefaultSendBacklog
	}
	if cfg.ErrorLog == nil {
		cfg.ErrorLog = log.Default()
	}
	zctx, err := zmq.NewContext()
	if err != nil {
		return err
	}
	n, err := dialIn(zctx, cfg.Identity, cfg.Endpoints)
	if err != nil {
		zctx.Term()
		return err
	}
	s := &server{cfg: cfg, h: h, n: n, zctx: zctx, ctx: ctx, sessions: map[string]*stream{}, live: map[*stream]struct{}{}, exclude: headExclude(),
		sweepEvery: sweepEvery(cfg), proxies: make([]proxyState, len(cfg.Endpoints)), out: make([]outQueue, len(cfg.Endpoints))}
	if err := s.open(); err != nil {
		s.closeSockets()
		return err
	}
	stopWake := context.AfterFunc(ctx, s.wake)
	defer stopWake()
	return s.run()
}

// server is one Serve call. The node, the receiving end of the wakeup
// socket and every field below "loop only" belong to the loop goroutine;
// handler goroutines reach it through enqueue.
type server struct {
	cfg ServeConfig
	h   http.Handler
	n   *Node
	// zctx is Serve's own ZeroMQ context (see dialIn).
	zctx *zmq.Context
	// exclude is headExclude's set, for http.Header.WriteSubset.
	exclude map[string]bool
	// ctx is Serve's: handler contexts derive from it, and its end
	// starts the stop.
	ctx context.Context

	// held counts the bytes every session's body and WebSocket hold
	// unread (MaxBufferTotal); changed with each size, by the loop and
	// the handlers.
	held atomic.Int64

	// mu guards the queue of operations from handler goroutines.
	mu        sync.Mutex
	ops       []*op
	signalled bool // a wakeup is on its way since ops was last taken
	closed    bool // the loop is gone: enqueue refuses

	// wakeMu guards wakeTx, the sending end of the inproc PAIR that
	// wakes the loop's poll; nil once closed.
	wakeMu sync.Mutex
	wakeTx *zmq.Socket

	// loop only.
	wakeRx   *zmq.Socket
	poller   *zmq.Poller
	sessions map[string]*stream   // by sid: each session's current request
	live     map[*stream]struct{} // handlers running, superseded ones too (cancelLive)
	running  int                  // HTTP handler goroutines
	sockets  int                  // WebSocket goroutines
	waiting  []*stream            // requests waiting for a handler slot, FIFO
	queued   int                  // the live ones among them (MaxWaiting)
	// refused counts the requests overloaded answered since
	// refusedLogged, when it last logged.
	refused       int
	refusedLogged time.Time
	stopping      bool
	deadline      time.Time     // the stop's end, once stopping
	now           time.Time     // when the loop last woke
	swept         time.Time     // the last sweep (sweepIdle, sweepProxies, sweepOut)
	sweepEvery    time.Duration // how often it sweeps; 0: never (sweepEvery)
	proxies       []proxyState  // by socket: what the sweeps saw of each proxy
	out           []outQueue    // by socket: what waits for room (serve_out.go)
}

// proxyState is what the sweeps know of one proxy (sweepProxies).
type proxyState struct {
	recvd uint64    // the Node's count of messages from it at the last sweep
	heard time.Time // the sweep that first saw that count
	gone  bool      // its sessions were ended for its silence, which goes on
}

// sweepEvery returns how often the loop sweeps for sessions to end:
// every idleSweepEvery, or a quarter of the shortest timeout where that
// is less; 0 when the timeouts are all off.
func sweepEvery(cfg ServeConfig) time.Duration {
	every := time.Duration(0)
	for _, d := range []time.Duration{cfg.IdleTimeout, cfg.ProxyTimeout, cfg.SendTimeout} {
		if d > 0 {
			every = max(min(cmp.Or(every, idleSweepEvery), d/4), minSweepEvery)
		}
	}
	return every
}

// open sets the sockets up: timeouts (a send never waits: see
// serve_out.go), credits, the wakeup pair, the poller; and tells each
// proxy at once that the node is there (and speaks credits) with an
// unsolicited pong, so that no session reaches it while the proxy still
// takes it for a node without credits.
func (s *server) open() error {
	if !s.cfg.DisableCredits {
		s.n.EnableCredits()
	}
	if err := errors.Join(s.n.SetRecvTimeout(0), s.n.SetSendTimeout(0)); err != nil {
		return err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	ep := "inproc://blastbeat-node-serve-" + hex.EncodeToString(id[:])
	rx, err := s.zctx.NewSocket(zmq.PAIR)
	if err != nil {
		return err
	}
	s.wakeRx = rx
	tx, err := s.zctx.NewSocket(zmq.PAIR)
	if err != nil {
		return err
	}
	s.wakeTx = tx
	if err := errors.Join(rx.SetLinger(0), tx.SetLinger(0), rx.Bind(ep), tx.Connect(ep)); err != nil {
		return err
	}
	s.poller = zmq.NewPoller()
	s.poller.Add(rx, zmq.POLLIN)
	now := time.Now()
	for i := range s.proxies {
		s.proxies[i].heard = now
	}
	pong := s.n.PongBody()
	for i, sock := range s.n.Sockets() {
		s.out[i].pollID = s.poller.Add(sock, zmq.POLLIN)
		// A DEALER queues it until its connection is up.
		if _, err := sock.SendMessage("", "pong", pong); err != nil {
			s.logf("node: serve: announcing to a proxy: %v", err)
		}
	}
	return nil
}

// close ends the loop's side: operations still queued fail, enqueue
// refuses from now on, the sockets close (what was sent last still has
// serveLinger to go out).
func (s *server) close() {
	s.mu.Lock()
	s.closed = true
	ops := s.ops
	s.ops = nil
	s.mu.Unlock()
	for _, o := range ops {
		o.finish(ErrSessionEnded)
	}
	s.closeSockets()
}

// closeSockets closes every socket and terminates the context, which
// waits (up to serveLinger) until what was sent last went out.
func (s *server) closeSockets() {
	s.wakeMu.Lock()
	if s.wakeTx != nil {
		s.wakeTx.Close()
		s.wakeTx = nil
	}
	s.wakeMu.Unlock()
	if s.wakeRx != nil {
		s.wakeRx.Close()
	}
	for _, sock := range s.n.Sockets() {
		_ = sock.SetLinger(serveLinger)
	}
	s.n.Close()
	if err := s.zctx.Term(); err != nil {
		s.logf("node: serve: closing: %v", err)
	}
}

// dialIn is Dial with the sockets in zctx, Serve's own ZeroMQ context:
// terminating it at the stop waits until the last messages (the stop's
// `end` and `retry`) went out, where sockets of the shared default
// context, which nobody terminates, would lose them to a process that
// exits at once.
func dialIn(zctx *zmq.Context, identity string, endpoints []string) (*Node, error) {
	n := newNode()
	for i, ep := range endpoints {
		if slices.Contains(endpoints[:i], ep) {
			return nil, fmt.Errorf("node: endpoint %s given twice", ep)
		}
		sock, err := zctx.NewSocket(zmq.DEALER)
		if err != nil {
			n.Close()
			return nil, err
		}
		n.socks = append(n.socks, sock)
		if err := errors.Join(sock.SetIdentity(identity), sock.SetLinger(0)); err != nil {
			n.Close()
			return nil, err
		}
		if err := sock.Connect(ep); err != nil {
			n.Close()
			return nil, fmt.Errorf("node: connect %s: %w", ep, err)
		}
	}
	n.ready()
	return n, nil
}

// enqueue hands an operation to the loop; false once the loop is gone.
// Safe for concurrent use.
func (s *server) enqueue(o *op) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.ops = append(s.ops, o)
	wake := !s.signalled
	s.signalled = true
	s.mu.Unlock()
	if wake {
		s.wake()
	}
	return true
}

// wake makes the loop's poll return. Safe for concurrent use.
func (s *server) wake() {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if s.wakeTx != nil {
		_, _ = s.wakeTx.Send("", zmq.DONTWAIT)
	}
}

// takeOps returns the queued operations, in order.
func (s *server) takeOps() []*op {
	s.mu.Lock()
	defer s.mu.Unlock()
	ops := s.ops
	s.ops = nil
	s.signalled = false
	return ops
}

func (s *server) logf(format string, args ...any) {
	s.cfg.ErrorLog.Printf(format, args...)
}
