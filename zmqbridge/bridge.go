package zmqbridge

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
	"golang.org/x/sys/unix"

	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/internal/yield"
	"github.com/blastbeat/blastbeat/internal/zmqio"
)

// Defaults of Config's limits.
const (
	// DefaultRingSize holds a burst of 64k messages from the loops; each
	// slot costs ~80 bytes. (The server always passes config's ring-size,
	// whose default this is.)
	DefaultRingSize = 64 << 10
	// DefaultHWM is libzmq's per-node queue bound in messages towards the
	// nodes.
	DefaultHWM = 256
	// DefaultRcvHWM bounds the messages libzmq reads ahead from each node:
	// while the bridge pauses (clients lagging), this many messages wait in
	// the proxy (8 MiB per node with 64 KiB messages), and TCP pushes back
	// on the node beyond them. libzmq signals its I/O thread after each
	// half-mark of messages the bridge takes (a command and a wake-up
	// each), so a small mark costs: at 16, a chunked response of 18
	// messages cost two such round trips, and the stream bench row ran at
	// half the rate it does at 128.
	DefaultRcvHWM = 128
	// DefaultMaxMessage bounds a message from a node, in bytes per frame
	// (ZMQ_MAXMSGSIZE): libzmq disconnects a peer that sends a bigger one,
	// before it holds it.
	DefaultMaxMessage = 64 << 20
	// DefaultMaxQueuedBytes is the body bytes the loops may queue for the
	// bridge before they wait (and so stop reading from their clients).
	DefaultMaxQueuedBytes = 2 << 20
	// DefaultSendTimeout is how long a message waits for a node stuck at its
	// high-water mark before it is given up (and its session failed).
	DefaultSendTimeout = 5 * time.Second
	// DefaultMaxNodes is how many node identities a bridge can know,
	// those added by reloads included.
	DefaultMaxNodes = 4096
	// fastPing is the ping period of nodes that are not connected, so that
	// a node that (re)connects is found alive within this.
	fastPing = 100 * time.Millisecond
	// elsewherePing is the ping period (at most PingFreq, at least
	// fastPing) of a node that is connected through another bridge: its
	// own bridge finds it gone within PingFreq, and this one then within
	// elsewherePing. Pinging it every fastPing would cost every bridge
	// but one ten failed sends a second for each node.
	elsewherePing = time.Second
	// lentWait is the longest the bridge sleeps while libzmq holds bodies
	// lent to it; it doubles, up to lentWaitMax, while none comes back
	// (a node that takes nothing holds its bodies until it goes).
	lentWait    = 5 * time.Millisecond
	lentWaitMax = time.Second
	// closeLinger is how long libzmq may still deliver what it holds once
	// the bridge closes its socket (send-timeout, if shorter): the `end`s
	// of the sessions a shutdown closed.
	closeLinger = 500 * time.Millisecond // under zmqio's wait for lent bodies (1 s)
)

// Handler receives what the bridge reads. Its methods run on the bridge
// goroutine and must not block.
type Handler interface {
	// Deliver gets one well-formed message. When buf is set, the slices
	// lie in it, a pooled buffer shared by the messages of one receive
	// batch, and stay valid only until Deliver returns: a callee that
	// keeps them takes a reference (buf.Retain) and gives it back
	// (buf.Release) once done. A nil buf (a batch under
	// zmqio.MinPooledBatch) means the slices are freshly allocated and
	// the callee's.
	Deliver(identity, sid, typ, body []byte, buf *bufpool.Buf)
	// Flush ends a batch of Deliver calls.
	Flush()
	// Undeliverable gets a message that could not be sent: its node is not
	// connected (EHOSTUNREACH) or stayed at its high-water mark for
	// SendTimeout. The node index is m.Node.
	Undeliverable(m *Msg, err error)
	// Unreachable reports that node (an index) is not connected through
	// this bridge. It returns whether the node may come back through it
	// at any moment (then its pings go every fastPing); false means
	// another bridge has the node (several bridges share the endpoints),
	// and this one pings it every elsewherePing only.
	Unreachable(node int) (watch bool)
	// Paused reports whether reading from nodes must pause because the
	// event loops have not applied what was read yet. While paused the
	// bridge still sends, and asks again every millisecond.
	Paused() bool
	// Room reports that the ring has room again after a TrySend was
	// refused: producers that wait for it may try again.
	Room()
}

