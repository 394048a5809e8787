package zmqbridge

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"

	zmq "github.com/pebbe/zmq4"
	"golang.org/x/sys/unix"
)

// bind binds endpoint i, on the listening socket UseFDs gives for it if
// any. libzmq owns that socket once bound; on failure it is closed here.
func (b *Bridge) bind(i int, ep string) error {
	fd := -1
	if i < len(b.cfg.UseFDs) {
		fd = b.cfg.UseFDs[i]
	}
	if fd < 0 {
		return b.sock.Bind(ep)
	}
	if err := b.sock.SetUseFd(fd); err != nil {
		unix.Close(fd)
		return err
	}
	err := b.sock.Bind(ep)
	if err != nil {
		unix.Close(fd)
	}
	if rerr := b.sock.SetUseFd(-1); err == nil {
		err = rerr
	}
	return err
}

// ShareEndpoints prepares n bridges' endpoints for one ZeroMQ address
// set: every tcp:// endpoint gets n listening sockets on the same address
// with SO_REUSEPORT, one per bridge, and the kernel spreads the nodes'
// connections over them; an ipc:// (or other) endpoint is bound by the
// first bridge only. It returns, per bridge, the endpoints to bind and the
// matching UseFDs (Config). A tcp:// host must be an address, a name, or
// * (any); port 0 or * picks one port for all.
func ShareEndpoints(endpoints []string, n int) (eps [][]string, fds [][]int, err error) {
	eps, fds = make([][]string, n), make([][]int, n)
	// On error every socket opened so far is closed here: the returns
	// below hand fds to this, not nil.
	defer func() {
		if err != nil {
			for _, f := range fds {
				closeFDs(f)
			}
			eps, fds = nil, nil
		}
	}()
	for _, ep := range endpoints {
		hostport, ok := strings.CutPrefix(ep, "tcp://")
		if !ok || n == 1 {
			eps[0] = append(eps[0], ep)
			fds[0] = append(fds[0], -1)
			continue
		}
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			return eps, fds, fmt.Errorf("zmqbridge: %s: %w", ep, err)
		}
		if host == "*" {
			host = ""
		}
		if port == "*" {
			port = "0"
		}
		addr := net.JoinHostPort(host, port)
		if port != "0" {
			// Something listening there already with SO_REUSEPORT (another
			// proxy of this user) would silently share the nodes with
			// this one: refuse, as one bridge does.
			if err := probeFree(addr); err != nil {
				return eps, fds, fmt.Errorf("zmqbridge: %s: %w", ep, err)
			}
		}
		for k := range n {
			fd, bound, err := reusePortListen(addr)
			if err != nil {
				return eps, fds, fmt.Errorf("zmqbridge: %s: %w", ep, err)
			}
			addr = bound // the port the first one got, for port 0
			eps[k] = append(eps[k], "tcp://"+bound)
			fds[k] = append(fds[k], fd)
		}
	}
	return eps, fds, nil
}

// probeFree reports an error when addr cannot be listened on without
// SO_REUSEPORT: something listens there already.
func probeFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// reusePortListen opens a non-blocking listening TCP socket on addr with
// SO_REUSEPORT and returns its descriptor and bound address.
func reusePortListen(addr string) (int, string, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return -1, "", err
	}
	defer l.Close() // libzmq gets a duplicate
	rc, err := l.(*net.TCPListener).SyscallConn()
	if err != nil {
		return -1, "", err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(lfd uintptr) { fd, derr = unix.FcntlInt(lfd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, "", err
	}
	if derr == nil {
		derr = unix.SetNonblock(fd, true)
	}
	if derr != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, "", derr
	}
	return fd, l.Addr().String(), nil
}

// StartShared starts n bridges behind cfg.Endpoints (ShareEndpoints), the
// k-th with handler(k); n == 1 is Start. They share one libzmq context of
// n × cfg.IOThreads I/O threads. The kernel's SO_REUSEPORT hash picks a
// node's bridge (with as many nodes as bridges, some get two and some
// none); with cfg.Rebalance the placement evens the bridges out
// (placement.go) and each bridge's connections are served by IOThreads
// threads of its own; without, libzmq serves each new connection on the
// least loaded thread of them all, so that no I/O thread serves two
// nodes while another serves none.
// On error none runs and every listening socket is closed.
func StartShared(cfg Config, n int, handler func(k int) Handler) ([]*Bridge, error) {
	if n <= 1 {
		b, err := Start(cfg, handler(0))
		if err != nil {
			return nil, err
		}
		return []*Bridge{b}, nil
	}
	eps, fds, err := ShareEndpoints(cfg.Endpoints, n)
	if err != nil {
		return nil, err
	}
	closeFrom := func(k int) { // the listening sockets not handed to bridges
		for _, f := range fds[k:] {
			closeFDs(f)
		}
	}
	zctx, err := newContext(n * max(1, cfg.IOThreads))
	if err != nil {
		closeFrom(0)
		return nil, err
	}
	shared := &sharedContext{ctx: zctx}
	place := newPlacement(n, cfg.Rebalance, cfg.Logger)
	if err := place.start(zctx); err != nil {
		closeFrom(0)
		_ = zctx.Term()
		return nil, err
	}
	shared.acquire()
	defer shared.release() // the bridges hold it from here on
	var started []*Bridge
	for k := range n {
		c := cfg
		c.Endpoints, c.UseFDs = eps[k], fds[k]
		c.shared = shared
		c.place, c.placeIndex = place, k
		b, err := Start(c, handler(k)) // closes c.UseFDs on error
		if err != nil {
			for _, b := range started {
				b.Stop()
			}
			closeFrom(k + 1)
			return nil, fmt.Errorf("zmqbridge: bridge %d of %d: %w", k+1, n, err)
		}
		started = append(started, b)
	}
	return started, nil
}

// closeFDs closes the listening sockets of fds that libzmq did not take.
func closeFDs(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// sharedContext is the libzmq context of several bridges, ended by the
// last one to let go of it. A nil one is none (each bridge has its own).
type sharedContext struct {
	ctx  *zmq.Context
	refs atomic.Int32
	// lent: a bridge let go while libzmq still held bodies lent to it;
	// the last release then ends the context in a goroutine of its own,
	// since Term waits for those bodies, and a bridge's Stop must not.
	lent atomic.Bool
}

func (c *sharedContext) context() *zmq.Context {
	if c == nil {
		return nil
	}
	return c.ctx
}

func (c *sharedContext) acquire() {
	if c != nil {
		c.refs.Add(1)
	}
}

// release lets go of the context; the last hold ends it (once every
// socket in it is closed: libzmq waits for them).
func (c *sharedContext) release() {
	if c != nil && c.refs.Add(-1) == 0 {
		if c.lent.Load() {
			go c.ctx.Term()
			return
		}
		_ = c.ctx.Term()
	}
}
