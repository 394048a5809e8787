package tlsmem_test

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// captureConn takes what a client writes and answers nothing.
type captureConn struct {
	net.Conn
	got chan []byte
}

func (c captureConn) Write(p []byte) (int, error) {
	c.got <- append([]byte(nil), p...)
	return 0, io.ErrClosedPipe
}

// TestClientHelloSplitFirstRecord: a ClientHello whose first record
// carries a single byte of it (legal: crypto/tls joins the fragments) is
// served. The length check must not read the next record's header as the
// message's length (it did in a first version of that check: about 1.4 MB,
// refused).
func TestClientHelloSplitFirstRecord(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	got := make(chan []byte, 1)
	go func() {
		_ = tls.Client(captureConn{Conn: a, got: got}, clientConfig(tls.VersionTLS13)).Handshake()
	}()
	hello := <-got // one record: 5 bytes of header, the message
	if hello[0] != 22 || len(hello) < 10 {
		t.Fatalf("captured % x", hello[:min(10, len(hello))])
	}
	msg := hello[5:]
	split := []byte{22, hello[1], hello[2], 0, 1, msg[0]}
	rest := len(msg) - 1
	split = append(split, 22, hello[1], hello[2], byte(rest>>8), byte(rest))
	split = append(split, msg[1:]...)

	s := startServer(t, serverConfig(), nil)
	raw, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write(split); err != nil {
		t.Fatal(err)
	}
	sc := s.next(t)
	_ = raw.SetReadDeadline(time.Now().Add(waitLong()))
	var first [1]byte
	if _, err := io.ReadFull(raw, first[:]); err != nil || first[0] != 22 {
		t.Fatalf("the server's answer to a split ClientHello: % x, %v; want a handshake record (22)", first, err)
	}
	raw.Close()
	waitErr(t, sc) // the handshake ends with the socket
}