// Config is the bridge's configuration.
type Config struct {
	Endpoints []string // bound by the ROUTER, e.g. tcp://127.0.0.1:5000
	// UseFDs, when set, parallels Endpoints: a listening socket libzmq
	// takes for that endpoint (ZMQ_USE_FD; several bridges share a TCP
	// endpoint this way, see ShareEndpoints), or -1 to bind it anew.
	UseFDs     []int
	Identities []string // node names; Msg.Node indexes them
	// MaxNodes bounds the identities, Identities and AddIdentities
	// together (at least len(Identities); DefaultMaxNodes).
	MaxNodes    int
	PingFreq    time.Duration
	RingSize    int
	HWM         int // send high-water mark, messages per node
	RcvHWM      int // receive high-water mark, messages per node
	SendTimeout time.Duration
	// BusyPoll is how long the bridge, after sessions' messages (pings
	// and pongs do not count), keeps looking for more (the ring, the
	// nodes' messages) before it sleeps; 0: it sleeps at once. A bridge
	// woken from sleep costs a request tens of microseconds on a virtual
	// machine; polling trades CPU for that.
	BusyPoll time.Duration
	// TCPKeepAlive turns TCP keep-alive on for the nodes' connections
	// (idle this long, then 5 probes a fifth of it apart; 0: off): a
	// node whose host vanished without closing its connection is
	// dropped within about twice this, and with it what libzmq holds
	// for it (the bodies lent to it count against MaxQueuedBytes until
	// then). Without it, the kernel keeps such a connection for its
	// retransmission timeout, about 15 minutes.
	TCPKeepAlive time.Duration
	// IOThreads is the number of libzmq I/O threads of the bridge's own
	// context (0: 1). Each node's connection is served by one of them.
	IOThreads int
	// MaxMessage bounds a message from a node, per frame
	// (DefaultMaxMessage; ZMQ_MAXMSGSIZE): a peer that sends a bigger one
	// is disconnected by libzmq, before it holds it.
	MaxMessage int64
	// MaxQueuedBytes bounds the body bytes waiting in the ring and the
	// bridge for libzmq (DefaultMaxQueuedBytes), and the bytes of the
	// buffers lent to libzmq uncopied (zmqio.SendRef; past it bodies are
	// copied).
	MaxQueuedBytes int64
	Logger         *slog.Logger

	// Rebalance, with several bridges (StartShared), is how many nodes'
	// connections in a row may be turned down during their handshake for
	// landing on a bridge that has more than another (placement.go); 0:
	// none, the kernel's hash alone places them.
	Rebalance int

	// shared, set by StartShared, is the context of several bridges
	// (IOThreads I/O threads for each); nil: the bridge makes its own.
	shared *sharedContext
	// place, set by StartShared, counts the bridges' connections and
	// evens them out; this bridge is its placeIndex-th.
	place      *placement
	placeIndex int
}

// Stats are the bridge's counters; read them with Bridge.Stats.
type Stats struct {
	Sent, Received, Pings   uint64
	DroppedFrames           uint64 // messages without exactly 4 frames
	Unroutable, HWMTimeouts uint64
	RingFull                uint64
	NodeFull                uint64 // TrySend refusals for a node whose queue was full
	Held                    int64  // messages held now for nodes at their HWM
	// BusyPollWork counts the bridge's polls for work before sleeping
	// (Config.BusyPoll) that found some, BusyPollIdle those that ran out
	// and slept. Each is counted once its poll ends: both only grow.
	BusyPollWork, BusyPollIdle uint64
	// Rebalanced counts the nodes' connections this bridge turned down
	// for landing on it while another bridge had fewer (Config.Rebalance).
	Rebalanced uint64
}

// Add adds o's counters to s (several bridges' totals).
func (s *Stats) Add(o Stats) {
	s.Sent += o.Sent
	s.Received += o.Received
	s.Pings += o.Pings
	s.DroppedFrames += o.DroppedFrames
	s.Unroutable += o.Unroutable
	s.HWMTimeouts += o.HWMTimeouts
	s.RingFull += o.RingFull
	s.NodeFull += o.NodeFull
	s.Held += o.Held
	s.BusyPollWork += o.BusyPollWork
	s.BusyPollIdle += o.BusyPollIdle
	s.Rebalanced += o.Rebalanced
}

// Bridge is the ZeroMQ side of the proxy.
type Bridge struct {
	// Immutable.
	cfg  Config
	h    Handler
	ring *Ring
	efd  int // eventfd that wakes the bridge

	// Shared.
	sleeping   atomic.Bool
	efdClosed  atomic.Bool  // closeEventfd began: no wake writes it any more
	wakers     atomic.Int32 // wakes between their check of efdClosed and their write
	kickWanted atomic.Bool  // MarkKick since the last KickMarked
	stopping   atomic.Bool
	wantRing   atomic.Bool  // a TrySend found the ring full since the last Room
	wantNode   atomic.Bool  // a TrySend found its node's queue full since then
	held       atomic.Int64 // messages held for nodes at their high-water mark
	// nodeHeld counts, per node, the messages and bytes held for it: at
	// HWM messages or MaxQueuedBytes, TrySend refuses that node's messages.
	nodeHeld []nodeCount
	// nodeOut counts, per node, what was sent to it and what failed; the
	// bridge goroutine writes, scrapes read (NodeTraffic).
	nodeOut []nodeSent
	ringLen atomic.Int64 // the ring's length after the last send batch
	// added are identities AddIdentities gave, for the bridge goroutine
	// to take (guarded by addMu, a leaf lock); known counts them all.
	addMu  sync.Mutex
	added  []string
	known  atomic.Int64
	queued atomic.Int64 // body bytes pushed and not yet handed to libzmq
	done   chan struct{}
	stats  struct {
		sent, received, pings, dropped, unroutable, hwm, ringFull, nodeFull atomic.Uint64
		pollWork, pollIdle                                                  atomic.Uint64
	}

	// Owned by the bridge goroutine.
	zctx     *zmq.Context // the bridge's own: IOThreads I/O threads
	sock     *zmq.Socket
	io       *zmqio.Batcher
	recvBufs bufpool.Pool // receive batches, lent to Deliver
	traffic  bool         // sessions' messages sent or received since the last look (BusyPoll)
	ids      [][]byte
	nextPing []time.Time
	batch    []Msg // messages of the send batch in flight
	// Per node (indexed like ids): messages taken from the ring that wait
	// for the node to leave its high-water mark, in order, so that a
	// stuck node holds up only its own sessions.
	queues []nodeQueue
}

