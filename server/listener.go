package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"

	"github.com/blastbeat/blastbeat/internal/tlsconf"
)

// listener is one address the server accepts connections on. Immutable
// after newListeners, but for its counters.
type listener struct {
	addr  string                           // host:port as configured
	port  string                           // its port, for SERVER_PORT and redirects
	ip    net.IP                           // its IP; nil when unspecified (0.0.0.0, [::])
	pnum  int                              // port parsed
	tls   *tls.Config                      // nil: plain HTTP
	certs atomic.Pointer[tlsconf.Listener] // bind-ssl: swapped by SetCertificates
	// conns counts the connections it accepted that are open: a reload
	// that closed it keeps its routing while some are (buildRouting).
	conns atomic.Int64
}

// listeners are every address the server accepts connections on; which
// virtual hosts each serves is the routing's (routing.go), which a reload
// replaces. Immutable after newListeners.
type listeners struct {
	all    []*listener
	byAddr map[string]*listener
	byPort map[int][]*listener
}

// newListeners builds the listeners of opts: the [blastbeat] binds and
// every vhost's bind and bind-ssl. An address cannot be both plain and
// TLS, and every bind-ssl address needs its certificates in opts.TLS.
// With prev (a reload), an address prev has keeps its listener (with the
// new certificates stored by the caller); it must keep its kind.
func newListeners(opts *Options, prev *listeners) (*listeners, error) {
	ls := newListenerSet()
	get := func(addr string, secure bool) (*listener, error) {
		if ln := ls.byAddr[addr]; ln != nil {
			if (ln.tls != nil) != secure {
				return nil, fmt.Errorf("server: %s is both a bind and a bind-ssl address", addr)
			}
			return ln, nil
		}
		if prev != nil {
			if ln := prev.byAddr[addr]; ln != nil {
				if (ln.tls != nil) != secure {
					return nil, fmt.Errorf("server: %s changes between bind and bind-ssl: that needs a restart", addr)
				}
				if secure && opts.TLS[addr] == nil {
					return nil, fmt.Errorf("server: bind-ssl %s: no certificates loaded", addr)
				}
				ls.add(ln)
				return ln, nil
			}
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("server: listen address %s: %w", addr, err)
		}
		ip := net.ParseIP(host)
		if ip == nil && host != "" {
			// A host name: the address the bind will take, as net.Listen
			// resolves it (its first), so that the connections it
			// accepts are told from another listener's on that port.
			if ta, err := net.ResolveTCPAddr("tcp", addr); err == nil {
				ip = ta.IP
			}
		}
		if ip != nil && ip.IsUnspecified() {
			ip = nil
		}
		pnum, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("server: listen address %s: bad port", addr)
		}
		ln := &listener{addr: addr, port: port, ip: ip, pnum: pnum}
		if secure {
			certs := opts.TLS[addr]
			if certs == nil {
				return nil, fmt.Errorf("server: bind-ssl %s: no certificates loaded", addr)
			}
			alpn := []string{"http/1.1"}
			if opts.HTTP2 {
				alpn = []string{"h2", "http/1.1"} // §3.2: h2 first
			}
			ln.certs.Store(certs)
			ln.tls = certs.Config(alpn)
			// Handshakes read the certificates through the listener, so
			// that SetCertificates (and a reload) applies to new ones.
			ln.tls.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				return ln.certs.Load().Certificate(hello.ServerName), nil
			}
		}
		ls.add(ln)
		return ln, nil
	}
	for _, b := range opts.Binds {
		if _, err := get(b.Addr, false); err != nil {
			return nil, err
		}
	}
	for _, v := range opts.VHosts {
		for _, b := range v.Binds {
			if _, err := get(b.Addr, false); err != nil {
				return nil, err
			}
		}
		for _, b := range v.BindSSL {
			if _, err := get(b.Addr, true); err != nil {
				return nil, err
			}
		}
	}
	if len(ls.all) == 0 {
		return nil, fmt.Errorf("server: no bind address")
	}
	return ls, nil
}

func newListenerSet() *listeners {
	return &listeners{byAddr: map[string]*listener{}, byPort: map[int][]*listener{}}
}

// add puts ln in the set (an address once: a later one is ignored).
func (ls *listeners) add(ln *listener) {
	if ls.byAddr[ln.addr] != nil {
		return
	}
	ls.byAddr[ln.addr] = ln
	ls.all = append(ls.all, ln)
	ls.byPort[ln.pnum] = append(ls.byPort[ln.pnum], ln)
}

// of returns the listener that accepted a connection whose local address
// is local: the one bound to that IP and port, else the one bound to the
// unspecified address with that port.
func (ls *listeners) of(local net.Addr) *listener {
	a, ok := local.(*net.TCPAddr)
	if !ok {
		return ls.all[0]
	}
	// Compared as parsed values: formatting them would allocate for
	// every connection.
	cands := ls.byPort[a.Port]
	var any *listener
	for _, ln := range cands {
		switch {
		case ln.ip == nil:
			any = ln
		case ln.ip.Equal(a.IP):
			return ln
		}
	}
	if any == nil && len(cands) > 0 {
		any = cands[0]
	}
	if any == nil {
		any = ls.all[0]
	}
	return any
}

// SetCertificates replaces the certificates of the bind-ssl listeners
// (loaded and checked by the caller with tlsconf, as at the start): new
// handshakes use them, connections already open keep theirs. It is the
// hook for a reload on SIGHUP. Every bind-ssl address must be in certs;
// addresses are not added or removed here. Safe from any goroutine.
func (s *Server) SetCertificates(certs map[string]*tlsconf.Listener) error {
	all := s.lns.Load().all
	for _, ln := range all {
		if ln.tls != nil && certs[ln.addr] == nil {
			return fmt.Errorf("server: bind-ssl %s: no certificates given", ln.addr)
		}
	}
	for _, ln := range all {
		if ln.tls != nil {
			ln.certs.Store(certs[ln.addr])
		}
	}
	return nil
}
