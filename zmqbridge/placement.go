package zmqbridge

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	zmq "github.com/pebbe/zmq4"
	"golang.org/x/sys/unix"
)

// With several bridges behind one tcp:// endpoint (StartShared), the
// kernel's SO_REUSEPORT hash picks the bridge of each node's connection:
// with as many nodes as bridges, some bridges get two and some none (four
// nodes land on four different bridges one time in ten), and the busiest
// bridge caps the proxy. A BPF program could steer the hash, but some
// kernels refuse it to unprivileged processes. So a placement evens the
// bridges out during the handshake instead. Each bridge counts its open
// connections from its ROUTER's monitor events (accepted, disconnected);
// each ROUTER names a ZAP domain (ZeroMQ's authentication hook, RFC 27),
// so that libzmq asks the placement before it sends its READY command,
// which completes a handshake. When the connection landed on a bridge
// with more connections than another, the placement shuts it (libzmq
// sees the connection end, the node's libzmq reconnects after its
// reconnect interval, 100 ms by default, from another source port, which
// the hash places anew) and lets the handshake go on to fail. Without
// the proxy's READY a node sends no message, so nothing is lost. (A ZAP
// refusal would be simpler, but libzmq does not reconnect after one.) At
// most Config.Rebalance connections in a row are shut; the next is taken
// wherever it lands, so that a node never waits long.
//
// libzmq refuses ZMTP 1.0 and 2.0 peers (libzmq before 4.0, 2013) on a
// socket with a ZAP domain: with such nodes, Rebalance must be 0.

// zapEndpoint is where libzmq sends a context's ZAP requests (RFC 27).
const zapEndpoint = "inproc://zeromq.zap.01"

// greeting is the size of a ZMTP 3 greeting, the first thing each side
// sends; the proxy's READY follows it once the ZAP handler answered.
const greeting = 64

// placement counts the bridges' connections and shuts the ones that
// would unbalance them (see above).
type placement struct {
	log *slog.Logger
	max int // Config.Rebalance: shut in a row, at most; 0: none

	zctx *zmq.Context // the bridges' (shared)
	zap  *zmq.Socket  // the ZAP handler (REP), with max > 0
	// mons are, per bridge, its ROUTER's monitor (PAIR). libzmq sends
	// monitor events blocking: run must read them for as long as any
	// ROUTER is open, or an I/O thread would stall once ~1000 wait.
	mons []*zmq.Socket

	mu     sync.Mutex
	open   []map[int]string // per bridge: open connections' descriptors → endpoint
	gone   []map[int]bool   // per bridge: disconnects reported before their accept
	inRow  int              // shut since the last one let through
	denied []uint64         // per bridge: shut so far
}

func newPlacement(n, maxDenials int, log *slog.Logger) *placement {
	if log == nil {
		log = slog.Default()
	}
	p := &placement{log: log, max: maxDenials, open: make([]map[int]string, n), gone: make([]map[int]bool, n),
		denied: make([]uint64, n)}
	for k := range p.open {
		p.open[k], p.gone[k] = map[int]string{}, map[int]bool{}
	}
	if p.max > 0 {
		if err := tcpInfoProbe(); err != nil {
			// Without it a live connection could pass for one waiting in
			// its handshake, and be shut with its messages.
			p.log.Warn("zmqbridge: zmq-rebalance is off: this kernel's TCP_INFO does not tell the bytes sent on a connection", "error", err)
			p.max = 0
		}
	}
	return p
}

// zapDomain is bridge k's ZAP domain, by which the placement knows which
// bridge asks.
func zapDomain(k int) string { return "blastbeat-bridge-" + strconv.Itoa(k) }

// bridgeOf returns the bridge of a ZAP domain, or -1.
func (p *placement) bridgeOf(domain string) int {
	s, ok := strings.CutPrefix(domain, "blastbeat-bridge-")
	if !ok {
		return -1
	}
	k, err := strconv.Atoi(s)
	if err != nil || k < 0 || k >= len(p.open) {
		return -1
	}
	return k
}

