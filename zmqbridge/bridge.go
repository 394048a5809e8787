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
)

// Defaults of Config's limits.
const (
	// DefaultRingSize holds a burst of 16k messages from the loops; each
	// slot costs ~80 bytes.
	DefaultRingSize = 16 << 10
	// DefaultHWM is libzmq's per-node queue bound in messages, each way.
	DefaultHWM = 1000
	// DefaultSendTimeout is how long a message waits for a node stuck at its
	// high-water mark before it is given up (and its session failed).
	DefaultSendTimeout = 5 * time.Second
	// fastPing is the ping period of nodes that are not connected, so that
	// a node that (re)connects is found alive within this.
	fastPing = 100 * time.Millisecond
	// batch bounds the messages handled per direction per loop turn.
	batch = 256
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
	HWM         int
	SendTimeout time.Duration
	Logger      *slog.Logger
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
	done     chan struct{}
	stats    struct {
		sent, received, pings, dropped, unroutable, hwm, ringFull atomic.Uint64
	}

	// Owned by the bridge goroutine.
	sock     *zmq.Socket
	ids      [][]byte
	types    map[string][]byte
	nextPing []time.Time
	pending  Msg // a message held back by the high-water mark
	held     bool
	heldAt   time.Time
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

// Send queues m for its node; safe from any goroutine. It waits up to wait
// while the ring is full and returns false if it stayed full.
func (b *Bridge) Send(m *Msg, wait time.Duration) bool {
	if !b.ring.PushWait(m, wait) {
		b.stats.ringFull.Add(1)
		return false
	}
	b.wake()
	return true
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
		sock.SetRcvhwm(b.cfg.HWM),
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
	b.types = make(map[string][]byte)
	ready <- nil

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
		if b.stopping.Load() && b.ring.Empty() && !b.held {
			return
		}
		if worked {
			continue
		}
		if b.held {
			if now.Sub(b.heldAt) > b.cfg.SendTimeout {
				b.stats.hwm.Add(1)
				m := b.pending
				b.pending, b.held = Msg{}, false
				b.h.Undeliverable(&m, zmq.Errno(unix.EAGAIN))
				continue
			}
			wait = time.Millisecond
		}
		b.sleeping.Store(true)
		if !b.ring.Empty() && !b.held || !paused && b.readable() || b.stopping.Load() {
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
func (b *Bridge) readable() bool {
	ev, err := b.sock.GetEvents()
	return err == nil && ev&zmq.POLLIN != 0
}

func (b *Bridge) recvBatch() bool {
	n := 0
	for ; n < batch && b.readable(); n++ {
		msg, err := b.sock.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			break
		}
		if len(msg) != 4 {
			b.stats.dropped.Add(1)
			continue
		}
		b.stats.received.Add(1)
		b.h.Deliver(msg[0], msg[1], msg[2], msg[3])
	}
	if n > 0 {
		b.h.Flush()
	}
	return n > 0
}

func (b *Bridge) sendBatch() bool {
	worked := false
	if b.held {
		switch err := b.send(&b.pending); {
		case err == nil:
			b.pending, b.held = Msg{}, false
			worked = true
		case isAgain(err):
			return false
		default:
			m := b.pending
			b.pending, b.held = Msg{}, false
			b.h.Undeliverable(&m, err)
		}
	}
	var m Msg
	for i := 0; i < batch && b.ring.Pop(&m); i++ {
		worked = true
		switch err := b.send(&m); {
		case err == nil:
		case isAgain(err):
			b.pending, b.held, b.heldAt = m, true, time.Now()
			return true
		default:
			b.h.Undeliverable(&m, err)
		}
	}
	return worked
}

func isAgain(err error) bool { return zmq.AsErrno(err) == zmq.Errno(unix.EAGAIN) }

func (b *Bridge) typeFrame(t string) []byte {
	f, ok := b.types[t]
	if !ok {
		f = []byte(t)
		b.types[t] = f
	}
	return f
}

// send writes one message; EHOSTUNREACH and EAGAIN come from the first
// frame, so a message is sent whole or not at all.
func (b *Bridge) send(m *Msg) error {
	if m.Node < 0 || m.Node >= len(b.ids) {
		return fmt.Errorf("zmqbridge: no node %d", m.Node)
	}
	if _, err := b.sock.SendBytes(b.ids[m.Node], zmq.SNDMORE|zmq.DONTWAIT); err != nil {
		if zmq.AsErrno(err) == zmq.Errno(unix.EHOSTUNREACH) {
			b.stats.unroutable.Add(1)
			b.h.Unreachable(m.Node)
		}
		return err
	}
	sid := m.SID[:]
	if m.SID == [16]byte{} {
		sid = nil
	}
	_, err1 := b.sock.SendBytes(sid, zmq.SNDMORE)
	_, err2 := b.sock.SendBytes(b.typeFrame(m.Type), zmq.SNDMORE)
	_, err3 := b.sock.SendBytes(m.Body, 0)
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	b.stats.sent.Add(1)
	return nil
}

// ping sends `ping` to every node whose time has come and returns how long
// until the next one is due.
func (b *Bridge) ping(now time.Time) time.Duration {
	next := b.cfg.PingFreq
	for i := range b.ids {
		if d := b.nextPing[i].Sub(now); d > 0 {
			next = min(next, d)
			continue
		}
		period := b.cfg.PingFreq
		m := Msg{Node: i, Type: "ping"}
		if err := b.send(&m); err != nil {
			period = fastPing
		}
		b.stats.pings.Add(1)
		b.nextPing[i] = now.Add(period)
		next = min(next, period)
	}
	return next
}
