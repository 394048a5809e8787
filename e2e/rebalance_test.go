package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// bridgeConns reads bridge_node_connections from /metrics: the nodes'
// connections open on each bridge, in bridge order.
func bridgeConns(t *testing.T, stats string, bridges int) []int {
	t.Helper()
	fams := opsScrape(t, stats)
	out := make([]int, bridges)
	for k := range out {
		v, ok := opsValue(fams, "blastbeat_bridge_node_connections", map[string]string{"bridge": fmt.Sprint(k)})
		if !ok {
			t.Fatalf("no bridge_node_connections{bridge=%d} in /metrics", k)
		}
		out[k] = int(v)
	}
	return out
}

// TestRebalanceNodes: four nodes behind four bridges (zmq-bridges = 4,
// zmq-rebalance at its default) end up one on each bridge, Go nodes and
// the original README's Python node alike (each reconnects after the
// proxy shuts a connection in its handshake), and all of them serve.
// The kernel's hash alone does that one time in ten.
func TestRebalanceNodes(t *testing.T) {
	t.Parallel()
	bNeedPythonZMQ(t)
	stats := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProxy(t, "zmq-bridges = 4\nlog-level = debug\nstats = "+stats+"\n", "[blastbeat:go.test]\nnode = g0\nnode = g1\nnode = g2\n\n[blastbeat:py.test]\nnode = pychunk\n")
	for i := range 3 {
		hStartNode(t, p.ZMQ, fmt.Sprintf("g%d", i), hEcho())
	}
	bStartPythonNode(t, "readme_chunk_node.py", p.ZMQ, "pychunk")
	checkFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if per := bridgeConns(t, stats, 4); fmt.Sprint(per) != "[1 1 1 1]" {
			return fmt.Errorf("connections per bridge %v, want one on each", per)
		}
		return nil
	})
	// Every Go node answers (new sessions go to the one with the fewest).
	seen := map[string]bool{}
	checkFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		req, _ := http.NewRequest("GET", p.URL("/who"), nil)
		req.Host = "go.test"
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				seen[resp.Header.Get("X-Node")] = true
			}
		}
		if len(seen) < 3 {
			return fmt.Errorf("answers from %v", seen)
		}
		return nil
	})
	// And the Python node.
	checkFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		body, err := bCurlErr("-s", "-H", "Host: py.test", p.URL("/py"))
		if err != nil || !strings.Contains(body, "/py") {
			return fmt.Errorf("python node: %q, %v", bTail(body, 200), err)
		}
		return nil
	})
	if per := bridgeConns(t, stats, 4); fmt.Sprint(per) != "[1 1 1 1]" {
		t.Fatalf("connections per bridge %v after the requests, want one on each", per)
	}
}
