package tlsmem_test

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/internal/tlsmem"
)

// hrrServerConfig makes the server ask the client for another key share
// (a HelloRetryRequest): it takes P-256 only, the client offers X25519
// first.
func hrrServerConfig() *tls.Config {
	cfg := serverConfig("http/1.1")
	cfg.CurvePreferences = []tls.CurveID{tls.CurveP256}
	return cfg
}

func hrrClientConfig() *tls.Config {
	cfg := clientConfig(tls.VersionTLS13)
	cfg.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	cfg.NextProtos = []string{"http/1.1"}
	return cfg
}

// TestHelloRetryHandshake: a handshake through a HelloRetryRequest (two
// ClientHellos) completes.
func TestHelloRetryHandshake(t *testing.T) {
	s := startServer(t, hrrServerConfig(), nil)
	c := dial(t, s, hrrClientConfig())
	if !c.ConnectionState().HandshakeComplete {
		t.Fatal("handshake not complete")
	}
	waitOpen(t, s.next(t))
}

// TestSecondClientHelloTooLarge: after a HelloRetryRequest, the second
// ClientHello is bounded too (MaxClientHello checks the first): a client
// that sends handshake records past two ClientHellos' worth fails the
// handshake with ErrClientHelloTooLarge, before crypto/tls gathered them
// (before, up to its own 64 KiB).
func TestSecondClientHelloTooLarge(t *testing.T) {
	s := startServer(t, hrrServerConfig(), nil)
	first := firstClientHello(t, hrrClientConfig())
	raw, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(waitLong()))
	if _, err := raw.Write(first); err != nil {
		t.Fatal(err)
	}
	var hdr [5]byte // the HelloRetryRequest's record: the first hello was read
	if _, err := io.ReadFull(raw, hdr[:]); err != nil || hdr[0] != 22 {
		t.Fatalf("no HelloRetryRequest: % x, %v", hdr, err)
	}
	// A second ClientHello announcing 60000 bytes, sent in full records.
	size := 60000
	body := make([]byte, 4+size)
	body[0] = 1
	body[1], body[2], body[3] = byte(size>>16), byte(size>>8), byte(size)
	var out []byte
	for len(body) > 0 {
		n := min(len(body), 16384)
		out = append(out, 22, 3, 3, 0, 0)
		binary.BigEndian.PutUint16(out[len(out)-2:], uint16(n))
		out = append(out, body[:n]...)
		body = body[n:]
	}
	go raw.Write(out) // the server may stop reading before the end
	err = waitErr(t, s.next(t))
	if !errors.Is(err, tlsmem.ErrClientHelloTooLarge) {
		t.Fatalf("server: %v, want ErrClientHelloTooLarge", err)
	}
	checkNoHandshakeGoroutines(t)
}

// firstClientHello returns the first record crypto/tls's client sends
// with cfg (its ClientHello, whole in one record).
func firstClientHello(t *testing.T, cfg *tls.Config) []byte {
	t.Helper()
	cc, sc := net.Pipe()
	defer sc.Close()
	go func() {
		_ = tls.Client(cc, cfg).Handshake()
		cc.Close()
	}()
	sc.SetDeadline(time.Now().Add(waitLong()))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(sc, hdr); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 5+int(binary.BigEndian.Uint16(hdr[3:])))
	copy(rec, hdr)
	if _, err := io.ReadFull(sc, rec[5:]); err != nil {
		t.Fatal(err)
	}
	return rec
}
