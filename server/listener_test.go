package server

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/internal/testcert"
	"github.com/blastbeat/blastbeat/internal/tlsconf"
)

// TestSetCertificates: the SIGHUP hook swaps a bind-ssl listener's
// certificates for new handshakes; an address left out is refused.
func TestSetCertificates(t *testing.T) {
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	load := func(name string) *tlsconf.Listener {
		cert, key, err := ca.Issue(testcert.Leaf{Name: name, DNSNames: []string{name + ".test"}})
		if err != nil {
			t.Fatal(err)
		}
		l, err := tlsconf.NewListener([]tlsconf.Site{{Names: []string{"a.test"}, CertFile: cert, KeyFile: key}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	const addr = "127.0.0.1:8443"
	o := Options{Options: config.Defaults(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	o.Workers = 1
	o.VHosts = []config.VHost{{Name: "a.test", Nodes: []string{"n"}, Format: "uwsgi", BindSSL: []config.Bind{{Addr: addr}}}}
	o.TLS = map[string]*tlsconf.Listener{addr: load("old")}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln := s.lns.Load().all[0]
	cn := func() string {
		c, err := ln.tls.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.test"})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.Subject.CommonName
	}
	if got := cn(); got != "old.test" {
		t.Fatalf("before: %s", got)
	}
	if err := s.SetCertificates(map[string]*tlsconf.Listener{addr: load("new")}); err != nil {
		t.Fatal(err)
	}
	if got := cn(); got != "new.test" {
		t.Fatalf("after SetCertificates: %s", got)
	}
	if err := s.SetCertificates(map[string]*tlsconf.Listener{}); err == nil {
		t.Fatal("a bind-ssl address without certificates was accepted")
	}
	if got := cn(); got != "new.test" {
		t.Fatalf("after a refused swap: %s", got)
	}
}

// TestListenerOf: a connection's local address finds the listener bound
// to that IP and port, else the one on the unspecified address with that
// port, with no allocation.
func TestListenerOf(t *testing.T) {
	ls := newListenerSet()
	mk := func(addr, port string, ip net.IP, pnum int) *listener {
		ln := &listener{addr: addr, port: port, ip: ip, pnum: pnum}
		ls.add(ln)
		return ln
	}
	lo := mk("127.0.0.2:8080", "8080", net.ParseIP("127.0.0.2"), 8080)
	any := mk("0.0.0.0:8080", "8080", nil, 8080)
	v6 := mk("[::1]:9090", "9090", net.ParseIP("::1"), 9090)
	for _, tt := range []struct {
		local *net.TCPAddr
		want  *listener
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 8080}, lo},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 2).To4(), Port: 8080}, lo},
		{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8080}, any},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 9090}, v6},
	} {
		if got := ls.of(tt.local); got != tt.want {
			t.Errorf("of(%v) = %s, want %s", tt.local, got.addr, tt.want.addr)
		}
	}
	local := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8080}
	if a := testing.AllocsPerRun(100, func() { ls.of(local) }); a != 0 {
		t.Errorf("of: %.1f allocations, want 0", a)
	}
}

// TestListenerBadPort: options that did not come through config (which
// checks every port) are refused with the address named, not bound.
func TestListenerBadPort(t *testing.T) {
	o := testOptions()
	o.Binds = []config.Bind{{Addr: "127.0.0.1:http"}}
	if _, err := newListeners(&o, nil); err == nil || !strings.Contains(err.Error(), "127.0.0.1:http") {
		t.Fatalf("newListeners with port http: %v, want an error naming the address", err)
	}
}

// TestListenerByHostName: a bind by host name is the address it resolves
// to, not a wildcard: beside a 0.0.0.0 bind on the same port, the
// connections to other addresses are the wildcard's. Before, both were
// wildcards and the last one took them all.
func TestListenerByHostName(t *testing.T) {
	o := Options{Options: config.Defaults()}
	o.Binds = []config.Bind{{Addr: "0.0.0.0:8080"}, {Addr: "localhost:8080"}}
	ls, err := newListeners(&o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ls.of(&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8080}); got.addr != "0.0.0.0:8080" {
		t.Errorf("a connection to 10.1.2.3:8080 is %s's, want the wildcard's", got.addr)
	}
	if got := ls.of(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}); got.addr != "localhost:8080" {
		t.Errorf("a connection to 127.0.0.1:8080 is %s's, want localhost's", got.addr)
	}
}
