package e2e

import (
	"strings"
	"testing"
)

// TestTLSMaxClientHello: max-client-hello bounds the ClientHello the proxy
// takes. With it at 4k, a client whose hello carries 5 KB of ALPN names
// fails its handshake, and one with an ordinary hello (about 1.5 KB with
// Go's post-quantum key share) still completes.
func TestTLSMaxClientHello(t *testing.T) {
	s := tsStart(t, "max-client-hello = 4k\n", "", nil)
	big := s.pki.config(tsSecure)
	for i := 0; i < 20; i++ { // 20 × 250 bytes of protocol names
		big.NextProtos = append(big.NextProtos, strings.Repeat(string(rune('a'+i)), 250))
	}
	if c, err := tsDialErr(s.TLS, big); err == nil {
		c.Close()
		t.Fatal("a 5 KB ClientHello was taken under max-client-hello = 4k")
	}
	c := tsDial(t, s.TLS, s.pki.config(tsSecure), tsWait)
	if st := c.ConnectionState(); !st.HandshakeComplete {
		t.Fatal("an ordinary handshake did not complete")
	}
}
