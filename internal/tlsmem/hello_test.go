package tlsmem_test

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/internal/tlsmem"
)

// TestClientHelloTooLarge: a ClientHello longer than MaxClientHello (here
// about 51 KiB of ALPN names) fails the handshake, whether it comes in one
// read or a byte at a time; one of ordinary size (the other tests') is
// served. Before, crypto/tls took up to 64 KiB, and the buffer it gathered
// it in kept that size for the connection's life: a client could pin
// 64 KiB per idle connection.
func TestClientHelloTooLarge(t *testing.T) {
	for _, split := range []int{0, 1} {
		t.Run(map[int]string{0: "one read", 1: "a byte at a time"}[split], func(t *testing.T) {
			s := startServer(t, serverConfig("http/1.1"), func(sc *sconn) { sc.split = split })
			cfg := clientConfig(tls.VersionTLS13)
			for i := range 200 {
				cfg.NextProtos = append(cfg.NextProtos, strings.Repeat(string(rune('a'+i%26)), 255))
			}
			cfg.NextProtos = append(cfg.NextProtos, "http/1.1")
			raw, err := net.Dial("tcp", s.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			c := tls.Client(raw, cfg)
			c.SetDeadline(time.Now().Add(waitLong()))
			herr := make(chan error, 1)
			go func() { herr <- c.Handshake() }()
			sc := s.next(t)
			err = waitErr(t, sc)
			if !errors.Is(err, tlsmem.ErrClientHelloTooLarge) {
				t.Fatalf("server: %v, want ErrClientHelloTooLarge", err)
			}
			if err := <-herr; err == nil {
				t.Fatal("the client's handshake succeeded")
			}
			checkNoHandshakeGoroutines(t)
		})
	}
}
