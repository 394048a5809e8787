// Package server runs BlastBeat's client side: gnet event loops that own
// the client connections and their sessions, parse requests, and apply
// the nodes' replies, and the glue to the ZeroMQ bridge.
//
// A connection (conn.go) has a transport (transport.go: the gnet.Conn, or
// TLS over it in transport_tls.go), a protocol machine (machine.go: http1
// in http1.go and reply.go, wsMachine in websocket.go, swapped at the
// upgrade) and, for HTTP/1.x, one stream (stream.go: one exchange with
// one node). Listeners and their virtual hosts are in listener.go.
//
// Concurrency: every conn and loop field marked "owned by the loop" is
// touched only on that loop's goroutine (gnet callbacks and runnables
// given to EventLoop.Execute). The bridge goroutine reaches a loop only
// through its inbox (a mutex-guarded slice; the inbox mutex is a leaf
// lock, nothing is locked while holding it) and EventLoop.Execute.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
	"github.com/blastbeat/blastbeat/zmqbridge"
)

// Server is one running proxy.
type Server struct {
	// Immutable after New.
	// epoch is when New ran, with the monotonic reading: stamp counts
	// from it.
	epoch     time.Time
	epochNS   int64 // epoch's unix ns
	opts      Options
	given     config.Options  // the configuration as given (Reload compares)
	limits    protocol.Limits // the request parser's
	deadAfter time.Duration   // a node silent this long is dead (3 × ping-freq)
	loops     []*loop

	lns      atomic.Pointer[listeners] // the listen addresses: swapped by Reload
	rt       atomic.Pointer[routing]   // vhosts, nodes, listener use: swapped by Reload
	adding   atomic.Pointer[routing]   // the routing a Reload is publishing, from the bridges' AddIdentities to its Store
	reloadMu sync.Mutex                // one Reload at a time

	// Set once in Start/OnBoot.
	bridges  []*zmqbridge.Bridge // Stop and Stats; one unless zmq-bridges
	handlers []*bridgeHandler    // bridges[k]'s is handlers[k]; [0] exists from New
	maxNodes int                 // identities the bridges may know (max-nodes)
	ring     ringSender          // the loops' sends: the bridge(s), or a test's fake
	eng      gnet.Engine
	booted   chan struct{}
	ran      chan error

	loopMu   sync.Mutex // guards loopByEL writes; leaf lock
	loopByEL sync.Map   // gnet.EventLoop → *loop

	// Shared (atomic).
	draining     atomic.Bool
	leaving      atomic.Bool                // told to stop, serving on for shutdown-delay
	pendingTotal atomic.Int64               // output held for clients that lag, all conns
	holders      atomic.Int64               // connections holding output (conn.holding)
	inboxed      atomic.Int64               // replies posted to loops, not yet applied (inboxCost)
	bufs         bufpool.Pool               // request heads and bodies on their way to the bridge
	clock        atomic.Int64               // unix ns, refreshed every sweepEvery: see now
	heard        atomic.Pointer[heardClock] // nodes' silence is judged on it (deaf.go)
	deafMu       sync.Mutex                 // one heard-clock edge at a time
	httpDate     atomic.Pointer[[]byte]     // the Date field value, refreshed each second
	dateSec      atomic.Int64               // the second httpDate names
	conns        atomic.Int64
	stats        Stats
	rejects      rejections
	served       atomic.Bool    // a first response was completed (Options.FirstRequest)
	alog         *accessLog     // nil: no access log
	instMu       sync.Mutex     // guards instances: every bridge's pongs
	instances    []nodeInstance // by node index
	done         chan struct{}
}

// defaultWorkers is the event loops for procs CPUs and bridges ZeroMQ
// bridges: one per CPU but one per bridge (which it keeps busy), at
// least 1. procs is GOMAXPROCS, which
// (since Go 1.25) honours a container's CPU limit: runtime.NumCPU counts
// the host's cores, 63 loops for a sidecar limited to 2 CPUs on a
// 64-core host.
func defaultWorkers(procs, bridges int) int { return max(1, procs-max(1, bridges)) }

