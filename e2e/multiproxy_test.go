package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/node"
)

// Several proxies behind one L4 balancer, every node connected to each
// (node package doc, "Several proxies"): a reply must reach the proxy its
// session came from, never the other.

// mpExtra makes a reply that went to the wrong proxy show as a 504 in
// seconds rather than after the default minute (15 s: a loaded, race-built
// run may take several seconds for a right one).
const mpExtra = "timeout = 15"

// mpNode is an in-process node connected to several proxies through
// node.Dial. It answers every request with its identity and the path.
type mpNode struct {
	stop chan struct{}
	done chan struct{}
	ask  chan chan int // RoutedSessions, read on the node goroutine

	mu     sync.Mutex
	faults []string
}

func mpStartNode(t *testing.T, identity string, endpoints ...string) *mpNode {
	t.Helper()
	n, err := node.Dial(identity, endpoints...)
	if err != nil {
		t.Fatal(err)
	}
	// Recv gives up every 20 ms so that the loop sees stop; a send never
	// blocks forever on a proxy that went away.
	if err := errors.Join(n.SetRecvTimeout(20*time.Millisecond), n.SetSendTimeout(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	g := &mpNode{stop: make(chan struct{}), done: make(chan struct{}), ask: make(chan chan int)}
	go g.loop(n, identity)
	t.Cleanup(func() {
		close(g.stop)
		<-g.done
		for _, f := range g.fault() {
			t.Errorf("node %s: %s", identity, f)
		}
	})
	return g
}

func (g *mpNode) loop(n *node.Node, identity string) {
	defer close(g.done)
	defer n.Close()
	for {
		select {
		case <-g.stop:
			return
		case c := <-g.ask:
			c <- n.RoutedSessions()
			continue
		default:
		}
		m, err := n.Recv()
		if zmq.AsErrno(err) == zmq.Errno(syscall.EAGAIN) {
			continue
		}
		if err != nil {
			g.addFault("recv: %v", err)
			continue
		}
		if m.Type != "uwsgi" {
			continue
		}
		env, err := node.Environ(m.Body)
		if err != nil {
			g.addFault("environ: %v", err)
			continue
		}
		body := identity + " " + env["PATH_INFO"]
		head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", len(body))
		if err := n.Send(m.SID, "headers", []byte(head+body)); err != nil {
			g.addFault("send %s: %v", env["PATH_INFO"], err)
		}
	}
}

func (g *mpNode) addFault(format string, args ...any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faults = append(g.faults, fmt.Sprintf(format, args...))
}

func (g *mpNode) fault() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.faults...)
}

// routed asks the node goroutine how many sessions its table holds.
func (g *mpNode) routed() int {
	c := make(chan int, 1)
	select {
	case g.ask <- c:
		return <-c
	case <-g.done:
		return -1
	}
}

// mpGet GETs url and returns the status and body.
func mpGet(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestMultiProxyLoad: one node serves two proxies under concurrent load;
// every response comes back whole from the proxy that was asked, and the
// node's session table is empty once the clients are gone.
func TestMultiProxyLoad(t *testing.T) {
	const identity = "mp1"
	vhosts := "[blastbeat:*]\nnode = " + identity + "\n"
	proxies := []*proxy{startProxy(t, mpExtra, vhosts), startProxy(t, mpExtra, vhosts)}
	g := mpStartNode(t, identity, proxies[0].ZMQ, proxies[1].ZMQ)
	for _, p := range proxies {
		waitRoutable(t, p, "", "/ready")
	}

	const total, workers = 200, 8
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	jobs := make(chan int)
	errs := make(chan error, total)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				p := proxies[i%len(proxies)]
				path := fmt.Sprintf("/load/%d/via/%d", i, i%len(proxies))
				status, body, err := mpGet(client, p.URL(path))
				switch {
				case err != nil:
					errs <- fmt.Errorf("GET %s: %v", path, err)
				case status != 200 || body != identity+" "+path:
					errs <- fmt.Errorf("GET %s from proxy %d: %d %q", path, i%len(proxies), status, body)
				}
			}
		}()
	}
	for i := range total {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	bad := 0
	for err := range errs {
		if bad++; bad <= 10 {
			t.Error(err)
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d requests failed", bad, total)
	}

	// Every session ends with the client's connection: the proxies send
	// `end` and the node forgets it.
	tr.CloseIdleConnections()
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if k := g.routed(); k != 0 {
			return fmt.Errorf("the node still routes %d sessions", k)
		}
		return nil
	})
}

// TestMultiProxyDemoNode: the built examples/demo-node with one -connect
// per proxy answers HTTP and echoes WebSocket messages through both.
func TestMultiProxyDemoNode(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "demo-node")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/demo-node").CombinedOutput(); err != nil {
		t.Fatalf("building demo-node: %v\n%s", err, out)
	}
	const identity = "demo1"
	vhosts := "[blastbeat:*]\nnode = " + identity + "\n"
	proxies := []*proxy{startProxy(t, mpExtra, vhosts), startProxy(t, mpExtra, vhosts)}

	out := &logBuffer{}
	cmd := exec.Command(bin, "-identity", identity, "-connect", proxies[0].ZMQ, "-connect", proxies[1].ZMQ)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by its pid
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Errorf("demo-node (pid %d) did not exit", pid)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("demo-node (pid %d) output:\n%s", pid, out.String())
		}
	})

	client := &http.Client{Timeout: 20 * time.Second}
	for i, p := range proxies {
		waitRoutable(t, p, "", "/")
		status, body, err := mpGet(client, p.URL("/"))
		if err != nil || status != 200 || body != "<h1>Hello from BlastBeat</h1>\n" {
			t.Fatalf("proxy %d: GET /: %d %q %v", i, status, body, err)
		}
		status, body, err = mpGet(client, p.URL("/stream"))
		if err != nil || status != 200 || !strings.HasSuffix(body, "i am the number 10<br/>\n") {
			t.Fatalf("proxy %d: GET /stream: %d %q %v", i, status, body, err)
		}
		status, body, err = mpGet(client, p.URL("/download?size=100000"))
		if err != nil || status != 200 || body != strings.Repeat("x", 100000) {
			t.Fatalf("proxy %d: GET /download: %d, %d bytes, %v", i, status, len(body), err)
		}
		resp, err := client.Post(p.URL("/echo"), "text/plain", strings.NewReader("echo via "+fmt.Sprint(i)))
		if err != nil {
			t.Fatalf("proxy %d: POST /echo: %v", i, err)
		}
		echoed, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(echoed) != "echo via "+fmt.Sprint(i) {
			t.Fatalf("proxy %d: POST /echo: %d %q %v", i, resp.StatusCode, echoed, err)
		}

		c, _ := wDial(t, p, "/ws", ws.Dialer{})
		if err := c.echo(ws.OpText, []byte(fmt.Sprintf("hello through proxy %d", i))); err != nil {
			t.Fatalf("proxy %d: WebSocket text: %v", i, err)
		}
		if err := c.echo(ws.OpBinary, []byte{0, 1, 2, 0xff, byte(i)}); err != nil {
			t.Fatalf("proxy %d: WebSocket binary: %v", i, err)
		}
	}
}
