package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the blastbeat binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bb-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "blastbeat")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "../cmd/blastbeat")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building blastbeat:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proxy is a running blastbeat process.
type proxy struct {
	Addr string // host:port of the HTTP listener
	ZMQ  string // the ROUTER endpoint nodes connect to
	File string // the config file
	main string // its [blastbeat] section
	cmd  *exec.Cmd
	log  *logBuffer
}

// rewrite replaces the config file's vhost sections (its [blastbeat]
// section stays), for a reload.
func (p *proxy) rewrite(t testing.TB, vhosts string) {
	t.Helper()
	if err := os.WriteFile(p.File, []byte(p.main+"\n"+vhosts+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// URL returns an http URL on the proxy.
func (p *proxy) URL(path string) string { return "http://" + p.Addr + path }

// Log returns what the proxy wrote to stderr so far.
func (p *proxy) Log() string { return p.log.String() }

// Pid is the process id.
func (p *proxy) Pid() int { return p.cmd.Process.Pid }

// startProxy writes a config with the given [blastbeat] extra lines and
// vhost sections and starts blastbeat on it, with flags before the file.
// The proxy is stopped with SIGTERM at cleanup, and must exit 0 without a
// race report or panic in its log.
func startProxy(t testing.TB, extra, vhosts string, flags ...string) *proxy {
	t.Helper()
	return startProxyIn(t, launchDirs{}, extra, vhosts, flags...)
}

// launchDirs says where a proxy's config is written (Config; a new
// temporary folder when empty) and where it runs (Work; the test's
// working directory when empty).
type launchDirs struct{ Config, Work string }

// startProxyIn is startProxy with the folders of dirs.
func startProxyIn(t testing.TB, dirs launchDirs, extra, vhosts string, flags ...string) *proxy {
	t.Helper()
	// freePort's ports were free a moment ago; a test running beside this
	// one may take one first. A start that fails only for that is retried
	// on new ports.
	for attempt := 1; ; attempt++ {
		p, exited, err := launchProxy(t, dirs, extra, vhosts, flags)
		if err == nil {
			registerProxyCleanup(t, p, exited)
			return p
		}
		if attempt < 5 && strings.Contains(p.Log(), "address already in use") {
			continue
		}
		t.Fatalf("%v", err)
	}
}

// launchProxy starts blastbeat on new ports and waits until it listens;
// on failure the process has exited.
func launchProxy(t testing.TB, dirs launchDirs, extra, vhosts string, flags []string) (*proxy, chan error, error) {
	t.Helper()
	p := &proxy{
		Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		ZMQ:  fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)),
		log:  &logBuffer{},
	}
	ping := "ping-freq = 1\n" // nodes found dead in 3 s, unless extra says otherwise
	if strings.Contains(extra, "ping-freq") {
		ping = ""
	}
	p.main = fmt.Sprintf("[blastbeat]\nbind = %s\nzmq = %s\n%s%s\n", p.Addr, p.ZMQ, ping, extra)
	cfg := p.main + "\n" + vhosts + "\n"
	if dirs.Config == "" {
		dirs.Config = t.TempDir()
	}
	file := filepath.Join(dirs.Config, "blastbeat.ini")
	p.File = file
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(binary, append(flags, file)...)
	p.cmd.Dir = dirs.Work
	p.cmd.Stderr = p.log
	p.cmd.Stdout = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			return p, exited, fmt.Errorf("blastbeat exited: %v\n%s", err, p.Log())
		default:
		}
		c, err := net.Dial("tcp", p.Addr)
		if err == nil {
			c.Close()
			// Its own start line too: another test's process may hold
			// the port this one is failing to bind (it then exits).
			if strings.Contains(p.Log(), "blastbeat started") {
				return p, exited, nil
			}
		}
		if time.Now().After(deadline) {
			_ = p.cmd.Process.Kill()
			<-exited
			return p, exited, fmt.Errorf("blastbeat did not listen on %s within 10s: %v\n%s", p.Addr, err, p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// registerProxyCleanup stops the proxy with SIGTERM at cleanup; it must
// exit 0 without a race report or panic in its log.
func registerProxyCleanup(t testing.TB, p *proxy, exited chan error) {
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("blastbeat exited with %v; log:\n%s", err, p.Log())
			}
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("blastbeat did not stop on SIGTERM; log:\n%s", p.Log())
		}
		if testing.Verbose() {
			t.Logf("proxy log:\n%s", p.Log())
		}
		if strings.Contains(p.Log(), "DATA RACE") || strings.Contains(p.Log(), "panic:") {
			t.Errorf("blastbeat log shows a race or panic:\n%s", p.Log())
		}
	})
}

// waitProxyExit waits for a proxy that was told to stop (SIGTERM) to exit
// by itself and log "blastbeat stopped". startProxy's cleanup reaps it and
// fails the test unless the status is 0; waiting here keeps the cleanup's
// SIGTERM off a process that is already on its way out.
func waitProxyExit(t testing.TB, p *proxy) {
	t.Helper()
	checkFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
		if err != nil {
			return nil
		}
		if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return nil
		}
		return errors.New("blastbeat has not exited")
	})
	// Its last words reach the log through a pipe: wait for them.
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(p.Log(), `msg="blastbeat stopped"`) {
			return errors.New(`no "blastbeat stopped" line in the log`)
		}
		return nil
	})
}

// checkFor calls fn every interval until it returns nil, failing the test
// with fn's last error after total.
func checkFor(t testing.TB, total, every time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %v", total, err)
		}
		time.Sleep(every)
	}
}

// waitRoutable waits until a GET of path through p is not 503, i.e. a
// node of its vhost is known alive.
func waitRoutable(t testing.TB, p *proxy, host, path string) {
	t.Helper()
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		req, _ := http.NewRequest("GET", p.URL(path), nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == 503 {
			return fmt.Errorf("still 503")
		}
		return nil
	})
}

// rawExchange writes req on a new connection and reads until the server
// closes it or timeout passes, returning what was read.
func rawExchange(t testing.TB, addr, req string, timeout time.Duration) string {
	t.Helper()
	out, _ := rawExchangeErr(t, addr, req, timeout)
	return out
}

// rawExchangeErr is rawExchange that also returns the error the reading
// ended with: io.EOF (or a reset) when the proxy closed the connection,
// a timeout when it did not within timeout.
func rawExchangeErr(t testing.TB, addr, req string, timeout time.Duration) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	r := bufio.NewReader(c)
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String(), err
		}
	}
}
