package tlsconf

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/internal/testcert"
)

func newCA(t *testing.T) *testcert.CA {
	t.Helper()
	ca, err := testcert.NewCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *testcert.CA, l testcert.Leaf) (string, string) {
	t.Helper()
	c, k, err := ca.Issue(l)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	good, goodKey := issue(t, ca, testcert.Leaf{Name: "good", DNSNames: []string{"a.test"}})
	_, otherKey := issue(t, ca, testcert.Leaf{Name: "other", DNSNames: []string{"b.test"}})
	expired, expiredKey := issue(t, ca, testcert.Leaf{Name: "expired", DNSNames: []string{"c.test"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	future, futureKey := issue(t, ca, testcert.Leaf{Name: "future", DNSNames: []string{"d.test"},
		NotBefore: time.Now().Add(time.Hour), NotAfter: time.Now().Add(48 * time.Hour)})
	notPEM := filepath.Join(dir, "notpem.pem")
	if err := os.WriteFile(notPEM, []byte("hello, not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name       string
		cert, key  string
		want       error
		wantInText string
	}{
		{name: "missing certificate", cert: missing, key: goodKey, want: fs.ErrNotExist, wantInText: missing},
		{name: "missing key", cert: good, key: missing, want: fs.ErrNotExist, wantInText: missing},
		{name: "unreadable (a directory)", cert: dir, key: goodKey, wantInText: dir},
		{name: "certificate not PEM", cert: notPEM, key: goodKey, want: ErrNotPEM, wantInText: notPEM},
		{name: "key not PEM", cert: good, key: notPEM, want: ErrNotPEM, wantInText: notPEM},
		{name: "key of another certificate", cert: good, key: otherKey, want: ErrMismatch, wantInText: good},
		{name: "expired", cert: expired, key: expiredKey, want: ErrExpired, wantInText: expired},
		{name: "not valid yet", cert: future, key: futureKey, want: ErrNotYet, wantInText: future},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.cert, tt.key, time.Now())
			if err == nil {
				t.Fatal("loaded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantInText) {
				t.Errorf("error %q does not name %s", err, tt.wantInText)
			}
		})
	}
	if _, err := Load(good, goodKey, time.Now()); err != nil {
		t.Fatalf("a good pair: %v", err)
	}
}

func TestCertificateBySNI(t *testing.T) {
	ca := newCA(t)
	first, firstKey := issue(t, ca, testcert.Leaf{Name: "first", DNSNames: []string{"first.test"}})
	exact, exactKey := issue(t, ca, testcert.Leaf{Name: "exact", DNSNames: []string{"www.example.com"}})
	wild, wildKey := issue(t, ca, testcert.Leaf{Name: "wild", DNSNames: []string{"*.example.com"}})
	l, err := NewListener([]Site{
		{Names: []string{"first.test", "alias.test"}, CertFile: first, KeyFile: firstKey},
		{Names: []string{"www.example.com"}, CertFile: exact, KeyFile: exactKey},
		{Names: []string{"*.example.com"}, CertFile: wild, KeyFile: wildKey},
		{Names: []string{"*"}, CertFile: first, KeyFile: firstKey},
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cn := func(c *tls.Certificate) string { return c.Leaf.Subject.CommonName }
	tests := []struct{ sni, want string }{
		{sni: "www.example.com", want: "www.example.com"},
		{sni: "WWW.Example.COM.", want: "www.example.com"},
		{sni: "api.example.com", want: "*.example.com"},
		{sni: "a.b.example.com", want: "first.test"}, // a wildcard is one label deep
		{sni: "example.com", want: "first.test"},
		{sni: "alias.test", want: "first.test"},
		{sni: "", want: "first.test"},
		{sni: "unknown.test", want: "first.test"},
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			if got := cn(l.Certificate(tt.sni)); got != tt.want {
				t.Errorf("SNI %q: certificate %q, want %q", tt.sni, got, tt.want)
			}
		})
	}
	if _, err := NewListener(nil, time.Now()); !errors.Is(err, ErrNoSites) {
		t.Errorf("no sites: %v", err)
	}
}

// TestCertificateConfiguredNameFirst: a name a site is configured for
// gets that site's certificate, even when an earlier site's certificate
// lists it too. Before, the earlier certificate's DNS names were taken
// first.
func TestCertificateConfiguredNameFirst(t *testing.T) {
	ca := newCA(t)
	multi, multiKey := issue(t, ca, testcert.Leaf{Name: "multi", DNSNames: []string{"a.test", "b.test"}})
	own, ownKey := issue(t, ca, testcert.Leaf{Name: "b-own", DNSNames: []string{"b.test"}})
	l, err := NewListener([]Site{
		{Names: []string{"a.test"}, CertFile: multi, KeyFile: multiKey},
		{Names: []string{"b.test"}, CertFile: own, KeyFile: ownKey},
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Each certificate's common name is its first DNS name.
	if got := l.Certificate("b.test").Leaf.Subject.CommonName; got != "b.test" {
		t.Errorf("SNI b.test: the certificate of %q, want b.test's own", got)
	}
}

// handshake runs a real TLS handshake over a loopback TCP connection.
func handshake(t *testing.T, srv *tls.Config, cli *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		s := tls.Server(c, srv)
		_ = s.SetDeadline(time.Now().Add(5 * time.Second))
		done <- s.Handshake()
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), cli)
	if err != nil {
		<-done
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	st := c.ConnectionState()
	return st, <-done
}

func TestConfigVersionsAndALPN(t *testing.T) {
	ca := newCA(t)
	cert, key := issue(t, ca, testcert.Leaf{Name: "s", DNSNames: []string{"s.test"}})
	l, err := NewListener([]Site{{Names: []string{"s.test"}, CertFile: cert, KeyFile: key}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := l.Config([]string{"http/1.1"})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		st, err := handshake(t, srv, &tls.Config{RootCAs: ca.Pool(), ServerName: "s.test",
			MinVersion: v, MaxVersion: v, NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatalf("version %x: %v", v, err)
		}
		if st.Version != v || st.NegotiatedProtocol != "http/1.1" {
			t.Errorf("version %x: got version %x, ALPN %q", v, st.Version, st.NegotiatedProtocol)
		}
	}
	if _, err := handshake(t, srv, &tls.Config{RootCAs: ca.Pool(), ServerName: "s.test",
		MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 was accepted")
	}
}
