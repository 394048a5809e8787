package main

import (
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/config"
)

// TestSNIAliasWithPort: an alias written with a port (alias =
// alias.local:8443) answers SNI alias.local with its virtual host's
// certificate. Before, the SNI name registered was "alias.local:8443",
// which no handshake sends: those clients got the address's default
// certificate (the first virtual host's).
func TestSNIAliasWithPort(t *testing.T) {
	dir := t.TempDir()
	testCA(t, dir)
	src := "[blastbeat]\nbind = 127.0.0.1:8080\nzmq = tcp://127.0.0.1:5000\n\n" +
		"[blastbeat:secure.local]\nnode = a\nbind-ssl = 127.0.0.1:8443\ncertificate = foo.pem\nkey = foo.key\n\n" +
		"[blastbeat:other.local]\nnode = b\nbind-ssl = 127.0.0.1:8443\nalias = alias.local:8443\ncertificate = other.pem\nkey = other.key\n"
	cfg, err := config.Parse(writeFile(t, dir, "sni.ini", src), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	lns, err := tlsListeners(cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l := lns["127.0.0.1:8443"]
	other, def := l.Certificate("other.local"), l.Certificate("secure.local")
	if other == def {
		t.Fatal("other.local and secure.local share a certificate: the test's setup is wrong")
	}
	if got := l.Certificate("alias.local"); got != other {
		t.Fatal("SNI alias.local (alias = alias.local:8443) got the default certificate, want other.local's")
	}
}
