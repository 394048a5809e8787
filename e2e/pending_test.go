package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPendingOutputGauges: the output the proxy holds for a client that
// does not read shows in blastbeat_pending_output_bytes (what
// max-pending-output-total limits) and blastbeat_output_holders, and
// both fall to 0 once the client has read it all. Here the node answers
// a POST before its body ended, so the connection also closes after the
// answer while its client still sends.
func TestPendingOutputGauges(t *testing.T) {
	t.Parallel()
	stats := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// Its node answers all at once, and speaks no credits: the proxy
	// holds what the client does not read.
	p := h2aProxy(t, "max-pending-output = 64m\nstats = "+stats+"\n")
	const size = 8 << 20
	gauge := func(name string) float64 {
		v, _ := opsValue(opsScrape(t, stats), name, nil)
		return v
	}

	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := fmt.Fprintf(c, "POST /sized?n=%d HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n%s", size, strings.Repeat("b", 1000)); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing yet: the proxy holds part of the answer.
	checkFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if v := gauge("blastbeat_pending_output_bytes"); v <= 0 {
			return fmt.Errorf("pending output %v", v)
		}
		return nil
	})
	// The client keeps sending (so the connection lingers once its
	// answer went) and reads the whole answer.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := c.Write([]byte("b")); err != nil {
					return
				}
			}
		}
	}()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != size {
		t.Fatalf("read %d of %d bytes: %v", n, size, err)
	}
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if v, h := gauge("blastbeat_pending_output_bytes"), gauge("blastbeat_output_holders"); v != 0 || h != 0 {
			return fmt.Errorf("after the client read everything: pending output %v bytes, %v holders", v, h)
		}
		return nil
	})
}