// nodeSent is what was sent to one node, readable from any goroutine.
type nodeSent struct {
	msgs, bytes, failures atomic.Uint64
}

// NodeTraffic is a snapshot of what the bridge sent to one node.
type NodeTraffic struct {
	Msgs, Bytes, Failures uint64
	Held                  int64 // messages held now at its high-water mark
}

// Add adds o's counters to t (several bridges' totals).
func (t *NodeTraffic) Add(o NodeTraffic) {
	t.Msgs += o.Msgs
	t.Bytes += o.Bytes
	t.Failures += o.Failures
	t.Held += o.Held
}

// NodeTraffic returns node n's counters. Safe from any goroutine.
func (b *Bridge) NodeTraffic(n int) NodeTraffic {
	if n < 0 || n >= len(b.nodeOut) {
		return NodeTraffic{}
	}
	o := &b.nodeOut[n]
	return NodeTraffic{Msgs: o.msgs.Load(), Bytes: o.bytes.Load(), Failures: o.failures.Load(),
		Held: b.nodeHeld[n].msgs.Load()}
}

// RingLen returns about how many messages wait in the ring for the bridge
// (as of its last send batch), and the ring's size. Safe from any
// goroutine.
func (b *Bridge) RingLen() (n, size int) { return int(b.ringLen.Load()), b.ring.Cap() }

// AddIdentities makes more node identities known (a reload): they get
// the next indexes, in order, and are pinged at once. It fails beyond
// MaxNodes. Safe from any goroutine.
func (b *Bridge) AddIdentities(names []string) error {
	b.addMu.Lock()
	defer b.addMu.Unlock()
	if n := int(b.known.Load()) + len(names); n > b.cfg.MaxNodes {
		return fmt.Errorf("zmqbridge: %d node identities, more than max-nodes (%d)", n, b.cfg.MaxNodes)
	}
	b.added = append(b.added, names...)
	b.known.Add(int64(len(names)))
	b.wake()
	return nil
}

// takeIdentities adopts what AddIdentities gave; on the bridge goroutine.
func (b *Bridge) takeIdentities() {
	if int(b.known.Load()) == len(b.ids) {
		return
	}
	b.addMu.Lock()
	added := b.added
	b.added = nil
	b.addMu.Unlock()
	for _, name := range added {
		b.ids = append(b.ids, []byte(name))
		b.nextPing = append(b.nextPing, time.Time{})
		b.queues = append(b.queues, nodeQueue{})
	}
}

// nodeCount is what is held for one node, readable from any goroutine.
type nodeCount struct {
	msgs, bytes atomic.Int64
}

// nodeQueue is what the bridge holds for one node at its high-water mark.
type nodeQueue struct {
	msgs  []Msg
	bytes int
	since time.Time // when the node last took a message, or met its HWM
}