// candidate is a connection the placement may shut.
type candidate struct {
	fd       int
	endpoint string
}

// ipOnly reports whether a ZAP request's address is a TCP peer's (an IP
// address): a connection that is not TCP came through an ipc://
// endpoint, the first bridge's alone, where one shut would only come
// back.
func ipOnly(address string) bool { _, err := parseAddr(address); return err == nil }

// parseAddr parses a ZAP request's address (an IPv6 one may carry a
// zone, which the peer's address has not), as a plain 16-byte address.
func parseAddr(address string) (netip.Addr, error) {
	a, err := netip.ParseAddr(address)
	if err != nil {
		return a, err
	}
	return netip.AddrFrom16(a.WithZone("").As16()), nil
}

// tcpConns returns bridge k's open connections on tcp:// endpoints.
func (p *placement) tcpConns(k int) []candidate {
	p.mu.Lock()
	defer p.mu.Unlock()
	cands := make([]candidate, 0, len(p.open[k]))
	for fd, ep := range p.open[k] {
		if strings.HasPrefix(ep, "tcp://") {
			cands = append(cands, candidate{fd, ep})
		}
	}
	return cands
}

// overloaded reports whether bridge k, one of whose connections (counted)
// asks to complete its handshake, has more than another bridge would
// have with it, and may shut one (fewer than max shut in a row).
func (p *placement) overloaded(k int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	low := -1
	for j := range p.open {
		if j != k && (low < 0 || len(p.open[j]) < low) {
			low = len(p.open[j])
		}
	}
	if p.max <= 0 || len(p.open[k])-1 <= low || p.inRow >= p.max {
		p.inRow = 0
		return false
	}
	return true
}

// shut records that bridge k shut a connection (or found none to shut).
func (p *placement) shut(k int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok {
		p.inRow++
		p.denied[k]++
	} else {
		p.inRow = 0
	}
}

// accepted counts bridge k's new connection fd, accepted on endpoint.
func (p *placement) accepted(k, fd int, endpoint string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone[k][fd] {
		// Its disconnect came first (libzmq reports the accept from the
		// listener's thread, the disconnect from the connection's).
		delete(p.gone[k], fd)
		return
	}
	p.open[k][fd] = endpoint
}

// disconnected counts bridge k's connection fd gone.
func (p *placement) disconnected(k, fd int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.open[k][fd]; !ok {
		p.gone[k][fd] = true
		return
	}
	delete(p.open[k], fd)
}

// count returns bridge k's open connections.
func (p *placement) count(k int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.open[k])
}

// deniedBy returns how many connections bridge k shut.
func (p *placement) deniedBy(k int) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.denied[k]
}

// waitingFrom returns those of cands that are still connections from
// address waiting for the proxy's READY (nothing past a greeting sent on
// them).
func waitingFrom(cands []candidate, address string) []candidate {
	var out []candidate
	for _, c := range cands {
		if checkWaiting(c, address, false) {
			out = append(out, c)
		}
	}
	return out
}

// shutOne shuts one of cands that is still waiting (waitingFrom), and
// reports whether it found one.
func shutOne(cands []candidate, address string) bool {
	for _, c := range cands {
		if checkWaiting(c, address, true) {
			return true
		}
	}
	return false
}

