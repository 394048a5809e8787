package metrics

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// probeDeadline bounds a connection taken on a probe slot, its request
// and response included: a probe asks once and hangs up (Kubernetes
// waits 1 s by default), and a slot held longer is one the next probe
// lacks.
const probeDeadline = 2 * time.Second

// probeReserve is how many of maxConns stay for probes: an eighth, at
// least one when there are two or more.
func probeReserve(maxConns int) int {
	return max(maxConns/8, min(1, maxConns-1))
}

// slotListener serves at most max connections at once (more wait in the
// listen backlog, as with netutil.LimitListener) and keeps the last
// probeReserve(max) of them for /healthz and /readyz: scrapers and
// operators that hold their connections open (keep-alive, a slow
// reader) cannot shut a liveness probe out, which would restart a
// healthy proxy. A connection accepted while only reserved slots are
// free is a probe connection: it is served within probeDeadline and
// closed after one response, and any path but a probe's gets 503.
type slotListener struct {
	net.Listener
	slots     chan struct{} // one per open connection
	general   int           // slots any request may use
	used      atomic.Int64  // general slots in use
	probeLife time.Duration // a probe connection's life (probeDeadline)
	done      chan struct{}
	once      sync.Once
}

func newSlotListener(ln net.Listener, maxConns int) *slotListener {
	maxConns = max(maxConns, 1)
	return &slotListener{Listener: ln, slots: make(chan struct{}, maxConns),
		general: maxConns - probeReserve(maxConns), probeLife: probeDeadline, done: make(chan struct{})}
}

func (l *slotListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	if l.used.Add(1) <= int64(l.general) {
		return &slotConn{Conn: c, release: func() { l.used.Add(-1); <-l.slots }}, nil
	}
	l.used.Add(-1)
	until := time.Now().Add(l.probeLife)
	_ = c.SetDeadline(until)
	return &slotConn{Conn: c, probe: true, until: until, release: func() { <-l.slots }}, nil
}

func (l *slotListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// slotConn is a connection holding a slot until it closes. A probe
// connection's deadlines never reach past until: net/http sets its own
// for each request, which would otherwise lift it.
type slotConn struct {
	net.Conn
	probe   bool
	until   time.Time
	release func()
	once    sync.Once
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (c *slotConn) clamp(t time.Time) time.Time {
	if c.probe && (t.IsZero() || t.After(c.until)) {
		return c.until
	}
	return t
}

func (c *slotConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *slotConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *slotConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

// probeConnKey marks a request that came on a probe connection.
type probeConnKey struct{}

// connContext marks probe connections' requests (http.Server.ConnContext).
func connContext(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(*slotConn); ok && sc.probe {
		return context.WithValue(ctx, probeConnKey{}, true)
	}
	return ctx
}