// Start binds the ROUTER on every endpoint and runs the bridge goroutine.
// It returns once the sockets are bound, or the error binding them.
func Start(cfg Config, h Handler) (*Bridge, error) {
	if cfg.RingSize <= 0 {
		cfg.RingSize = DefaultRingSize
	}
	if cfg.HWM <= 0 {
		cfg.HWM = DefaultHWM
	}
	if cfg.RcvHWM <= 0 {
		cfg.RcvHWM = DefaultRcvHWM
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.MaxQueuedBytes <= 0 {
		cfg.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.PingFreq <= 0 {
		cfg.PingFreq = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxNodes <= 0 {
		cfg.MaxNodes = DefaultMaxNodes
	}
	if len(cfg.Identities) > cfg.MaxNodes {
		closeFDs(cfg.UseFDs)
		return nil, fmt.Errorf("zmqbridge: %d node identities, more than %d", len(cfg.Identities), cfg.MaxNodes)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		closeFDs(cfg.UseFDs)
		return nil, fmt.Errorf("zmqbridge: eventfd: %w", err)
	}
	b := &Bridge{cfg: cfg, h: h, ring: NewRing(cfg.RingSize), efd: efd, done: make(chan struct{}),
		nodeHeld: make([]nodeCount, cfg.MaxNodes), nodeOut: make([]nodeSent, cfg.MaxNodes)}
	b.known.Store(int64(len(cfg.Identities)))
	ready := make(chan error, 1)
	b.cfg.shared.acquire() // run gives it back
	go b.run(ready)
	if err := <-ready; err != nil {
		unix.Close(efd)
		return nil, err
	}
	return b, nil
}

// TrySend queues m for its node without waiting; safe from any
// goroutine. It returns false when the ring is full or holds more than
// MaxQueuedBytes of bodies: the caller keeps m, stops producing (an event
// loop stops reading the connection that wanted to send), and tries again
// when the Handler's Room is called.
func (b *Bridge) TrySend(m *Msg) bool { return b.trySend(m, true) }

// TrySendDeferred is TrySend without waking the bridge: the producer
// calls Kick once it has queued what it had, so that the bridge wakes once
// for the lot (an event loop, at the end of its turn). Safe from any
// goroutine.
func (b *Bridge) TrySendDeferred(m *Msg) bool { return b.trySend(m, false) }

// Kick wakes the bridge if it sleeps: what TrySendDeferred queued is sent.
// Safe from any goroutine.
func (b *Bridge) Kick() { b.wake() }

// MarkKick records that a producer queued with TrySendDeferred and
// leaves the wake-up to KickMarked: producers that send through several
// bridges wake only those they queued on. Safe from any goroutine.
func (b *Bridge) MarkKick() {
	if !b.kickWanted.Load() {
		b.kickWanted.Store(true)
	}
}

// KickMarked is Kick when a MarkKick came since the last one. Safe from
// any goroutine.
func (b *Bridge) KickMarked() {
	if b.kickWanted.Load() && b.kickWanted.CompareAndSwap(true, false) {
		b.wake()
	}
}

func (b *Bridge) trySend(m *Msg, wake bool) bool {
	if b.NodeFull(m.Node) {
		// That node is stuck: only its own sessions wait.
		b.stats.nodeFull.Add(1)
		return false
	}
	if b.tryPush(m, wake) {
		return true
	}
	b.stats.ringFull.Add(1)
	return false
}

// WantRoom asks for the Handler's Room once node n can take messages
// again (n < 0: once the ring has room). A producer refused by TrySend
// calls it after it has recorded what waits, so that no Room it needs
// can come too early to be seen. Safe from any goroutine.
func (b *Bridge) WantRoom(n int) {
	if n >= 0 && n < len(b.nodeHeld) {
		b.wantNode.Store(true) // before the check: nodeMoved sees one or the other
		if b.NodeFull(n) {
			return
		}
	}
	b.wantRing.Store(true)
	b.wake()
}

// WantRoomFor is WantRoom(n) when node n is full (NodeFull), else
// WantRoom(-1): Room comes once a message for n may go. Safe from any
// goroutine.
func (b *Bridge) WantRoomFor(n int) {
	if !b.NodeFull(n) {
		n = -1
	}
	b.WantRoom(n)
}

// NodeFull reports whether TrySend refuses messages for node n now (it
// holds HWM messages or MaxQueuedBytes). Safe from any goroutine.
func (b *Bridge) NodeFull(n int) bool {
	if n < 0 || n >= len(b.nodeHeld) {
		return false
	}
	h := &b.nodeHeld[n]
	return h.msgs.Load() >= int64(b.cfg.HWM) || h.bytes.Load() >= b.cfg.MaxQueuedBytes
}

// tryPush queues m if the byte budget and the ring allow. A message
// alone may exceed the budget, so that a big body is never refused.
func (b *Bridge) tryPush(m *Msg, wake bool) bool {
	n := int64(len(m.Body))
	// Refused only while more than half the budget is used, so that the
	// room hasRoom reports always takes the message retried (a body near
	// the whole budget would otherwise bounce).
	if q := b.queued.Load(); q > b.cfg.MaxQueuedBytes/2 && q+n > b.cfg.MaxQueuedBytes {
		return false
	}
	if !b.ring.Push(m) {
		return false
	}
	b.queued.Add(n)
	if wake {
		b.wake()
	}
	return true
}

// hasRoom reports whether producers refused by TrySend may try again.
func (b *Bridge) hasRoom() bool {
	return b.queued.Load() <= b.cfg.MaxQueuedBytes/2 && b.ring.Len() <= b.ring.Cap()/2
}

func (b *Bridge) wake() {
	if b.sleeping.Load() && b.sleeping.CompareAndSwap(true, false) {
		b.wakers.Add(1)
		if !b.efdClosed.Load() {
			var one = [8]byte{1}
			_, _ = unix.Write(b.efd, one[:])
		}
		b.wakers.Add(-1)
	}
}

// closeEventfd closes the eventfd once no wake can write it: a wake from
// a producer (or Stop) racing the bridge's exit wrote 8 bytes into
// whatever took the number next, a client's socket maybe. A wake counts
// itself before it reads efdClosed, and this sets efdClosed before it
// reads the count: one of the two sees the other.
func (b *Bridge) closeEventfd() {
	b.efdClosed.Store(true)
	for b.wakers.Load() > 0 {
		runtime.Gosched()
	}
	_ = unix.Close(b.efd)
}

// Stop ends the bridge goroutine after it has sent what the ring holds,
// and closes the sockets. It returns when they are closed.
func (b *Bridge) Stop() {
	if b.stopping.CompareAndSwap(false, true) {
		b.sleeping.Store(true)
		b.wake()
	}
	<-b.done
}

// Stats returns a snapshot of the counters. Safe from any goroutine.
func (b *Bridge) Stats() Stats {
	s := &b.stats
	var rebalanced uint64
	if b.cfg.place != nil {
		rebalanced = b.cfg.place.deniedBy(b.cfg.placeIndex)
	}
	return Stats{Rebalanced: rebalanced,
		Sent: s.sent.Load(), Received: s.received.Load(), Pings: s.pings.Load(),
		DroppedFrames: s.dropped.Load(), Unroutable: s.unroutable.Load(),
		HWMTimeouts: s.hwm.Load(), RingFull: s.ringFull.Load(),
		Held: b.held.Load(), NodeFull: s.nodeFull.Load(),
		BusyPollWork: s.pollWork.Load(), BusyPollIdle: s.pollIdle.Load(),
	}
}

func (b *Bridge) open() (fd int, err error) {
	next := 0 // UseFDs from here on are not libzmq's (bind closes its own on failure)
	defer func() {
		if err != nil {
			closeFDs(b.cfg.UseFDs[min(next, len(b.cfg.UseFDs)):])
		}
	}()
	zctx := b.cfg.shared.context()
	if zctx == nil {
		if zctx, err = newContext(b.cfg.IOThreads); err != nil {
			return -1, err
		}
	}
	b.zctx = zctx
	sock, err := zctx.NewSocket(zmq.ROUTER)
	if err != nil {
		return -1, fmt.Errorf("zmqbridge: socket: %w", err)
	}
	b.sock = sock
	opts := []error{
		sock.SetRouterMandatory(1),
		sock.SetSndhwm(b.cfg.HWM),
		sock.SetRcvhwm(b.cfg.RcvHWM),
		sock.SetLinger(0),
		sock.SetRouterHandover(true),
		sock.SetMaxmsgsize(b.cfg.MaxMessage),
	}
	if ka := int(b.cfg.TCPKeepAlive / time.Second); ka > 0 {
		opts = append(opts, sock.SetTcpKeepalive(1), sock.SetTcpKeepaliveIdle(ka),
			sock.SetTcpKeepaliveIntvl(max(1, ka/5)), sock.SetTcpKeepaliveCnt(5))
	}
	if err := errors.Join(opts...); err != nil {
		return -1, fmt.Errorf("zmqbridge: socket options: %w", err)
	}
	if b.cfg.place != nil {
		if err := b.joinPlacement(); err != nil {
			return -1, err
		}
	}
	for i, ep := range b.cfg.Endpoints {
		next = i + 1
		if err := b.bind(i, ep); err != nil {
			return -1, fmt.Errorf("zmqbridge: bind %s: %w", ep, err)
		}
	}
	if b.io, err = zmqio.New(sock, 4); err != nil {
		return -1, err
	}
	b.io.SetMaxLent(int(b.cfg.MaxQueuedBytes))
	return sock.GetFd()
}

// newContext makes a libzmq context with ioThreads I/O threads (at
// least one).
func newContext(ioThreads int) (*zmq.Context, error) {
	zctx, err := zmq.NewContext()
	if err != nil {
		return nil, fmt.Errorf("zmqbridge: context: %w", err)
	}
	if err := zctx.SetIoThreads(max(1, ioThreads)); err != nil {
		_ = zctx.Term()
		return nil, fmt.Errorf("zmqbridge: %d I/O threads: %w", ioThreads, err)
	}
	return zctx, nil
}

// termContext ends the bridge's context (its I/O threads), if it made
// one, or its hold on the shared one, which the last of the bridges
// ends. The socket must be closed.
func (b *Bridge) termContext() {
	switch {
	case b.cfg.shared != nil:
		b.cfg.shared.release()
	case b.zctx != nil:
		_ = b.zctx.Term()
	}
}

func (b *Bridge) run(ready chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(b.done)
	zfd, err := b.open()
	var epfd int
	if err == nil {
		epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	}
	if err == nil {
		err = errors.Join(
			unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, zfd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(zfd)}),
			unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, b.efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(b.efd)}),
		)
	}
	if err != nil {
		if b.sock != nil {
			b.sock.Close()
		}
		b.termContext()
		ready <- err
		return
	}
	defer unix.Close(epfd)
	defer func() {
		// The socket first: libzmq drops what it still holds after a
		// short linger (the `end`s of the last sessions, on their way to
		// their nodes), and gives back the bodies lent to it, which
		// Close waits for.
		_ = b.sock.SetLinger(min(b.cfg.SendTimeout, closeLinger))
		b.sock.Close()
		if n := b.io.Close(); n > 0 {
			b.cfg.Logger.Warn("zmqbridge: libzmq still holds request bodies a second after the socket closed; they stay pinned until it lets go", "bodies", n)
			if b.cfg.shared != nil {
				b.cfg.shared.lent.Store(true)
			}
			go b.termContext() // returns once libzmq has let go of them
			return
		}
		b.termContext() // its I/O threads end
	}()
	defer b.closeEventfd()
	b.ids = make([][]byte, len(b.cfg.Identities))
	b.nextPing = make([]time.Time, len(b.cfg.Identities))
	b.queues = make([]nodeQueue, len(b.cfg.Identities))
	for i, id := range b.cfg.Identities {
		b.ids[i] = []byte(id)
	}
	ready <- nil

	events := make([]unix.EpollEvent, 4)
	var drain [8]byte
	var yielder yield.Yielder
	lentBackoff := lentWait
	polled := true // since the last traffic (none yet)
	for {
		if b.io.Reclaim() > 0 { // bodies libzmq is done with go back to the pool
			lentBackoff = lentWait
		}
		b.takeIdentities()
		paused := b.h.Paused()
		worked, more := false, false
		if !paused {
			worked, more = b.recvBatch()
		}
		worked = b.sendBatch() || worked
		if b.traffic {
			// Sessions' messages went one way or the other (not just
			// pongs): more may follow at once, worth a poll.
			b.traffic, polled = false, false
		}
		now := time.Now()
		if yielder.Due(now) {
			runtime.Gosched()
		}
		wait := b.ping(now)
		if paused {
			wait = time.Millisecond
		}
		if b.stopping.Load() && b.ring.Empty() {
			b.dropHeld(func(int) bool { return true })
			return
		}
		if b.wantRing.Load() && b.hasRoom() {
			b.wantRing.Store(false)
			b.h.Room()
		}
		if worked && (more || !b.ring.Empty()) {
			continue
		}
		// Otherwise the receive ended at EAGAIN and the ring is empty: the
		// check below (ZMQ_EVENTS, which libzmq needs read before sleeping
		// on ZMQ_FD anyway) finds what came meanwhile, without another
		// receive that would only say EAGAIN (each one a poll and a getpid
		// in libzmq).
		if b.held.Load() > 0 {
			wait = time.Millisecond // retry the held nodes
		}
		if lent, _ := b.io.Lent(); lent > 0 {
			// libzmq gives lent bodies back without waking the bridge
			// (zmqio.Reclaim): look again soon, so that they return to
			// the pool while it idles.
			wait = min(wait, lentBackoff)
			lentBackoff = min(2*lentBackoff, lentWaitMax)
		}
		if b.cfg.BusyPoll > 0 && !polled && !paused {
			polled = true
			b.busyPoll(epfd, events, min(b.cfg.BusyPoll, wait))
			continue
		}
		b.sleeping.Store(true)
		if !b.ring.Empty() || !paused && b.readable() || b.stopping.Load() || b.wantRing.Load() && b.hasRoom() {
			b.sleeping.Store(false)
			continue
		}
		ms := int(wait / time.Millisecond)
		if ms < 1 {
			ms = 1
		}
		_, _ = unix.EpollWait(epfd, events, ms)
		b.sleeping.Store(false)
		_, _ = unix.Read(b.efd, drain[:])
	}
}