// checkWaiting reports whether c is a connection from address waiting for
// the proxy's READY, and with shut shuts it (libzmq then sees it end).
// The descriptor is duplicated first and the duplicate checked, so that
// a number libzmq closed and the process reused meanwhile (for a
// client's connection, say) is left alone.
func checkWaiting(c candidate, address string, shut bool) bool {
	_, portStr, err := net.SplitHostPort(strings.TrimPrefix(c.endpoint, "tcp://"))
	if err != nil {
		return false
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return false
	}
	dup, err := unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return false // closed already
	}
	defer unix.Close(dup)
	if listening, err := unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || listening != 0 {
		return false
	}
	local, err := unix.Getsockname(dup)
	if err != nil || sockPort(local) != port {
		return false
	}
	want, err := parseAddr(address)
	if err != nil {
		return false
	}
	peer, err := unix.Getpeername(dup)
	if err != nil || sockAddr(peer) != want {
		return false
	}
	info, err := unix.GetsockoptTCPInfo(dup, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil || info.State != tcpEstablished || info.Bytes_sent > greeting {
		// Shut already, or READY went: the node may be sending messages.
		return false
	}
	return !shut || unix.Shutdown(dup, unix.SHUT_RDWR) == nil
}

func sockPort(sa unix.Sockaddr) int {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return -1
}

// sockAddr returns a socket address's IP as a plain 16-byte address.
func sockAddr(sa unix.Sockaddr) netip.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom16(netip.AddrFrom4(a.Addr).As16())
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr)
	}
	return netip.Addr{}
}

// tcpEstablished is TCP_ESTABLISHED in struct tcp_info's state.
const tcpEstablished = 1

// tcpInfoProbe checks on a loopback connection that TCP_INFO counts the
// bytes sent (tcpi_bytes_sent, Linux 4.19): older kernels leave it 0,
// which would make every connection look fresh.
func tcpInfoProbe() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		return err
	}
	defer s.Close()
	const n = 100
	if _, err := c.Write(make([]byte, n)); err != nil {
		return err
	}
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var info *unix.TCPInfo
	var ierr error
	if err := raw.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		return err
	}
	if ierr != nil {
		return ierr
	}
	if info.Bytes_sent != n || info.State != tcpEstablished {
		return fmt.Errorf("TCP_INFO: %d bytes sent, state %d, after %d bytes written", info.Bytes_sent, info.State, n)
	}
	return nil
}

// start makes the placement's sockets in zctx, before any bridge binds:
// the ZAP handler (with Rebalance) and one monitor socket per bridge,
// which connects to the address its bridge's ROUTER then reports on
// (monitorAddr); and runs the goroutine that serves them all.
func (p *placement) start(zctx *zmq.Context) (err error) {
	var socks []*zmq.Socket
	defer func() {
		if err != nil {
			for _, s := range socks {
				s.Close()
			}
		}
	}()
	p.zctx = zctx
	if p.max > 0 {
		zap, err := bindZAP(zctx)
		if err != nil {
			return err
		}
		socks = append(socks, zap)
		p.zap = zap
	}
	p.mons = make([]*zmq.Socket, len(p.open))
	for k := range p.mons {
		mon, err := zctx.NewSocket(zmq.PAIR)
		if err != nil {
			return fmt.Errorf("zmqbridge: monitor socket: %w", err)
		}
		socks = append(socks, mon)
		if err := errors.Join(mon.SetLinger(0), mon.Connect(p.monitorAddr(k))); err != nil {
			return fmt.Errorf("zmqbridge: monitor socket: %w", err)
		}
		p.mons[k] = mon
	}
	go p.run()
	return nil
}

// bindZAP makes the ZAP handler's socket in zctx.
func bindZAP(zctx *zmq.Context) (*zmq.Socket, error) {
	zap, err := zctx.NewSocket(zmq.REP)
	if err != nil {
		return nil, fmt.Errorf("zmqbridge: ZAP socket: %w", err)
	}
	if err := errors.Join(zap.SetLinger(0), zap.Bind(zapEndpoint)); err != nil {
		zap.Close()
		return nil, fmt.Errorf("zmqbridge: ZAP handler: %w", err)
	}
	return zap, nil
}

// newZAP makes the ZAP handler's socket anew, or returns nil (logged):
// libzmq then lets every connection through, unbalanced.
func (p *placement) newZAP() *zmq.Socket {
	zap, err := bindZAP(p.zctx)
	if err != nil {
		p.log.Error("zmqbridge: no ZAP handler any more: nodes' connections are no longer evened out over the bridges", "error", err)
		return nil
	}
	return zap
}

