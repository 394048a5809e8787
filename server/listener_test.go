package server

import (
	"crypto/tls"
	"io"
	"log/slog"
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