// busyPoll looks for work for up to limit (Config.BusyPoll, or less when
// a ping or a retry is due sooner) without sleeping: ZMQ_EVENTS once (a
// send since the last receive may have consumed ZMQ_FD's edge; reading
// it re-arms the edge), then the ring, and the bridge's eventfd and
// ZMQ_FD (epoll_wait with no timeout). The producers do not write the
// eventfd meanwhile (the bridge is not sleeping), and the run loop's
// next turn takes what came.
func (b *Bridge) busyPoll(epfd int, events []unix.EpollEvent, limit time.Duration) {
	if b.readable() {
		b.stats.pollWork.Add(1)
		return
	}
	deadline := time.Now().Add(limit)
	for {
		if !b.ring.Empty() || b.stopping.Load() || b.wantRing.Load() && b.hasRoom() {
			break
		}
		if n, _ := unix.EpollWait(epfd, events, 0); n > 0 {
			for _, ev := range events[:n] {
				if int(ev.Fd) == b.efd { // a Stop, or a wake from before
					var drain [8]byte
					_, _ = unix.Read(b.efd, drain[:])
				}
			}
			break
		}
		if !time.Now().Before(deadline) {
			b.stats.pollIdle.Add(1)
			return
		}
	}
	b.stats.pollWork.Add(1)
}

