package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOpenFileLimit: clients that take every descriptor the proxy may
// open do not stop it. accept(2) fails with EMFILE; the proxy warns, stops
// accepting for a moment (the waiting connections stay in the listen
// backlog), goes on serving the connections it has, and accepts the
// waiting ones once descriptors are free. (gnet v2.9.7 shut its engine
// down at the first EMFILE: the proxy refused everyone from then on.)
func TestOpenFileLimit(t *testing.T) {
	// One loop accepts for itself; with several, gnet's main reactor
	// accepts and hands connections on: both pause.
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) { testOpenFileLimit(t, workers) })
	}
}

func testOpenFileLimit(t *testing.T, workers int) {
	p := startProxy(t, fmt.Sprintf("workers = %d\n", workers), "[blastbeat:*]\nnode = n\n")
	hStartNode(t, p.ZMQ, "n", hEcho())
	waitRoutable(t, p, "", "/")
	http.DefaultClient.CloseIdleConnections()

	pid := p.Pid()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	var lim unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &lim); err != nil {
		t.Fatal(err)
	}
	// Room for a few connections more than it has open now (the node's
	// and waitRoutable's may still be closing: count them as taken).
	const room = 6
	lower := unix.Rlimit{Cur: uint64(len(fds) + room), Max: lim.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lower, nil); err != nil {
		t.Skipf("cannot lower the proxy's open-file limit: %v", err)
	}

	// Twice the room: the later ones cannot be accepted.
	var conns []net.Conn
	for i := 0; i < 2*room; i++ {
		c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err) // the backlog takes them
		}
		defer c.Close()
		conns = append(conns, c)
	}
	waitLog(t, p, "too many open files")
	if log := p.Log(); strings.Contains(log, "being shutdown") || strings.Contains(log, "exiting due to error") {
		t.Fatalf("the engine stopped at EMFILE:\n%s", p.Log())
	}

	// The first connection was accepted: it is served meanwhile.
	get := func(c net.Conn, path string) error {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
			return err
		}
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
			return fmt.Errorf("read %q, %v", buf[:n], err)
		}
		return nil
	}
	if err := get(conns[0], "/first"); err != nil {
		t.Fatalf("an accepted connection, at the limit: %v", err)
	}
	// Free descriptors: the last connection, waiting in the backlog, is
	// accepted and served (the read waits for it).
	for _, c := range conns[:room+2] {
		c.Close()
	}
	if err := get(conns[len(conns)-1], "/last"); err != nil {
		t.Fatalf("a connection that waited in the backlog: %v\n%s", err, p.Log())
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(p.URL("/after"))
	if err != nil {
		t.Fatalf("after the limit was raised: %v", err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != 200 {
		t.Fatalf("after the limit was raised: status %d", resp.StatusCode)
	}
}
