package e2e

import (
	"strings"
	"testing"
)

// TestTLSMaxClientHello: max-client-hello bounds the ClientHello the proxy
// takes. With it at 2k, a client whose hello carries 3 KB of ALPN names
// fails its handshake, and one with an ordinary hello still completes.
func TestTLSMaxClientHello(t *testing.T) {
	s := tsStart(t, "max-client-hello = 2k\n", "", nil)
	big := s.pki.config(tsSecure)
	for i := 0; i < 12; i++ { // 12 × 250 bytes of protocol names
		big.NextProtos = append(big.NextProtos, strings.Repeat(string(rune('a'+i)), 250))
	}
	if c, err := tsDialErr(s.TLS, big); err == nil {
		c.Close()
		t.Fatal("a 3 KB ClientHello was taken under max-client-hello = 2k")
	}
	c := tsDial(t, s.TLS, s.pki.config(tsSecure), tsWait)
	if st := c.ConnectionState(); !st.HandshakeComplete {
		t.Fatal("an ordinary handshake did not complete")
	}
}