// readable re-reads ZMQ_EVENTS, as ZMQ_FD's edge trigger requires.
func (b *Bridge) readable() bool { return b.io.Events().Readable() }

// recvBatch hands every waiting message to the handler, in batches of one
// cgo call each. It reports whether it received anything, and whether it
// stopped at its limit (more may wait) rather than at EAGAIN.
func (b *Bridge) recvBatch() (got, more bool) {
	total := 0
	more = true
	for more && total < 4*zmqio.MaxMessages && (total == 0 || !b.h.Paused()) {
		var n, dropped int
		n, dropped, more = b.io.RecvPooled(zmqio.MaxMessages, &b.recvBufs, func(f [][]byte, buf *bufpool.Buf) {
			if string(f[2]) != "pong" {
				b.traffic = true
			}
			b.h.Deliver(f[0], f[1], f[2], f[3], buf)
		})
		b.stats.received.Add(uint64(n))
		b.stats.dropped.Add(uint64(dropped))
		total += n + dropped
	}
	if total > 0 {
		b.h.Flush()
	}
	return total > 0, more
}

// maxSendBytes bounds one send batch's copy buffer.
const maxSendBytes = 256 << 10

// sendBatch sends what the ring holds, one cgo call per batch, after
// retrying the messages held for nodes at their high-water mark. A
// message for a node that holds messages joins them, so each node's
// messages stay in order while the other nodes' go on.
func (b *Bridge) sendBatch() bool {
	defer func() { b.ringLen.Store(int64(b.ring.Len())) }()
	worked := b.retryHeld(time.Now())
	for {
		b.batch = b.batch[:0]
		var m Msg
		bytes, popped := 0, 0
		for len(b.batch) < zmqio.MaxMessages && bytes < maxSendBytes && b.ring.Pop(&m) {
			popped++
			b.queued.Add(-int64(len(m.Body))) // out of the loops' budget
			if m.Node >= len(b.ids) {
				b.takeIdentities() // added since this iteration began
			}
			if m.Node < 0 || m.Node >= len(b.ids) {
				// Never happens (the server only uses indexes it gave the
				// bridges): failed, never sent to another node.
				b.h.Undeliverable(&m, zmq.Errno(unix.EHOSTUNREACH))
				m.Buf.Release()
				continue
			}
			if len(b.queues[m.Node].msgs) > 0 {
				b.hold(m, time.Time{})
				continue
			}
			b.batch = append(b.batch, m)
			bytes += len(m.Body)
		}
		if popped == 0 {
			return worked
		}
		worked, b.traffic = true, true
		full := len(b.batch) == zmqio.MaxMessages || bytes >= maxSendBytes
		if len(b.batch) > 0 {
			b.sendOut(b.batch)
		}
		clear(b.batch)
		if !full {
			return true
		}
	}
}

