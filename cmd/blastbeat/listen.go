package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/blastbeat/blastbeat/config"
)

// listenAddr is one address the server listens on, with the line that
// first names it.
type listenAddr struct {
	addr    string // host:port
	tls     bool   // from bind-ssl
	section string // without brackets
	line    int
}

// locate names a's config line in err: "FILE:LINE: [SECTION] bind ADDR: err".
func (a listenAddr) locate(file string, err error) error {
	return fmt.Errorf("%s:%d: [%s] %s %s: %w", file, a.line, a.section, a.key(), a.addr, err)
}

// key returns the config key that names a.
func (a listenAddr) key() string {
	if a.tls {
		return "bind-ssl"
	}
	return "bind"
}

// listenAddrs returns the listen addresses of cfg, each once, in the
// order the server binds them: the [blastbeat] binds, then each virtual
// host's bind and bind-ssl (server/listener.go, newListeners).
func listenAddrs(cfg *config.Options) []listenAddr {
	var out []listenAddr
	seen := map[string]bool{}
	add := func(bs []config.Bind, tls bool, section string) {
		for _, b := range bs {
			if !seen[b.Addr] {
				seen[b.Addr] = true
				out = append(out, listenAddr{addr: b.Addr, tls: tls, section: section, line: b.Line})
			}
		}
	}
	add(cfg.Binds, false, "blastbeat")
	for _, v := range cfg.VHosts {
		add(v.Binds, false, "blastbeat:"+v.Name)
		add(v.BindSSL, true, "blastbeat:"+v.Name)
	}
	return out
}

// locateListenError turns err, a failed server.Start, into an error
// naming the address and its config line ("FILE:LINE: [SECTION] bind
// ADDR: bind: address already in use") when it is a listen error and
// binding the addresses again finds the one that fails; otherwise it
// returns err. The server's error does not name the address.
//
// It takes the last address that fails in bind order: gnet (v2.9.7,
// createListeners) does not close the listeners it opened before the one
// that failed, so an earlier address may fail only because this process
// still holds it; the addresses after the failing one were never opened.
// The inherited addresses (socket activation) are not bound again.
func locateListenError(cfg *config.Options, inherited map[string]int, err error) error {
	if i := strings.Index(err.Error(), "zmqbridge: bind "); i >= 0 {
		// A zmq endpoint that cannot be bound: its line in the file.
		ep, msg, _ := strings.Cut(err.Error()[i+len("zmqbridge: bind "):], ": ")
		if line := keyLine(cfg.File, "zmq", ep); line > 0 {
			return fmt.Errorf("%s:%d: [blastbeat] zmq %s: %s", cfg.File, line, ep, msg)
		}
		return err
	}
	if !strings.HasPrefix(err.Error(), "server: listen:") {
		return err
	}
	found := err
	for _, a := range listenAddrs(cfg) {
		if _, ok := inherited[a.addr]; ok {
			continue
		}
		ln, lerr := net.Listen(network(a.addr), a.addr)
		if lerr == nil {
			ln.Close()
			continue
		}
		var op *net.OpError
		if errors.As(lerr, &op) { // "listen tcp ADDR: " says nothing more
			lerr = op.Err
		}
		found = a.locate(cfg.File, lerr)
	}
	return found
}

// keyLine returns the line of file where key is set to value (the
// first), or 0: for errors found after the config was loaded, which
// keeps no line for such keys.
func keyLine(file, key, value string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for i, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.TrimSpace(k) != key {
			continue
		}
		if i := strings.IndexAny(v, ";#"); i >= 0 {
			v = v[:i] // an inline comment
		}
		if strings.TrimSpace(v) == value {
			return i + 1
		}
	}
	return 0
}

// network returns the network gnet binds addr on: "tcp4" for an IPv4
// address, "tcp6" (IPv6 only) for an IPv6 one, else "tcp". ("tcp" alone
// would make net.Listen bind 0.0.0.0 as the dual-stack [::].)
func network(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	switch {
	case err != nil:
		return "tcp"
	case ap.Addr().Is4():
		return "tcp4"
	}
	return "tcp6"
}