// monitorAddr is where bridge k's ROUTER reports its connections.
func (p *placement) monitorAddr(k int) string {
	return fmt.Sprintf("inproc://blastbeat-conns-%p-%d", p, k)
}

// run serves the monitors' events and the ZAP requests, in one goroutine
// so that a ZAP request is decided after every event sent before it (the
// accept of the connection it is about, notably), until every bridge's
// monitor stopped or the context ends. It closes the sockets.
func (p *placement) run() {
	socks := p.mons
	if p.zap != nil {
		socks = append([]*zmq.Socket{p.zap}, p.mons...)
	}
	defer func() {
		for _, s := range socks {
			s.Close()
		}
	}()
	poller := zmq.NewPoller()
	for _, s := range socks {
		poller.Add(s, zmq.POLLIN)
	}
	stopped := make([]bool, len(p.mons))
	left := len(p.mons)
	drain := func() bool { // false: the context ends
		for k, mon := range p.mons {
			for !stopped[k] {
				ev, addr, fd, err := mon.RecvEvent(zmq.DONTWAIT)
				if err != nil {
					if zmq.AsErrno(err) == zmq.ETERM {
						return false
					}
					if zmq.AsErrno(err) == zmq.Errno(unix.EAGAIN) {
						break
					}
					continue // a malformed event; the next one is whole
				}
				switch ev {
				case zmq.EVENT_ACCEPTED:
					p.accepted(k, fd, addr)
				case zmq.EVENT_DISCONNECTED:
					p.disconnected(k, fd)
				case zmq.EVENT_MONITOR_STOPPED:
					stopped[k] = true
					left--
				}
			}
		}
		return true
	}
	monitors := zmq.NewPoller()
	for _, mon := range p.mons {
		monitors.Add(mon, zmq.POLLIN)
	}
	settle := func(d time.Duration) {
		_, _ = monitors.Poll(d)
		drain() // an ending context shows at the next Poll
	}
	for left > 0 {
		if _, err := poller.Poll(-1); err != nil && zmq.AsErrno(err) == zmq.ETERM {
			return
		}
		if !drain() {
			return
		}
		for p.zap != nil {
			req, err := p.zap.RecvMessage(zmq.DONTWAIT)
			if err != nil {
				if zmq.AsErrno(err) == zmq.ETERM {
					return
				}
				break
			}
			if !drain() { // what came meanwhile
				return
			}
			if _, err := p.zap.SendMessage(p.answer(req, settle)...); err != nil {
				if zmq.AsErrno(err) == zmq.ETERM {
					return
				}
				// The REP socket would wait for a send for ever, and every
				// handshake for its answer: make it anew.
				p.log.Error("zmqbridge: the ZAP handler's answer failed; the handler starts over", "error", err)
				poller.RemoveBySocket(p.zap)
				p.zap.Close()
				if p.zap = p.newZAP(); p.zap == nil {
					socks = p.mons
					break
				}
				socks = append([]*zmq.Socket{p.zap}, p.mons...)
				poller.Add(p.zap, zmq.POLLIN)
			}
		}
	}
}

// acceptWait bounds how long a ZAP request waits for the accept of its
// connection to be counted: libzmq reports the accept only after it
// handed the connection to an I/O thread, which may be through the
// greeting by then. Only a request whose accept has not been seen waits
// (usually none: the event comes within microseconds); 50 ms was too
// short on a loaded machine (the full -race suite on 2 cores once let a
// connection through uncounted: TestPlacementEvensConcurrentNodes saw
// [1 2 1 0]).
const acceptWait = 250 * time.Millisecond