// sendOut sends msgs in order; a message that meets its node's
// high-water mark is held with the rest of that node's messages, one
// whose node is gone is failed, and the others go on.
func (b *Bridge) sendOut(msgs []Msg) {
	for len(msgs) > 0 {
		k := 0
		for i := range msgs {
			if len(b.queues[msgs[i].Node].msgs) > 0 {
				b.hold(msgs[i], time.Time{})
				continue
			}
			msgs[k] = msgs[i]
			k++
		}
		msgs = msgs[:k]
		if k == 0 {
			return
		}
		sent, err := b.sendMsgs(msgs)
		b.stats.sent.Add(uint64(sent))
		for i := range msgs[:sent] {
			o := &b.nodeOut[msgs[i].Node]
			o.msgs.Add(1)
			o.bytes.Add(uint64(len(msgs[i].Body)))
			msgs[i].Buf.Release() // libzmq has the bytes
		}
		msgs = msgs[sent:]
		if err == nil {
			return
		}
		failed := msgs[0]
		msgs = msgs[1:]
		var se *zmqio.SendError
		errors.As(err, &se)
		if se != nil && se.Errno == unix.EAGAIN {
			b.hold(failed, time.Now())
			continue
		}
		if se != nil && se.Errno == unix.EHOSTUNREACH {
			b.stats.unroutable.Add(1)
			if b.h.Unreachable(failed.Node) {
				b.nextPing[failed.Node] = time.Now().Add(fastPing) // look for its return at the fast period from now
			}
		}
		b.nodeOut[failed.Node].failures.Add(1)
		b.h.Undeliverable(&failed, err)
		failed.Buf.Release()
		if se != nil && se.Errno == unix.EHOSTUNREACH {
			// The batch's other messages for that node fail the same
			// way: failed here at once. Before, each was sent again with
			// every message after it copied into the batch buffer, only
			// to fail: quadratic work, while every other node waited.
			msgs = b.failNode(msgs, failed.Node, err)
		}
	}
}

// failNode fails msgs' messages for node (gone: EHOSTUNREACH) and
// returns the others, in order.
func (b *Bridge) failNode(msgs []Msg, node int, err error) []Msg {
	k := 0
	for i := range msgs {
		m := msgs[i]
		if m.Node != node {
			msgs[k] = m
			k++
			continue
		}
		b.stats.unroutable.Add(1)
		b.nodeOut[node].failures.Add(1)
		b.h.Undeliverable(&m, err)
		m.Buf.Release()
	}
	clear(msgs[k:])
	return msgs[:k]
}

// hold queues m behind its node's high-water mark; at stuck (not zero)
// the node just met it. Once a node holds HWM messages or MaxQueuedBytes,
// TrySend refuses its messages (what the ring already has still joins),
// so a stuck node costs a bounded amount and holds up only its sessions.
func (b *Bridge) hold(m Msg, stuck time.Time) {
	q := &b.queues[m.Node]
	if len(q.msgs) == 0 {
		q.since = stuck
		if stuck.IsZero() {
			q.since = time.Now()
		}
	}
	q.msgs = append(q.msgs, m)
	q.bytes += len(m.Body)
	b.held.Add(1)
	b.nodeHeld[m.Node].msgs.Add(1)
	b.nodeHeld[m.Node].bytes.Add(int64(len(m.Body)))
}

