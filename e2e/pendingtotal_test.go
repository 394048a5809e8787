package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPendingTotalFairShare: max-pending-output-total holds against
// many clients that each stay under their own cap. Eight clients that
// read nothing (4 KiB receive buffers) ask for 6 MiB each, with
// max-pending-output 16m and max-pending-output-total 16m: past what
// the kernel takes (a loopback send buffer grows to a few MB), each
// would hold 3-5 MiB, about 30 MiB together. Past the total, a client
// that grows past its share (the total split between the clients
// holding output) is closed; the others get their whole bodies. Before,
// only a client past half of its own cap (8 MiB) could be closed for the
// total: none was, and the total was exceeded about twice.
func TestPendingTotalFairShare(t *testing.T) {
	t.Parallel()
	p := h2aProxy(t, "max-pending-output = 16m\nmax-pending-output-total = 16m\n")
	const clients, size = 8, 6 << 20
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		_ = rc.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return err
	}}
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, err := d.DialContext(context.Background(), "tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := fmt.Fprintf(c, "GET /sized?n=%d HTTP/1.1\r\nHost: x\r\n\r\n", size); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.Log(), "limit=max-pending-output-total") {
		if time.Now().After(deadline) {
			t.Fatalf("no client closed for max-pending-output-total in 20 s (log:\n%s)", p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Now every client reads: the ones closed get part of their body,
	// the others all of it.
	full, cut := 0, 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			var n int64
			n, err = io.Copy(io.Discard, resp.Body)
			if err == nil && n != size {
				err = fmt.Errorf("%d bytes", n)
			}
		}
		if err == nil {
			full++
		} else {
			cut++
		}
	}
	if cut == 0 || full == 0 {
		t.Errorf("%d clients got their whole body and %d were cut; want some of each (log:\n%s)", full, cut, p.Log())
	}
}