// Workers is the number of event loops the server runs (Options.Workers,
// or its default).
func (s *Server) Workers() int { return s.opts.Workers }

// loopAccept reports whether the event loops accept for themselves (gnet
// patch 11): with one loop, where a main reactor would only hand it every
// connection, a thread wake-up each. Several loops keep the reactor,
// which deals connections round-robin; loops accepting for themselves
// would get them by who is idle, and a box of mostly idle connections
// would pile them on the first loop.
func (s *Server) loopAccept() bool { return s.opts.Workers == 1 }

// Pollers is the number of goroutines that wait for work blocked in
// epoll_wait: the event loops, gnet's main reactor where it runs (several
// loops, without reuse-port), and the ZeroMQ bridges.
func (s *Server) Pollers() int {
	n := s.opts.Workers + max(1, s.opts.ZMQBridges)
	if !s.loopAccept() && !s.opts.ReusePort {
		n++
	}
	return n
}

// New checks opts and builds the server; Start runs it.
func New(opts Options) (*Server, error) {
	given := opts.Options
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	workers := opts.Workers
	if workers <= 0 {
		// Each bridge goroutine keeps a core busy under load (and libzmq
		// an I/O thread): one loop per remaining core. More loops than
		// that queue behind each other: on 2 cores, 2 loops against 1
		// (bench, interleaved) gave WebSocket echo 13-21% more messages
		// but cost a new connection 7 us more proxy CPU, and one
		// connection, POST and stream some of their rate.
		workers = defaultWorkers(runtime.GOMAXPROCS(0), opts.ZMQBridges)
	}
	if workers > session.MaxLoops {
		workers = session.MaxLoops
	}
	opts.Workers = workers
	// A credit window wider than max-pending-output would let a client
	// that reads nothing hold more than its cap, and be closed (or its
	// HTTP/2 stream reset) for output its node was allowed to send.
	opts.CreditWindow = min(opts.CreditWindow, opts.MaxPendingOutput)

	lns, err := newListeners(&opts, nil)
	if err != nil {
		return nil, err
	}
	rt, _, err := buildRouting(&opts, lns, nil, nil, workers)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	maxNodes := opts.MaxNodes
	if maxNodes <= 0 {
		maxNodes = zmqbridge.DefaultMaxNodes
	}
	s := &Server{
		opts:  opts,
		given: given,
		// No body limit in the parser: each vhost's max-body (the global
		// one when it sets none) is checked as the head is routed and as
		// the body comes (onHead, onBody), so that a vhost may allow more
		// than the global one.
		limits:    protocol.Limits{MaxHeadBytes: opts.MaxHeaderSize, MaxURIBytes: opts.MaxURI},
		deadAfter: 3 * opts.PingFreq,
		booted:    make(chan struct{}),
		maxNodes:  maxNodes,
		instances: make([]nodeInstance, maxNodes),
		ran:       make(chan error, 1),
		done:      make(chan struct{}),
		epoch:     time.Now(),
	}
	s.epochNS = s.epoch.UnixNano()
	s.rt.Store(rt)
	s.lns.Store(lns)
	if opts.AccessLog != "" {
		stderr := opts.Stderr
		if stderr == nil {
			stderr = os.Stderr
		}
		if s.alog, err = newAccessLog(opts.AccessLog, opts.AccessLogFormat, workers, opts.AccessLogBuffer, stderr, opts.Logger); err != nil {
			return nil, err
		}
	}
	s.tick(time.Now())
	s.heard.Store(&heardClock{})
	// Each loop's sessions: its share of max-connections, and with
	// HTTP/2 each connection's streams too (a stream is a session).
	perLoop := opts.MaxConnections/workers + 1
	if opts.HTTP2 {
		perLoop = min(perLoop, session.MaxSlots) * (1 + min(opts.HTTP2MaxStreams, session.MaxSlots)) // no overflow: both under 2^24
	}
	for i := 0; i < workers; i++ {
		s.loops = append(s.loops, newLoop(s, i, perLoop))
	}
	s.handlers = []*bridgeHandler{newBridgeHandler(s, 0)}
	return s, nil
}