// retryHeld sends what each stuck node holds, in order, until it meets
// its high-water mark again; a node that took nothing for SendTimeout
// has every held message failed. It reports whether anything moved.
func (b *Bridge) retryHeld(now time.Time) bool {
	if b.held.Load() == 0 {
		return false
	}
	worked := false
	for n := range b.queues {
		q := &b.queues[n]
		if len(q.msgs) == 0 {
			continue
		}
		// One message first: while the node is still stuck, the retry
		// costs one message's copy, not everything held.
		sent, err := b.sendMsgs(q.msgs[:1])
		if err == nil && len(q.msgs) > 1 {
			var more int
			more, err = b.sendMsgs(q.msgs[1:])
			sent += more
		}
		b.stats.sent.Add(uint64(sent))
		if sent > 0 {
			worked = true
			q.since = now
			b.unhold(n, sent)
		}
		if err == nil {
			continue
		}
		var se *zmqio.SendError
		errors.As(err, &se)
		if se == nil || se.Errno != unix.EAGAIN {
			// Gone (EHOSTUNREACH) or worse: fail what it holds.
			if se != nil && se.Errno == unix.EHOSTUNREACH {
				b.stats.unroutable.Add(1)
				if b.h.Unreachable(n) {
					b.nextPing[n] = time.Now().Add(fastPing)
				}
			}
			b.dropHeld(func(i int) bool { return i == n })
			worked = true
			continue
		}
		if now.Sub(q.since) > b.cfg.SendTimeout {
			b.dropHeld(func(i int) bool { return i == n })
			worked = true
		}
	}
	return worked
}

// unhold forgets the first k messages held for node n (sent).
func (b *Bridge) unhold(n, k int) {
	q := &b.queues[n]
	bytes := 0
	for i := 0; i < k; i++ {
		bytes += len(q.msgs[i].Body)
		q.msgs[i].Buf.Release() // sent: libzmq has the bytes
	}
	rest := copy(q.msgs, q.msgs[k:])
	clear(q.msgs[rest:])
	q.msgs = q.msgs[:rest]
	q.bytes -= bytes
	b.held.Add(-int64(k))
	b.nodeHeld[n].msgs.Add(-int64(k))
	b.nodeHeld[n].bytes.Add(-int64(bytes))
	b.nodeMoved()
}

// nodeMoved tells waiting producers that a stuck node's queue shrank.
func (b *Bridge) nodeMoved() {
	if b.wantNode.Load() {
		b.wantNode.Store(false)
		b.h.Room()
	}
}

// dropHeld fails every message held for the nodes that which selects.
func (b *Bridge) dropHeld(which func(node int) bool) {
	for n := range b.queues {
		q := &b.queues[n]
		if len(q.msgs) == 0 || !which(n) {
			continue
		}
		msgs := q.msgs
		b.nodeHeld[n].bytes.Add(-int64(q.bytes))
		q.msgs, q.bytes = nil, 0
		b.held.Add(-int64(len(msgs)))
		b.nodeHeld[n].msgs.Add(-int64(len(msgs)))
		defer b.nodeMoved()
		for i := range msgs {
			b.stats.hwm.Add(1)
			b.nodeOut[msgs[i].Node].failures.Add(1)
			b.h.Undeliverable(&msgs[i], zmq.Errno(unix.EAGAIN))
			msgs[i].Buf.Release()
		}
	}
}

// bigBody is the body size from which a message is sent on its own,
// straight from its buffer, instead of being copied into the batch
// buffer: lent to libzmq when pooled (zmqio.SendRef), else copied by it.
const bigBody = zmqio.MinRefBody

// sendMsgs sends msgs in order: small ones batched, big ones on their
// own. It returns how many were sent and the first failure.
func (b *Bridge) sendMsgs(msgs []Msg) (int, error) {
	sent := 0
	flush := func() error {
		n, err := b.io.Send()
		sent += n
		return err
	}
	for i := range msgs {
		m := &msgs[i]
		sid := m.SID[:]
		if m.SID == [16]byte{} {
			sid = nil
		}
		if len(m.Body) < bigBody {
			b.io.AddTyped(b.ids[m.Node], sid, m.Type, m.Body)
			continue
		}
		if err := flush(); err != nil {
			return sent, err
		}
		if err := b.io.SendRef(b.ids[m.Node], sid, m.Type, m.Body, m.Buf); err != nil {
			return sent, err
		}
		sent++
	}
	return sent, flush()
}

// pingPeriod is how long until a node's next ping, after one whose send
// returned err: freq when it went; fastPing when the node is not there
// (unreachable: told to the handler, whose answer may make it
// elsewherePing) or at its high-water mark.
func pingPeriod(err error, unreachable func() (watch bool), freq time.Duration) time.Duration {
	if err == nil {
		return freq
	}
	var se *zmqio.SendError
	if errors.As(err, &se) && se.Errno == unix.EHOSTUNREACH && !unreachable() {
		return max(fastPing, min(freq, elsewherePing)) // never more often than an absent node
	}
	return fastPing
}

// ping sends `ping` to every node whose time has come and returns how long
// until the next one is due. A node that is not connected is pinged every
// fastPing, so that it is found as soon as it connects (elsewherePing when
// another bridge has it).
func (b *Bridge) ping(now time.Time) time.Duration {
	next := b.cfg.PingFreq
	for i := range b.ids {
		if d := b.nextPing[i].Sub(now); d > 0 {
			next = min(next, d)
			continue
		}
		b.io.AddTyped(b.ids[i], nil, "ping", nil)
		_, err := b.io.Send()
		period := pingPeriod(err, func() bool { return b.h.Unreachable(i) }, b.cfg.PingFreq)
		b.stats.pings.Add(1)
		b.nextPing[i] = now.Add(period)
		next = min(next, period)
	}
	return next
}
