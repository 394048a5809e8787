package zmqbridge

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	zmq "github.com/pebbe/zmq4"
	"golang.org/x/sys/unix"

	"github.com/blastbeat/blastbeat/internal/zmqio"
)

// Defaults of Config's limits.
const (
	// DefaultRingSize holds a burst of 16k messages from the loops; each
	// slot costs ~80 bytes.
	DefaultRingSize = 16 << 10
	// DefaultHWM is libzmq's per-node queue bound in messages towards the
	// nodes.
	DefaultHWM = 256
	// DefaultRcvHWM bounds the messages libzmq reads ahead from each node:
	// while the bridge pauses (clients lagging), this many messages wait in
	// the proxy, and TCP pushes back on the node beyond them. Bodies are up
	// to 64 KiB in practice, so this is a few MB per node.
	DefaultRcvHWM = 16
	// DefaultMaxQueuedBytes is the body bytes the loops may queue for the
	// bridge before they wait (and so stop reading from their clients).
	DefaultMaxQueuedBytes = 1 << 20
	// DefaultSendTimeout is how long a message waits for a node stuck at its
	// high-water mark before it is given up (and its session failed).
	DefaultSendTimeout = 5 * time.Second
	// fastPing is the ping period of nodes that are not connected, so that
	// a node that (re)connects is found alive within this.
	fastPing = 100 * time.Millisecond
)

// Handler receives what the bridge reads. Its methods run on the bridge
// goroutine and must not block.
type Handler interface {
	// Deliver gets one well-formed message. The slices are freshly
	// allocated and owned by the callee.
	Deliver(identity, sid, typ, body []byte)
	// Flush ends a batch of Deliver calls.
	Flush()
	// Undeliverable gets a message that could not be sent: its node is not
	// connected (EHOSTUNREACH) or stayed at its high-water mark for
	// SendTimeout. The node index is m.Node.
	Undeliverable(m *Msg, err error)
	// Unreachable reports that node (an index) is not connected.
	Unreachable(node int)
	// Paused reports whether reading from nodes must pause because
	// clients are not reading their output. While paused the bridge
	// still sends, and asks again every millisecond.
	Paused() bool
}

// Config is the bridge's configuration.
type Config struct {
	Endpoints   []string // bound by the ROUTER, e.g. tcp://127.0.0.1:5000
	Identities  []string // node names; Msg.Node indexes them
	PingFreq    time.Duration
	RingSize    int
	HWM         int // send high-water mark, messages per node
	RcvHWM      int // receive high-water mark, messages per node
	SendTimeout time.Duration
	// MaxQueuedBytes bounds the body bytes waiting in the ring and the
	// bridge for libzmq (DefaultMaxQueuedBytes).
	MaxQueuedBytes int64
	Logger         *slog.Logger
}

// Stats are the bridge's counters; read them with Bridge.Stats.
type Stats struct {
	Sent, Received, Pings   uint64
	DroppedFrames           uint64 // messages without exactly 4 frames
	Unroutable, HWMTimeouts uint64
	RingFull                uint64
}

// Bridge is the ZeroMQ side of the proxy.
type Bridge struct {
	// Immutable.
	cfg  Config
	h    Handler
	ring *Ring
	efd  int // eventfd that wakes the bridge

	// Shared.
	sleeping atomic.Bool
	stopping atomic.Bool
	queued   atomic.Int64 // body bytes pushed and not yet handed to libzmq
	done     chan struct{}
	stats    struct {
		sent, received, pings, dropped, unroutable, hwm, ringFull atomic.Uint64
	}

	// Owned by the bridge goroutine.
	sock     *zmq.Socket
	io       *zmqio.Batcher
	ids      [][]byte
	nextPing []time.Time
	batch    []Msg     // messages of the send batch in flight
	carry    []Msg     // taken from the ring, not sent yet (held by the HWM)
	heldAt   time.Time // when carry[0] first met the high-water mark
}

// ErrStopped is returned by Send after Stop.
var ErrStopped = errors.New("zmqbridge: stopped")

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
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("zmqbridge: eventfd: %w", err)
	}
	b := &Bridge{cfg: cfg, h: h, ring: NewRing(cfg.RingSize), efd: efd, done: make(chan struct{})}
	ready := make(chan error, 1)
	go b.run(ready)
	if err := <-ready; err != nil {
		unix.Close(efd)
		return nil, err
	}
	return b, nil
}

