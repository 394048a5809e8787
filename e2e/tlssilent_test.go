package e2e

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"
)

// TestTLSSilentNotAFailure: a connection to a TLS listener that never
// sends a byte is closed at tls-handshake-timeout and counted as a silent
// connection (rejected_total{reason="silent_connection"}), as on a plain
// listener, not as a failed TLS handshake; one that sends bytes that are
// no TLS is a failed handshake, counted once.
func TestTLSSilentNotAFailure(t *testing.T) {
	t.Parallel()
	pki := tsNewPKI(t, "")
	tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	cert, key := pki.issue(t, "secure", tsSecure)
	stats := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startProxy(t, "stats = "+stats+"\ntls-handshake-timeout = 1s\n",
		fmt.Sprintf("[blastbeat:%s]\nnode = n1\nbind-ssl = %s\ncertificate = %s\nkey = %s\n", tsSecure, tlsAddr, cert, key))
	silent, err := net.Dial("tcp", tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	garbage, err := net.Dial("tcp", tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	if _, err := garbage.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// Both are closed by the proxy.
	for name, c := range map[string]net.Conn{"silent": silent, "garbage": garbage} {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("%s connection still open after 20 s", name)
				}
				break
			}
		}
	}
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		fams := opsScrape(t, stats)
		silentN, _ := opsValue(fams, "blastbeat_rejected_total", map[string]string{"reason": "silent_connection"})
		failed, _ := opsValue(fams, "blastbeat_tls_handshake_failures_total", nil)
		if silentN != 1 || failed != 1 {
			return fmt.Errorf("silent connections %v, TLS handshake failures %v; want 1 and 1", silentN, failed)
		}
		return nil
	})
}
