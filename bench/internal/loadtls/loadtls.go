// Package loadtls is the TLS client configuration shared by the bench's
// load tools (bench/wsload for wss://, bench/tlsload).
package loadtls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Client returns the load tools' client configuration:
//
//   - the groups X25519 then P-256, as OpenSSL 3.0 clients offer (wrk,
//     Debian's curl), with a key share for X25519: a Go server and nginx
//     then do the same key exchange, instead of the Go server picking the
//     costlier hybrid X25519MLKEM768 that Go clients offer by default.
//     P-256 must be there for a TLS 1.2 server with an ECDSA P-256
//     certificate;
//   - no session cache: every handshake is a full one;
//   - ALPN http/1.1;
//   - the CA in the PEM file cacert as the only root, or, when cacert is
//     "", no chain check (the server's handshake signature is still
//     checked; the harness verifies the chain once with its own probe).
//
// The returned value may be shared by any number of connections.
func Client(cacert string) (*tls.Config, error) {
	cfg := &tls.Config{
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		NextProtos:       []string{"http/1.1"},
	}
	if cacert == "" {
		cfg.InsecureSkipVerify = true
		return cfg, nil
	}
	pem, err := os.ReadFile(cacert)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", cacert)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