// Start binds the ZeroMQ endpoints and the listeners and starts serving.
// It returns once both are bound, or the first error.
func (s *Server) Start() error {
	nodes := s.rt.Load().nodes.Nodes()
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.Name
	}
	n := max(1, s.opts.ZMQBridges)
	for k := len(s.handlers); k < n; k++ {
		s.handlers = append(s.handlers, newBridgeHandler(s, k))
	}
	bs, err := zmqbridge.StartShared(zmqbridge.Config{
		Endpoints:      s.opts.ZMQ,
		Identities:     ids,
		MaxNodes:       s.maxNodes,
		PingFreq:       s.opts.PingFreq,
		RingSize:       s.opts.RingSize,
		HWM:            s.opts.ZMQHWM,
		RcvHWM:         s.opts.ZMQRcvHWM,
		MaxMessage:     s.opts.ZMQMaxMessage,
		MaxQueuedBytes: s.opts.ZMQQueueBytes,
		IOThreads:      s.opts.ZMQIOThreads,
		BusyPoll:       s.opts.ZMQBusyPoll,
		Rebalance:      s.opts.ZMQRebalance,
		SendTimeout:    s.opts.SendTimeout,
		TCPKeepAlive:   s.opts.TCPKeepAlive,
		Logger:         s.opts.Logger,
	}, n, func(k int) zmqbridge.Handler { return s.handlers[k] })
	if err != nil {
		return err
	}
	s.bridges = bs
	if s.ring = bs[0]; n > 1 {
		s.ring = &bridgeSet{s: s}
	}
	all := s.lns.Load().all
	addrs := make([]string, len(all))
	for i, ln := range all {
		addrs[i] = s.protoAddr(ln) // fd://N for an inherited socket (gnet patched)
	}
	loopAccept := s.loopAccept()
	go func() {
		s.ran <- gnet.Rotate((*handler)(s), addrs,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(s.opts.Workers),
			gnet.WithReuseAddr(true),
			gnet.WithReusePort(s.opts.ReusePort),
			gnet.WithLoopAccept(loopAccept),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithTCPKeepAlive(s.opts.TCPKeepAlive), // 0: off
			gnet.WithLogger(gnetLogger{s.opts.Logger}),
		)
	}()
	select {
	case <-s.booted:
	case err := <-s.ran:
		s.stopBridges()
		if err == nil {
			err = errors.New("server: engine stopped at start")
		}
		return fmt.Errorf("server: listen: %w", err)
	}
	go s.ticker()
	return nil
}

// Leaving says the server is about to stop while it still serves
// everything: Metrics().Stopping (/readyz answers 503), so that load
// balancers stop sending it traffic before Shutdown closes the
// listeners (shutdown-delay).
//
// Meanwhile clients are moved off their connections without an error:
// HTTP/1.x responses say Connection: close, HTTP/2 connections open now
// get GOAWAY (NO_ERROR: their streams finish; WebSocket streams stay
// until the stop), and one opened later gets it with its first stream.
// New connections are served: a balancer that has not dropped the proxy
// yet may still send them.
func (s *Server) Leaving() {
	s.leaving.Store(true)
	for _, l := range s.loops {
		l.execute(l.leaveH2)
	}
}

// Stopping reports whether a graceful stop, or the shutdown-delay before
// it, began (Metrics().Stopping, without the snapshot's cost).
func (s *Server) Stopping() bool { return s.draining.Load() || s.leaving.Load() }