// Send queues m for its node; safe from any goroutine. While the ring is
// full, or holds more than MaxQueuedBytes of bodies, it waits up to wait,
// calling idle (when not nil) between tries so that the caller, an event
// loop, can go on applying replies. Waiting blocks the caller: a loop that
// waits stops reading from its clients, which is how the bridge pushes
// back. It returns false if the queue stayed full.
func (b *Bridge) Send(m *Msg, wait time.Duration, idle func()) bool {
	if b.tryPush(m) {
		return true
	}
	deadline := time.Now().Add(wait)
	for spins := 0; ; spins++ {
		b.wake()
		if idle != nil {
			idle()
		}
		if spins < 16 {
			runtime.Gosched()
		} else {
			time.Sleep(50 * time.Microsecond)
		}
		if b.tryPush(m) {
			return true
		}
		if spins%16 == 15 && time.Now().After(deadline) {
			b.stats.ringFull.Add(1)
			return false
		}
	}
}

// tryPush queues m if the byte budget and the ring allow. A message
// alone may exceed the budget, so that a big body is never refused.
func (b *Bridge) tryPush(m *Msg) bool {
	n := int64(len(m.Body))
	if q := b.queued.Load(); q > 0 && q+n > b.cfg.MaxQueuedBytes {
		return false
	}
	if !b.ring.Push(m) {
		return false
	}
	b.queued.Add(n)
	b.wake()
	return true
}

// release returns the byte budget of messages that left the bridge.
func (b *Bridge) release(msgs []Msg) {
	var n int64
	for i := range msgs {
		n += int64(len(msgs[i].Body))
	}
	b.queued.Add(-n)
}

func (b *Bridge) wake() {
	if b.sleeping.Load() && b.sleeping.CompareAndSwap(true, false) {
		var one = [8]byte{1}
		_, _ = unix.Write(b.efd, one[:])
	}
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
	return Stats{
		Sent: s.sent.Load(), Received: s.received.Load(), Pings: s.pings.Load(),
		DroppedFrames: s.dropped.Load(), Unroutable: s.unroutable.Load(),
		HWMTimeouts: s.hwm.Load(), RingFull: s.ringFull.Load(),
	}
}

