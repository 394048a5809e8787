package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// TestShutdownDelay: told to stop with shutdown-delay set, the proxy
// answers /readyz with 503 at once and goes on serving, new connections
// included, until the delay ends; a second SIGTERM cuts the delay short
// and the graceful stop runs (the process exits well before the delay's
// 10 minutes).
func TestShutdownDelay(t *testing.T) {
	t.Parallel()
	stats := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProxy(t, "stats = "+stats+"\nshutdown-delay = 10m\n", "[blastbeat:d.test]\nnode = d1\n")
	hStartNode(t, p.ZMQ, "d1", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type == "uwsgi" {
			hRespond(n, m.SID, 200, "", "ok")
		}
	})
	waitRoutable(t, p, "d.test", "/ready")
	readyz := func() int {
		resp, err := http.Get("http://" + stats + "/readyz")
		if err != nil {
			t.Fatalf("/readyz: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := readyz(); s != 200 {
		t.Fatalf("/readyz before the stop: %d", s)
	}

	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	waitLog(t, p, "serving on before the graceful stop")
	if s := readyz(); s != 503 {
		t.Fatalf("/readyz during shutdown-delay: %d, want 503", s)
	}
	// A new connection (no keep-alive) is still accepted and served.
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("GET", p.URL("/during"), nil)
		req.Host = "d.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request during shutdown-delay: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request during shutdown-delay: %d %q", resp.StatusCode, body)
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	waitLog(t, p, "shutdown-delay cut short")
	waitProxyExit(t, p)
	if !strings.Contains(p.Log(), "blastbeat stopped") {
		t.Fatalf("no graceful stop after the delay:\n%s", p.Log())
	}
}
