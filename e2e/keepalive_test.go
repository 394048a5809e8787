package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tcpTimer is the timer the kernel runs on the proxy's side of the
// connection from client (/proc/net/tcp's "tr": 0 none, 1 retransmit,
// 2 keep-alive, …), and whether the socket was found.
func tcpTimer(t *testing.T, proxyAddr string, client net.Conn) (int, bool) {
	t.Helper()
	_, pport, _ := net.SplitHostPort(proxyAddr)
	_, cport, _ := net.SplitHostPort(client.LocalAddr().String())
	pp, _ := strconv.Atoi(pport)
	cp, _ := strconv.Atoi(cport)
	local := fmt.Sprintf("0100007F:%04X", pp)
	remote := fmt.Sprintf("0100007F:%04X", cp)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] != local || fs[2] != remote {
			continue
		}
		tr, _, _ := strings.Cut(fs[5], ":") // "tr:tm->when"
		n, err := strconv.Atoi(tr)
		if err != nil {
			t.Fatalf("/proc/net/tcp timer field %q", fs[5])
		}
		return n, true
	}
	return 0, false
}

// TestTCPKeepAlive: with tcp-keepalive the proxy's side of an idle client
// connection runs the kernel's keep-alive timer (a client gone without a
// FIN is found by the probes); with tcp-keepalive = 0 it runs none.
func TestTCPKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		set  string
		want int
	}{
		{"tcp-keepalive = 30\n", 2},
		{"tcp-keepalive = 0\n", 0},
	} {
		t.Run(strings.TrimSpace(tc.set), func(t *testing.T) {
			p := startProxy(t, tc.set, "[blastbeat:a.test]\nnode = n1\n")
			c, err := net.Dial("tcp", p.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// The proxy's socket appears in /proc/net/tcp once accepted.
			var got int
			checkFor(t, 5*time.Second, 20*time.Millisecond, func() error {
				n, ok := tcpTimer(t, p.Addr, c)
				if !ok {
					return fmt.Errorf("the proxy's side of %s is not in /proc/net/tcp", c.LocalAddr())
				}
				got = n
				if n != tc.want {
					return fmt.Errorf("timer %d, want %d", n, tc.want)
				}
				return nil
			})
			if got != tc.want {
				t.Fatalf("timer %d, want %d", got, tc.want)
			}
		})
	}
}

// TestNodeTCPKeepAlive: the nodes' connections to the proxy's ZeroMQ
// endpoint run the kernel's keep-alive timer on the proxy's side too
// (tcp-keepalive), so that a node whose host vanished without a FIN is
// dropped, and what libzmq held for it given back, within minutes.
// Before, such a connection stayed for the kernel's retransmission
// timeout (about 15 minutes), holding the bodies lent to it.
func TestNodeTCPKeepAlive(t *testing.T) {
	p := startProxy(t, "tcp-keepalive = 30\n", "[blastbeat:a.test]\nnode = n1\n")
	hStartNode(t, p.ZMQ, "n1", hEcho())
	waitRoutable(t, p, "a.test", "/ready")
	_, zport, _ := net.SplitHostPort(strings.TrimPrefix(p.ZMQ, "tcp://"))
	zp, _ := strconv.Atoi(zport)
	local := fmt.Sprintf("0100007F:%04X", zp)
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		b, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Skipf("no /proc/net/tcp: %v", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			// The node's connection, accepted on the endpoint: established (01).
			if len(fs) < 6 || fs[1] != local || fs[3] != "01" {
				continue
			}
			if tr, _, _ := strings.Cut(fs[5], ":"); tr == "02" {
				return nil
			}
			return fmt.Errorf("the node's connection runs timer %s, want 2 (keep-alive)", fs[5])
		}
		return fmt.Errorf("no established connection on %s in /proc/net/tcp", p.ZMQ)
	})
}