// answer decides a ZAP request (RFC 27: version, request id, domain,
// address, identity, mechanism, credentials…) and returns the reply's
// frames. Every connection is let through (a ZAP refusal would stop the
// node's libzmq from reconnecting); the placement may shut the
// connection instead (see above). settle waits up to its argument for
// the monitors' next events and counts them.
func (p *placement) answer(req []string, settle func(time.Duration)) []any {
	id := ""
	if len(req) >= 2 {
		id = req[1]
	}
	ok := []any{"1.0", id, "200", "OK", "", ""}
	if len(req) < 6 || req[0] != "1.0" {
		return ok // malformed: a refusal would stop the peer's libzmq from reconnecting
	}
	k, address := p.bridgeOf(req[2]), req[3]
	if k < 0 || p.max <= 0 || !ipOnly(address) {
		return ok
	}
	// The connection asking must be counted (and found) first.
	waiting := waitingFrom(p.tcpConns(k), address)
	for deadline := time.Now().Add(acceptWait); len(waiting) == 0 && time.Now().Before(deadline); {
		settle(time.Millisecond)
		waiting = waitingFrom(p.tcpConns(k), address)
	}
	if len(waiting) == 0 {
		p.log.Debug("zmqbridge: a node's connection is not counted yet; let through", "bridge", k, "address", address)
		return ok
	}
	// Which of several waiting from this address asks is unknown; any
	// of them is as good to shut: none has had the proxy's READY yet, so
	// none has a message on its way either way.
	if !p.overloaded(k) {
		return ok
	}
	shut := shutOne(waiting, address)
	p.shut(k, shut)
	if shut {
		p.log.Debug("zmqbridge: a node's connection shut in its handshake, to even out the bridges; it reconnects", "bridge", k, "address", address)
	}
	return ok
}

// affinity returns the I/O threads of bridge k, of n bridges with m
// each, as a ZMQ_AFFINITY mask (libzmq numbers a context's threads from
// 0), or false when they do not fit in its 64 bits.
func affinity(k, m int) (uint64, bool) {
	if m < 1 || (k+1)*m > 64 {
		return 0, false
	}
	return (uint64(1)<<m - 1) << (k * m), true
}

// joinPlacement sets the ROUTER's ZAP domain and I/O threads (with
// Rebalance) and its monitor: call it before binding, so that no
// connection goes uncounted.
//
// With Rebalance the bridges end up with their share of the nodes each,
// and each bridge's connections are served by IOThreads I/O threads of
// its own (ZMQ_AFFINITY): libzmq counts a connection on the thread it
// picked only once that thread has taken it, so nodes that connect at the
// same moment (as rebalanced nodes reconnecting do) would otherwise pile
// onto one thread of the shared pool.
func (b *Bridge) joinPlacement() error {
	if b.cfg.place.max > 0 {
		if err := b.sock.SetZapDomain(zapDomain(b.cfg.placeIndex)); err != nil {
			return fmt.Errorf("zmqbridge: ZAP domain: %w", err)
		}
		// All bridges pinned, or none (the masks fit in 64 bits).
		m := max(1, b.cfg.IOThreads)
		if _, ok := affinity(len(b.cfg.place.open)-1, m); ok {
			mask, _ := affinity(b.cfg.placeIndex, m)
			if err := b.sock.SetAffinity(mask); err != nil {
				return fmt.Errorf("zmqbridge: affinity: %w", err)
			}
		}
	}
	err := b.sock.Monitor(b.cfg.place.monitorAddr(b.cfg.placeIndex), zmq.EVENT_ACCEPTED|zmq.EVENT_DISCONNECTED|zmq.EVENT_MONITOR_STOPPED)
	if err != nil {
		return fmt.Errorf("zmqbridge: monitor: %w", err)
	}
	return nil
}

// Conns returns the nodes' connections open on this bridge, or -1 when
// it does not count them (it is the only bridge).
func (b *Bridge) Conns() int {
	if b.cfg.place == nil {
		return -1
	}
	return b.cfg.place.count(b.cfg.placeIndex)
}
