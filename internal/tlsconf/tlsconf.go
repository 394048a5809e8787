// Package tlsconf builds the TLS configuration of BlastBeat's HTTPS
// listeners from the virtual hosts' certificates: it loads and checks
// every certificate and key (naming the file in each error), and picks a
// certificate per handshake by SNI (exact name, then a wildcard one
// label deep, then the first virtual host of that listener).
//
// Session tickets are on: crypto/tls rotates its automatic ticket keys
// (a new key every day, accepting the last week's) when none is set, and
// none is set here.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Site is one virtual host served on a TLS listener. Its certificate is
// chosen for its Names and for the DNS names the certificate itself holds.
type Site struct {
	// Names are the Host names it answers to (lower-case, no port): the
	// virtual host's name and aliases. A name "*.example.com" is a
	// wildcard; "*" (the catch-all) matches nothing by SNI.
	Names []string
	// CertFile and KeyFile are PEM files; KeyFile may equal CertFile.
	CertFile, KeyFile string
}

// Errors, each wrapped with the file it concerns.
var (
	ErrNotPEM   = errors.New("tlsconf: no PEM block")
	ErrMismatch = errors.New("tlsconf: certificate and key do not match")
	ErrExpired  = errors.New("tlsconf: certificate expired")
	ErrNotYet   = errors.New("tlsconf: certificate not valid yet")
	ErrNoSites  = errors.New("tlsconf: no site")
)

// Load reads and checks one certificate and key pair, as of now.
func Load(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", keyFile, err)
	}
	if b, _ := pem.Decode(certPEM); b == nil {
		return nil, fmt.Errorf("certificate %s: %w", certFile, ErrNotPEM)
	}
	if b, _ := pem.Decode(keyPEM); b == nil {
		return nil, fmt.Errorf("key %s: %w", keyFile, ErrNotPEM)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, fmt.Errorf("certificate %s and key %s: %w", certFile, keyFile, ErrMismatch)
		}
		return nil, fmt.Errorf("certificate %s, key %s: %w", certFile, keyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", certFile, err)
		}
		pair.Leaf = leaf
	}
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("certificate %s (expired %s): %w", certFile, leaf.NotAfter.UTC().Format(time.RFC3339), ErrExpired)
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("certificate %s (valid from %s): %w", certFile, leaf.NotBefore.UTC().Format(time.RFC3339), ErrNotYet)
	}
	return &pair, nil
}

// Listener is the certificates of one TLS listener.
type Listener struct {
	def      *tls.Certificate            // the first site's: no or unknown SNI
	exact    map[string]*tls.Certificate // host → certificate
	wildcard map[string]*tls.Certificate // "example.com" for "*.example.com"
}

// NewListener loads the certificate of every site (a file shared by
// several sites is read once).
func NewListener(sites []Site, now time.Time) (*Listener, error) {
	if len(sites) == 0 {
		return nil, ErrNoSites
	}
	l := &Listener{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	loaded := map[[2]string]*tls.Certificate{}
	certs := make([]*tls.Certificate, len(sites))
	for i, s := range sites {
		key := [2]string{s.CertFile, s.KeyFile}
		cert := loaded[key]
		if cert == nil {
			var err error
			if cert, err = Load(s.CertFile, s.KeyFile, now); err != nil {
				return nil, err
			}
			loaded[key] = cert
		}
		if l.def == nil {
			l.def = cert
		}
		certs[i] = cert
	}
	add := func(n string, cert *tls.Certificate) {
		n = strings.ToLower(n)
		switch {
		case n == "*" || n == "":
		case strings.HasPrefix(n, "*."):
			if _, dup := l.wildcard[n[2:]]; !dup {
				l.wildcard[n[2:]] = cert
			}
		default:
			if _, dup := l.exact[n]; !dup {
				l.exact[n] = cert
			}
		}
	}
	// Every site's own Host names first, then the certificates' DNS
	// names (so a "*.example.com" certificate serves every such name):
	// a name a site was configured for gets that site's certificate, even
	// when an earlier site's certificate also lists it.
	for i, s := range sites {
		for _, n := range s.Names {
			add(n, certs[i])
		}
	}
	for _, cert := range certs {
		for _, n := range cert.Leaf.DNSNames {
			add(n, cert)
		}
	}
	return l, nil
}

// Certificate picks the certificate for a ClientHello's server name:
// the exact name, then a wildcard one label up, then the default.
func (l *Listener) Certificate(serverName string) *tls.Certificate {
	name := strings.ToLower(strings.TrimSuffix(serverName, "."))
	if c := l.exact[name]; c != nil {
		return c
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c := l.wildcard[name[i+1:]]; c != nil {
			return c
		}
	}
	return l.def
}

// Config returns a server configuration for the listener: TLS 1.2 and
// 1.3 with Go's default cipher suites, session tickets on, and the given
// ALPN protocols (in order of preference).
func (l *Listener) Config(alpn []string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: alpn,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return l.Certificate(hello.ServerName), nil
		},
	}
}
