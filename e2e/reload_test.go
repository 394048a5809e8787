package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/blastbeat/blastbeat/node"
)

// SIGHUP reload: vhosts added and removed, a node list changed, a
// certificate swapped, while a keep-alive connection, a WebSocket and a
// TLS connection opened before stay open; then a broken file, refused.

// rlHandler is hEcho, and echoes WebSocket messages prefixed with the
// node's name.
func rlHandler() hHandler {
	echo := hEcho()
	return func(hn *hNode, n *node.Node, m hMsg) {
		switch {
		case m.Type == "websocket":
			_ = n.Send([]byte(m.SID), "websocket", append([]byte(hn.Name+": "), m.Body...))
		case m.Type == "uwsgi" && m.Env["HTTP_UPGRADE"] != "":
		default:
			echo(hn, n, m)
		}
	}
}

// rlServed returns the serial number of the certificate a new TLS
// handshake with sni gets.
func rlServed(t testing.TB, addr string, cfg *tls.Config) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func TestReload(t *testing.T) {
	t.Parallel()
	rlScenario(t, "")
}

// TestReloadReusePort: the same with a listening socket per loop
// (reuse-port = on, workers = 2), where a reload binds and closes one
// socket per loop.
func TestReloadReusePort(t *testing.T) {
	t.Parallel()
	rlScenario(t, "reuse-port = on\nworkers = 2\n")
}

