package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReloadClosedListenerKeepsRoutingAtNextReload: a connection accepted
// on a listener that a reload closed keeps being served after later
// reloads too, while it is open. Before, the second reload (even of the
// same file) built a routing without the closed listener: every request
// on its connections got 404.
func TestReloadClosedListenerKeepsRoutingAtNextReload(t *testing.T) {
	t.Parallel()
	sideAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v1 := fmt.Sprintf("[blastbeat:side.test]\nnode = na\nbind = %s\n", sideAddr)
	p := startProxy(t, "", v1)
	hStartNode(t, p.ZMQ, "na", rlHandler())
	conn := hDial(t, sideAddr, 20*time.Second)
	ask := func(when, path string) {
		t.Helper()
		conn.write("GET " + path + " HTTP/1.1\r\nHost: side.test\r\n\r\n")
		if resp, body := conn.response("GET"); resp.StatusCode != 200 || body != "na GET "+path {
			t.Fatalf("%s: %d %q, want na's answer on the closed listener's open connection", when, resp.StatusCode, body)
		}
	}
	// na is up once side's listener stops answering 503.
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		req, _ := http.NewRequest("GET", "http://"+sideAddr+"/ready", nil)
		req.Host = "side.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	ask("before any reload", "/s0")
	// side.test loses its own listener (it is served on the main bind
	// now); the connection side's listener accepted goes on.
	v2 := "[blastbeat:side.test]\nnode = na\n"
	p.reload(t, v2, `msg="configuration reloaded"`)
	ask("after the reload that closed the listener", "/s1")
	p.reload(t, v2, `msg="configuration reloaded"`)
	ask("after a second reload", "/s2")
	p.reload(t, v2+"\n[blastbeat:other.test]\nnode = na\n", `msg="configuration reloaded"`)
	ask("after a third reload", "/s3")
}

// TestReloadOverlappingBindNamesRestart: moving a bind to an address
// that overlaps the one it replaces (127.0.0.1:P to 0.0.0.0:P) cannot be
// done by a reload (the new socket is bound while the proxy's own old
// one still listens): the refusal says why and what to do, and the
// running listener stays.
func TestReloadOverlappingBindNamesRestart(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	vh := func(addr string) string {
		return fmt.Sprintf("[blastbeat:a.test]\nnode = na\n\n[blastbeat:side.test]\nnode = na\nbind = %s\n", addr)
	}
	p := startProxy(t, "", vh(fmt.Sprintf("127.0.0.1:%d", port)))
	hStartNode(t, p.ZMQ, "na", hEcho())
	waitRoutable(t, p, "a.test", "/ready")
	p.reload(t, vh(fmt.Sprintf("0.0.0.0:%d", port)), "needs a restart")
	if !strings.Contains(p.Log(), fmt.Sprintf("the proxy's own listener 127.0.0.1:%d", port)) {
		t.Fatalf("the refusal does not name the listener that holds the port:\n%s", p.Log())
	}
	c := hDial(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	c.write("GET /s HTTP/1.1\r\nHost: side.test\r\n\r\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "na GET /s" {
		t.Fatalf("the running listener after the refusal: %d %q", resp.StatusCode, body)
	}
}
