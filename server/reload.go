package server

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/blastbeat/blastbeat/config"
)

// Reload applies a new configuration to the running server (SIGHUP, the
// uWSGI Emperor's reload): the virtual hosts (names, aliases, nodes,
// formats, per-vhost limits and keys), the nodes (new ones are connected
// and pinged; removed ones keep their sessions until these end), the
// listen addresses (new ones are bound, removed ones closed: the
// connections they accepted go on) and the certificates of the bind-ssl
// listeners. New connections and sessions, and the next request of a
// keep-alive connection, follow it; connections, WebSockets, HTTP/2
// streams and requests in flight go on as they started.
//
// What cannot apply is refused, and the running configuration stays: an
// address that cannot be bound, one that changes between bind and
// bind-ssl, more nodes than max-nodes. The [blastbeat] keys that shape
// connections and the bridge (limits, timeouts, ping-freq, zmq, …) apply
// at the next start: their changes are returned in restartKeys, for the
// caller to log. Safe from any goroutine; one reload at a time.
func (s *Server) Reload(opts Options) (restartKeys []string, err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.draining.Load() {
		return nil, errors.New("reload refused: the server is stopping")
	}
	cur := s.lns.Load()
	// http2, like every [blastbeat] key, applies at the next start: a
	// bind-ssl listener the reload adds offers what the others do.
	lopts := opts
	lopts.HTTP2 = s.opts.HTTP2
	next, err := newListeners(&lopts, cur)
	if err != nil {
		return nil, fmt.Errorf("reload refused: %w", err)
	}
	for _, ln := range cur.all {
		if _, ok := s.opts.Inherited[ln.addr]; ok && next.byAddr[ln.addr] == nil {
			// Closing the proxy's copy would leave systemd's open: clients
			// would connect, and wait in its backlog for nobody.
			return nil, fmt.Errorf("reload refused: bind %s is a socket systemd passed in (socket activation): removing it needs a restart", ln.addr)
		}
	}
	prev := s.rt.Load()
	// The global timeout, response-idle-timeout and max-body, like every
	// [blastbeat] key, apply at the next start: vhosts that set none
	// inherit the running ones.
	ropts := opts
	ropts.Timeout, ropts.MaxBody = s.opts.Timeout, s.opts.MaxBody
	ropts.ResponseIdleTimeout = s.opts.ResponseIdleTimeout
	rt, added, err := buildRouting(&ropts, next, prev, cur, len(s.loops))
	if err != nil {
		return nil, fmt.Errorf("reload refused: %w", err)
	}
	// New nodes get their indexes in the bridges once nothing can refuse
	// the reload any more, and before any session can name them (the
	// routing is published after): a refused reload must not leave
	// indexes the running configuration does not have, or the next
	// reload's new nodes would be numbered apart from the bridges'.
	if n := len(rt.nodes.Nodes()); n > s.maxNodes {
		return nil, fmt.Errorf("reload refused: %d nodes, more than max-nodes (%d): the names of nodes a reload removed count until a restart, which also applies a new max-nodes", n, s.maxNodes)
	}
	// While listeners open and close, connections are accepted on both
	// sets: publish their union first, the new routing (which serves
	// both) once the new listeners are bound, and the new set once the
	// old are shut. (A request on a new listener in the microseconds
	// before the routing is published is answered by the old: a 404.)
	union := newListenerSet()
	for _, set := range []*listeners{next, cur} {
		for _, ln := range set.all {
			union.add(ln)
		}
	}
	s.lns.Store(union)
	var opened []*listener
	for _, ln := range next.all {
		if cur.byAddr[ln.addr] != nil {
			continue
		}
		if err := s.eng.AddListener("tcp://" + ln.addr); err != nil {
			s.closeOpened(opened, cur)
			return nil, fmt.Errorf("reload refused: listen %s: %w%s", ln.addr, err, portHeld(ln, cur, next, err))
		}
		opened = append(opened, ln)
	}
	// The bridges ping the new nodes as soon as they know them: a pong
	// that comes before the routing is published must still count (it
	// was dropped as a stranger's, and the node served nobody until the
	// next ping, ping-freq later). Deliver looks here on a miss.
	s.adding.Store(rt)
	defer s.adding.Store(nil)
	for _, b := range s.bridges {
		if len(added) == 0 {
			break
		}
		// Each bridge numbers them alike: they all got the same
		// identities, in the same order, and the same max-nodes (checked
		// above, so this cannot fail but for a bug).
		if err := b.AddIdentities(added); err != nil {
			s.closeOpened(opened, cur)
			return nil, fmt.Errorf("reload refused: %w (max-nodes)", err)
		}
	}
	for _, ln := range next.all {
		if ln.tls != nil && cur.byAddr[ln.addr] != nil {
			ln.certs.Store(opts.TLS[ln.addr])
		}
	}
	s.rt.Store(rt)
	closed := false
	for _, ln := range cur.all {
		if next.byAddr[ln.addr] == nil {
			if err := s.eng.CloseListener(s.protoAddr(ln)); err != nil {
				s.opts.Logger.Warn("reload: closing a listener", "addr", ln.addr, "err", err)
			}
			closed = true
		}
	}
	if closed {
		s.loopsSettled()
	}
	s.lns.Store(next)
	s.logReloaded(cur, next, added)
	return changedKeys(&s.given, &opts.Options), nil
}