func (b *Bridge) open() (int, error) {
	sock, err := zmq.NewSocket(zmq.ROUTER)
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
	}
	if err := errors.Join(opts...); err != nil {
		return -1, fmt.Errorf("zmqbridge: socket options: %w", err)
	}
	for _, ep := range b.cfg.Endpoints {
		if err := sock.Bind(ep); err != nil {
			return -1, fmt.Errorf("zmqbridge: bind %s: %w", ep, err)
		}
	}
	if b.io, err = zmqio.New(sock, 4); err != nil {
		return -1, err
	}
	return sock.GetFd()
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
		ready <- err
		return
	}
	defer unix.Close(epfd)
	defer b.sock.Close()
	defer unix.Close(b.efd)
	b.ids = make([][]byte, len(b.cfg.Identities))
	b.nextPing = make([]time.Time, len(b.cfg.Identities))
	for i, id := range b.cfg.Identities {
		b.ids[i] = []byte(id)
	}
	ready <- nil

	defer b.io.Close()
	events := make([]unix.EpollEvent, 4)
	var drain [8]byte
	for {
		paused := b.h.Paused()
		worked := !paused && b.recvBatch()
		worked = b.sendBatch() || worked
		now := time.Now()
		wait := b.ping(now)
		if paused {
			wait = time.Millisecond
		}
		if b.stopping.Load() && b.ring.Empty() && len(b.carry) == 0 {
			return
		}
		// Checked before `worked`: replies from other nodes must not keep
		// a stuck node's messages waiting forever.
		if len(b.carry) > 0 && now.Sub(b.heldAt) > b.cfg.SendTimeout {
			b.dropStuck(now)
			continue
		}
		if worked {
			continue
		}
		if len(b.carry) > 0 {
			wait = time.Millisecond
		}
		b.sleeping.Store(true)
		if !b.ring.Empty() && len(b.carry) == 0 || !paused && b.readable() || b.stopping.Load() {
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

// readable re-reads ZMQ_EVENTS, as ZMQ_FD's edge trigger requires.
func (b *Bridge) readable() bool { return b.io.Events().Readable() }

// recvBatch hands every waiting message to the handler, in batches of one
// cgo call each.
func (b *Bridge) recvBatch() bool {
	total := 0
	for total < 4*zmqio.MaxMessages {
		n, dropped, ev := b.io.Recv(zmqio.MaxMessages, func(f [][]byte) {
			b.h.Deliver(f[0], f[1], f[2], f[3])
		})
		b.stats.received.Add(uint64(n))
		b.stats.dropped.Add(uint64(dropped))
		total += n + dropped
		if n+dropped == 0 || !ev.Readable() {
			break
		}
	}
	if total > 0 {
		b.h.Flush()
	}
	return total > 0
}

// maxSendBytes bounds one send batch's copy buffer.
const maxSendBytes = 256 << 10

// sendBatch sends what the ring holds, in order, one cgo call per batch.
// A message at its node's high-water mark stays first in carry, with
// everything after it, until it can go or SendTimeout passes.
func (b *Bridge) sendBatch() bool {
	worked := false
	for {
		b.batch = append(b.batch[:0], b.carry...)
		carried := len(b.carry)
		var m Msg
		bytes := 0
		for len(b.batch) < zmqio.MaxMessages && bytes < maxSendBytes && b.ring.Pop(&m) {
			b.batch = append(b.batch, m)
			bytes += len(m.Body)
		}
		if len(b.batch) == 0 {
			return worked
		}
		sent, err := b.sendMsgs(b.batch)
		b.stats.sent.Add(uint64(sent))
		if sent > 0 {
			worked = true
		}
		b.release(b.batch[:sent])
		rest := b.batch[sent:]
		if err == nil {
			b.carry = b.carry[:0]
			clear(b.batch)
			if len(b.batch) < zmqio.MaxMessages && bytes < maxSendBytes {
				return true
			}
			continue
		}
		var se *zmqio.SendError
		errors.As(err, &se)
		if se != nil && se.Errno == unix.EAGAIN {
			if sent > 0 || carried == 0 {
				b.heldAt = time.Now()
			}
			b.carry = append(b.carry[:0], rest...)
			clear(b.batch)
			return worked
		}
		failed := rest[0]
		b.release(rest[:1])
		if se != nil && se.Errno == unix.EHOSTUNREACH {
			b.stats.unroutable.Add(1)
			b.h.Unreachable(failed.Node)
		}
		b.h.Undeliverable(&failed, err)
		b.carry = append(b.carry[:0], rest[1:]...)
		clear(b.batch)
		worked = true
	}
}

// dropStuck fails every held message to the node at the head of carry,
// which stayed at its high-water mark for SendTimeout, so that messages
// to the other nodes flow again.
func (b *Bridge) dropStuck(now time.Time) {
	stuck := b.carry[0].Node
	keep := b.carry[:0]
	for i := range b.carry {
		m := b.carry[i]
		if m.Node != stuck {
			keep = append(keep, m)
			continue
		}
		b.stats.hwm.Add(1)
		b.release(b.carry[i : i+1])
		b.h.Undeliverable(&m, zmq.Errno(unix.EAGAIN))
	}
	clear(b.carry[len(keep):])
	b.carry = keep
	b.heldAt = now
}

// bigBody is the body size from which a message is sent straight from its
// buffer instead of being copied into the batch buffer.
const bigBody = 16 << 10

// sendMsgs sends msgs in order: small ones batched, big ones on their
// own. It returns how many were sent and the first failure.
func (b *Bridge) sendMsgs(msgs []Msg) (int, error) {
	sent := 0
	flush := func() error {
		n, _, err := b.io.Send()
		sent += n
		return err
	}
	for i := range msgs {
		m := &msgs[i]
		if m.Node < 0 || m.Node >= len(b.ids) {
			m.Node = 0 // never happens: the server only uses its own indexes
		}
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
		if err := b.io.SendOne(b.ids[m.Node], sid, m.Type, m.Body); err != nil {
			return sent, err
		}
		sent++
	}
	return sent, flush()
}

// ping sends `ping` to every node whose time has come and returns how long
// until the next one is due. A node that is not connected is pinged every
// fastPing, so that it is found as soon as it connects.
func (b *Bridge) ping(now time.Time) time.Duration {
	next := b.cfg.PingFreq
	for i := range b.ids {
		if d := b.nextPing[i].Sub(now); d > 0 {
			next = min(next, d)
			continue
		}
		period := b.cfg.PingFreq
		b.io.AddTyped(b.ids[i], nil, "ping", nil)
		if _, _, err := b.io.Send(); err != nil {
			period = fastPing
			var se *zmqio.SendError
			if errors.As(err, &se) && se.Errno == unix.EHOSTUNREACH {
				b.h.Unreachable(i)
			}
		}
		b.stats.pings.Add(1)
		b.nextPing[i] = now.Add(period)
		next = min(next, period)
	}
	return next
}