func rlScenario(t *testing.T, extra string) {
	pki := tsNewPKI(t, "")
	tlsPort := freePort(t)
	tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
	certA, keyA := pki.issue(t, "certA", tsSecure)
	certB, keyB := pki.issue(t, "certB", tsSecure)
	secure := func(cert, key string) string {
		return fmt.Sprintf("[blastbeat:%s]\nnode = na\nbind-ssl = %s\ncertificate = %s\nkey = %s\n", tsSecure, tlsAddr, cert, key)
	}
	const wsHost = "[blastbeat:ws.test]\nnode = na\n\n"
	// side.test has a listener of its own, which v2 drops; new.test gets
	// one of its own in v2.
	sideAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	newAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	side := fmt.Sprintf("[blastbeat:side.test]\nnode = na\nbind = %s\n\n", sideAddr)
	v1 := wsHost + side + "[blastbeat:a.test]\nnode = na\n\n[blastbeat:old.test]\nnode = na\n\n" + secure(certA, keyA)
	p := startProxy(t, extra, v1)
	hStartNode(t, p.ZMQ, "na", rlHandler())
	hStartNode(t, p.ZMQ, "nb", rlHandler()) // listed by no vhost yet
	waitRoutable(t, p, "a.test", "/ready")
	tcfg := pki.config(tsSecure)
	serialA := rlServed(t, tlsAddr, tcfg)

	// Opened before the reload: a keep-alive connection, a WebSocket, and
	// a TLS keep-alive connection.
	keep := hDial(t, p.Addr, 20*time.Second)
	keep.write("GET /k1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if resp, body := keep.response("GET"); resp.StatusCode != 200 || body != "na GET /k1" {
		t.Fatalf("before: %d %q", resp.StatusCode, body)
	}
	wsc := wRawUpgrade(t, p, "/ws", nil)
	_ = wsc.SetDeadline(time.Now().Add(20 * time.Second))
	tlsConn, err := tls.Dial("tcp", tlsAddr, tcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tlsConn.Close()
	tlsBR := bufio.NewReader(tlsConn)
	tsRawGet(t, tlsConn, tlsBR, tsSecure, "/t1")
	sideConn := hDial(t, sideAddr, 20*time.Second)
	sideConn.write("GET /s1 HTTP/1.1\r\nHost: side.test\r\n\r\n")
	if resp, body := sideConn.response("GET"); resp.StatusCode != 200 || body != "na GET /s1" {
		t.Fatalf("side listener before: %d %q", resp.StatusCode, body)
	}

	// v2: a.test moves to nb, new.test is added, old.test removed, and
	// secure.test's certificate is swapped.
	v2 := wsHost + "[blastbeat:a.test]\nnode = nb\n\n[blastbeat:new.test]\nnode = nb\n\n" +
		fmt.Sprintf("[blastbeat:fresh.test]\nnode = nb\nbind = %s\n\n", newAddr) + secure(certB, keyB)
	p.reload(t, v2, `msg="configuration reloaded"`)
	// What it bound, closed and added is said.
	changed := regexp.MustCompile(`msg="reload: listeners and nodes".*`).FindString(p.Log())
	if !strings.Contains(changed, newAddr) || !strings.Contains(changed, sideAddr) || !strings.Contains(changed, "nb") {
		t.Errorf("the reload's changes (bound %s, closed %s, node nb) are not logged: %q", newAddr, sideAddr, changed)
	}
	get := func(host, path string) (int, string) {
		req, _ := http.NewRequest("GET", p.URL(path), nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	// nb, unknown before, is pinged at once: routable within a moment.
	waitRoutable(t, p, "new.test", "/ready")
	if code, body := get("new.test", "/n"); code != 200 || body != "nb GET /n" {
		t.Errorf("added vhost: %d %q", code, body)
	}
	if code, _ := get("old.test", "/o"); code != 404 {
		t.Errorf("removed vhost: %d, want 404", code)
	}
	// The new listener serves its vhost; the dropped one refuses new
	// connections, while the connection it accepted goes on.
	fresh := hDial(t, newAddr, 20*time.Second)
	fresh.write("GET /f HTTP/1.1\r\nHost: fresh.test\r\n\r\n")
	if resp, body := fresh.response("GET"); resp.StatusCode != 200 || body != "nb GET /f" {
		t.Errorf("new listener: %d %q", resp.StatusCode, body)
	}
	if c, err := net.DialTimeout("tcp", sideAddr, 2*time.Second); err == nil {
		c.Close()
		t.Errorf("the dropped listener %s still accepts", sideAddr)
	}
	sideConn.write("GET /s2 HTTP/1.1\r\nHost: side.test\r\n\r\n")
	if resp, _ := sideConn.response("GET"); resp.StatusCode != 404 {
		t.Errorf("on the dropped listener's open connection, the removed vhost: %d, want 404", resp.StatusCode)
	}
	// The keep-alive connection's next request follows the new config.
	keep.write("GET /k2 HTTP/1.1\r\nHost: a.test\r\n\r\n")
	if resp, body := keep.response("GET"); resp.StatusCode != 200 || body != "nb GET /k2" {
		t.Errorf("keep-alive after the reload: %d %q, want nb's answer", resp.StatusCode, body)
	}
	// The WebSocket goes on with the node it started with.
	if _, err := wsc.Write(wFrame(0x81, []byte("still here"))); err != nil {
		t.Fatal(err)
	}
	wsc.expectFrame(t, ws.OpText, []byte("na: still here"))
	// New handshakes get the new certificate; the TLS connection opened
	// before keeps working.
	if serialB := rlServed(t, tlsAddr, tcfg); serialB == serialA {
		t.Errorf("the certificate was not swapped (serial %s)", serialA)
	}
	tsRawGet(t, tlsConn, tlsBR, tsSecure, "/t2")

	// An address that cannot be bound is refused; the config stays.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	p.reload(t, v2+fmt.Sprintf("\n[blastbeat:busy.test]\nnode = nb\nbind = %s\n", taken.Addr()), "reload refused: listen "+taken.Addr().String())
	// … naming the file and line of the bind, as the start does.
	if !regexp.MustCompile(regexp.QuoteMeta(p.File) + `:\d+: \[blastbeat:busy\.test\] bind ` + regexp.QuoteMeta(taken.Addr().String())).MatchString(p.Log()) {
		t.Errorf("the refused bind is not named with its file and line:\n%s", p.Log())
	}
	if code, body := get("new.test", "/kept"); code != 200 || body != "nb GET /kept" {
		t.Errorf("after a refused reload: %d %q", code, body)
	}

	// A broken file is refused, naming the file and line; the config
	// before it stays.
	p.reload(t, v2+"\n[blastbeat:broken.test]\nnode = nb\nno-such-key = 1\n", "reload refused")
	if !strings.Contains(p.Log(), p.File+":") {
		t.Errorf("the refusal does not name %s:\n%s", p.File, p.Log())
	}
	if code, body := get("new.test", "/still"); code != 200 || body != "nb GET /still" {
		t.Errorf("after a refused reload: %d %q", code, body)
	}
}

// TestReloadRefusedKeepsNodeNumbers: a reload refused after it named a
// new node (its address could not be bound) leaves the bridges' node
// numbering as the running configuration's, so that a later reload's new
// node gets its own traffic. Before, the bridges had taken the refused
// reload's node, and the next new node's sessions went to it.
func TestReloadRefusedKeepsNodeNumbers(t *testing.T) {
	t.Parallel()
	v1 := "[blastbeat:a.test]\nnode = na\n\n"
	p := startProxy(t, "max-nodes = 3\n", v1)
	for _, name := range []string{"na", "nc", "nd", "ne"} {
		hStartNode(t, p.ZMQ, name, rlHandler())
	}
	waitRoutable(t, p, "a.test", "/ready")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	p.reload(t, v1+fmt.Sprintf("[blastbeat:busy.test]\nnode = nc\nbind = %s\n\n", taken.Addr()), "reload refused: listen")
	p.reload(t, v1+"[blastbeat:d.test]\nnode = nd\n\n", `msg="configuration reloaded"`)
	served := func(host, node string) {
		t.Helper()
		waitRoutable(t, p, host, "/ready")
		for i := range 3 {
			req, _ := http.NewRequest("GET", p.URL(fmt.Sprintf("/%d", i)), nil)
			req.Host = host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("%s GET /%d", node, i); resp.StatusCode != 200 || string(b) != want {
				t.Fatalf("%s: %d %q, want %q", host, resp.StatusCode, b, want)
			}
		}
	}
	served("d.test", "nd")
	// The refused reload took no slot of max-nodes (3): a third node
	// fits, a fourth is refused, and the configuration stays.
	v3 := v1 + "[blastbeat:d.test]\nnode = nd\n\n[blastbeat:e.test]\nnode = ne\n\n"
	p.reload(t, v3, `msg="configuration reloaded"`)
	served("e.test", "ne")
	p.reload(t, v3+"[blastbeat:f.test]\nnode = nf\n\n", "more than max-nodes (3)")
	served("e.test", "ne")
}

// TestReloadKeepsHTTP2Setting: http2 applies at the next start, also to
// a bind-ssl listener a reload adds: with http2 = off running, a reload
// that turns it on and adds a TLS listener still offers http/1.1 alone
// there. Before, the new listener offered h2 by ALPN.
func TestReloadKeepsHTTP2Setting(t *testing.T) {
	t.Parallel()
	pki := tsNewPKI(t, "")
	cert, key := pki.issue(t, "secure", tsSecure)
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	v1 := "[blastbeat:a.test]\nnode = na\n\n"
	p := startProxy(t, "http2 = off\n", v1)
	hStartNode(t, p.ZMQ, "na", rlHandler())
	waitRoutable(t, p, "a.test", "/ready")
	p.main = strings.Replace(p.main, "http2 = off", "http2 = on", 1)
	p.reload(t, v1+fmt.Sprintf("[blastbeat:%s]\nnode = na\nbind-ssl = %s\ncertificate = %s\nkey = %s\n", tsSecure, tlsAddr, cert, key), `msg="configuration reloaded"`)
	cfg := pki.config(tsSecure)
	cfg.NextProtos = []string{"h2", "http/1.1"}
	c, err := tls.Dial("tcp", tlsAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.ConnectionState().NegotiatedProtocol; got == "h2" {
		t.Errorf("the listener the reload added negotiated %q with http2 = off running", got)
	}
}

// reload writes vhosts (after p.main) as p's file, sends SIGHUP, and
// waits until want shows once more in the log (the reload's line, or its
// refusal).
func (p *proxy) reload(t testing.TB, vhosts, want string) {
	t.Helper()
	before := strings.Count(p.Log(), want)
	p.rewrite(t, vhosts)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if strings.Count(p.Log(), want) == before {
			return fmt.Errorf("no %q in the log", want)
		}
		return nil
	})
}