// logReloaded says what a reload changed besides the routing: the
// addresses it bound and closed, the node names it added.
func (s *Server) logReloaded(cur, next *listeners, added []string) {
	var bound, closed []string
	for _, ln := range next.all {
		if cur.byAddr[ln.addr] == nil {
			bound = append(bound, ln.addr)
		}
	}
	for _, ln := range cur.all {
		if next.byAddr[ln.addr] == nil {
			closed = append(closed, ln.addr)
		}
	}
	if len(bound)+len(closed)+len(added) > 0 {
		s.opts.Logger.Info("reload: listeners and nodes", "bound", bound, "closed", closed, "new_nodes", added)
	}
}

// closeOpened closes the listeners a refused reload opened and publishes
// cur again, once connections they accepted have reached OnOpen.
func (s *Server) closeOpened(opened []*listener, cur *listeners) {
	for _, o := range opened {
		_ = s.eng.CloseListener(s.protoAddr(o))
	}
	if len(opened) > 0 {
		s.loopsSettled()
	}
	s.lns.Store(cur)
}

// loopsSettled waits (up to loopsSettleWait) until every loop has run
// what was queued to it before: with several loops the main reactor
// accepts and queues each connection's registration to a loop, whose
// OnOpen looks its listener up in the published set. A connection a
// listener accepted just before a reload closed it must still find it
// there: published without it, the connection would be taken for
// another listener's (TLS for plain, another vhost set).
func (s *Server) loopsSettled() {
	done := make(chan struct{}, len(s.loops))
	queued := 0
	for _, l := range s.loops {
		// A loop that never had a connection has no gnet loop known
		// yet, and nothing queued that its OnOpen could mistake.
		if l.execute(func() { done <- struct{}{} }) {
			queued++
		}
	}
	t := time.NewTimer(loopsSettleWait)
	defer t.Stop()
	for range queued {
		select {
		case <-done:
		case <-t.C:
			s.opts.Logger.Warn("reload: an event loop did not run a task in time; published the new listeners without it", "waited", loopsSettleWait)
			return
		}
	}
}

// loopsSettleWait bounds loopsSettled: a loop runs its queued tasks
// within microseconds unless it is stuck.
const loopsSettleWait = 5 * time.Second

// portHeld explains an address a reload could not bind because a
// listener it removes holds the port (127.0.0.1:8080 moved to
// 0.0.0.0:8080: the new socket is bound while the old still listens).
func portHeld(ln *listener, cur, next *listeners, err error) string {
	if !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "address already in use") {
		return ""
	}
	for _, o := range cur.all {
		// The same port, and addresses that overlap (one unspecified,
		// or equal): another process may hold an unrelated address.
		overlap := o.ip == nil || ln.ip == nil || o.ip.Equal(ln.ip)
		if o.pnum == ln.pnum && overlap && next.byAddr[o.addr] == nil {
			return fmt.Sprintf(" (the proxy's own listener %s, which this reload removes, holds the port: moving a bind to an overlapping address needs a restart)", o.addr)
		}
	}
	return ""
}

// protoAddr is how the engine names ln: fd://N for an inherited socket.
func (s *Server) protoAddr(ln *listener) string {
	if fd, ok := s.opts.Inherited[ln.addr]; ok {
		return "fd://" + strconv.Itoa(fd)
	}
	return "tcp://" + ln.addr
}

// changedKeys names the [blastbeat] keys whose values differ between a
// and b (the vhosts, the file and what Reload applies left out).
func changedKeys(a, b *config.Options) []string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	t := va.Type()
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Name
		if slices.Contains([]string{"VHosts", "File", "Ignored", "Certificate", "Key", "Binds"}, name) {
			continue
		}
		x, y := va.Field(i).Interface(), vb.Field(i).Interface()
		if bx, ok := x.([]config.Bind); ok {
			// Where a bind is in the file does not matter.
			x, y = bindAddrs(bx), bindAddrs(y.([]config.Bind))
		}
		if !reflect.DeepEqual(x, y) {
			out = append(out, keyName(name))
		}
	}
	return out
}

func bindAddrs(bs []config.Bind) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Addr
	}
	return out
}

// keyName turns a config.Options field name into its key: HTTP2MaxStreams
// is http2-max-streams.
func keyName(field string) string {
	switch field {
	case "ZMQHWM":
		return "zmq-hwm"
	case "ZMQIOThreads":
		return "zmq-io-threads"
	case "ZMQBridges":
		return "zmq-bridges"
	case "ZMQBusyPoll":
		return "zmq-busy-poll"
	case "ZMQRebalance":
		return "zmq-rebalance"
	case "TCPKeepAlive":
		return "tcp-keepalive"
	case "Binds":
		return "bind"
	}
	var b strings.Builder
	r := []rune(strings.ReplaceAll(field, "WebSocket", "Websocket")) // one word in keys
	for i, c := range r {
		upper := unicode.IsUpper(c)
		if i > 0 && upper && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) ||
			i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1])) {
			b.WriteByte('-')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