// Shutdown stops accepting work, lets in-flight responses finish for up
// to the grace period (or until ctx ends), sends `end` for every open
// session, and stops the engine and the bridge.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	// New connections are refused from now on, not accepted and reset.
	if err := s.eng.StopAccepting(); err != nil {
		s.opts.Logger.Warn("closing the listeners", "err", err)
	}
	grace, cancel := context.WithTimeout(ctx, s.opts.ShutdownGrace)
	defer cancel()
	for _, l := range s.loops {
		l.execute(l.closeIdle)
	}
	for s.conns.Load() > 0 && grace.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	close(s.done)
	err := s.eng.Stop(context.Background()) // OnClose sends `end` for the rest
	<-s.ran
	s.stopBridges()
	if s.alog != nil {
		s.alog.Close()
	}
	return err
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() StatsSnapshot { return s.stats.snapshot(s.bridges) }

// ticker drives every loop's sweep (timeouts) until the server stops.
func (s *Server) ticker() {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	var nodes nodeWatch
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.tick(time.Now())
			s.watchNodes(&nodes, s.now())
			for _, l := range s.loops {
				l.execute(l.sweep)
			}
		}
	}
}

// StalledAfter is how long an event loop may go without its sweep before
// the supervisors' liveness signals (the Emperor's heartbeat, /healthz)
// call it stuck.
const StalledAfter = 5 * time.Second

// Stalled reports whether an event loop has not run its sweep (every
// sweepEvery) for longer than limit: it is stuck, and with it every
// connection it serves. An event loop never blocks, so this is a bug's
// doing, or a machine starved of CPU; a supervisor's liveness signal
// (the uWSGI Emperor's heartbeat) stops while it lasts, so that the
// supervisor restarts the proxy instead of taking it for alive.
func (s *Server) Stalled(limit time.Duration) bool {
	now := s.now()
	for _, l := range s.loops {
		if l.el.Load() == nil {
			continue // no connection yet: nothing to sweep
		}
		if now-l.swept.Load() > int64(limit) {
			return true
		}
	}
	return false
}

// tick refreshes the coarse clock and, when the second changed, the Date
// value added to responses that lack one (RFC 9110 §6.6.1).
func (s *Server) tick(t time.Time) {
	s.clock.Store(s.stamp(t))
	if d := s.httpDate.Load(); d == nil || t.Unix() != s.dateSec.Load() {
		b := protocol.AppendHTTPDate(make([]byte, 0, 29), t)
		s.httpDate.Store(&b)
		s.dateSec.Store(t.Unix())
	}
}

// date returns the Date field value of this second. The slice is never
// changed after it is published.
func (s *Server) date() []byte { return *s.httpDate.Load() }

// stamp is t in the proxy's unix ns: the wall clock at New, then the
// monotonic clock's time since (t.Sub reads the monotonic clock when t
// has it, as time.Now's has). Every deadline, timeout, node liveness and
// latency counts on it, so that a step of the wall clock (NTP's makestep,
// a virtual machine resumed) neither fires every timeout at once, nor
// makes every node look dead, nor puts a negative latency in the
// histograms; the Date field and the access log's time are wall times.
func (s *Server) stamp(t time.Time) int64 { return s.epochNS + int64(t.Sub(s.epoch)) }

// now is a coarse clock (refreshed every sweepEvery) for the hot path:
// liveness, idle and response deadlines are all checked at that
// resolution anyway, and it saves several clock reads per request.
func (s *Server) now() int64 { return s.clock.Load() }

// loopOf returns the loop state of a gnet event loop, assigning the next
// free index the first time a loop is seen. Runs on that loop.
func (s *Server) loopOf(el gnet.EventLoop) *loop {
	if l, ok := s.loopByEL.Load(el); ok {
		return l.(*loop)
	}
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	if l, ok := s.loopByEL.Load(el); ok {
		return l.(*loop)
	}
	n := 0
	s.loopByEL.Range(func(_, _ any) bool { n++; return true })
	if n >= len(s.loops) {
		// More gnet loops than configured: cannot happen with
		// WithNumEventLoop, but never index out of range.
		n = len(s.loops) - 1
	}
	l := s.loops[n]
	l.setEventLoop(el)
	s.loopByEL.Store(el, l)
	return l
}
