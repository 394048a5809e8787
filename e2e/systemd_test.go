package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/node"
)

// supervised describes a blastbeat started the way a supervisor (systemd,
// the uWSGI Emperor) starts it: with its own environment and descriptors.
type supervised struct {
	extra, vhosts string // as for startProxy
	addr          string // the [blastbeat] bind; "" for a free port
	// setup returns, for each try, the environment to add and the files
	// the process gets from descriptor 3 on; the parent's copies of the
	// files are closed once the process started.
	setup func() (env []string, files []*os.File)
	// listenPID runs the binary through /bin/sh so that LISTEN_PID is
	// its pid, as systemd sets it.
	listenPID bool
	// ready waits until the process is up; nil waits until addr accepts
	// connections. It returns an error if the process exited first.
	ready func(p *supProxy) error
}

// supProxy is a blastbeat started by startSupervised.
type supProxy struct {
	*proxy
	exited chan struct{} // closed once the process exited
	err    error         // Wait's error, once exited is closed
}

// Exited reports whether the process exited.
func (p *supProxy) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// startSupervised starts blastbeat as s says and waits for s.ready. At
// cleanup it is stopped with SIGTERM (unless it exited) and must have
// exited 0 without a race report or panic. A try that fails only because
// a free port was taken meanwhile is made again on new ports.
func startSupervised(t *testing.T, s supervised) *supProxy {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := launchSupervised(t, s)
		ready := s.ready
		if ready == nil {
			ready = waitListening
		}
		err := ready(p)
		if err == nil {
			t.Cleanup(func() { stopSupervised(t, p) })
			return p
		}
		if !p.Exited() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if attempt < 5 && s.addr == "" && strings.Contains(p.Log(), "address already in use") {
			continue
		}
		t.Fatalf("%v\n%s", err, p.Log())
	}
}

// launchSupervised writes the config and starts the process.
func launchSupervised(t *testing.T, s supervised) *supProxy {
	t.Helper()
	addr := s.addr
	if addr == "" {
		addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	p := &supProxy{proxy: &proxy{Addr: addr, ZMQ: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)), log: &logBuffer{}},
		exited: make(chan struct{})}
	p.main = fmt.Sprintf("[blastbeat]\nbind = %s\nzmq = %s\nping-freq = 1\n%s\n", p.Addr, p.ZMQ, s.extra)
	cfg := p.main + "\n" + s.vhosts + "\n"
	file := filepath.Join(t.TempDir(), "blastbeat.ini")
	p.File = file // for rewrite
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if s.listenPID {
		p.cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, binary, file)
	} else {
		p.cmd = exec.Command(binary, file)
	}
	var env []string
	var files []*os.File
	if s.setup != nil {
		env, files = s.setup()
	}
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.ExtraFiles = files
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	err := p.cmd.Start()
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p
}

// supervisorEnv are the variables through which a supervisor talks to
// blastbeat; the test's own (when it runs under one) are not passed on.
var supervisorEnv = []string{"NOTIFY_SOCKET=", "LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=", "UWSGI_EMPEROR_FD=", "WATCHDOG_USEC=", "WATCHDOG_PID="}

// cleanEnv returns the test's environment without supervisorEnv.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		keep := true
		for _, v := range supervisorEnv {
			keep = keep && !strings.HasPrefix(kv, v)
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// waitListening waits until p accepts connections on p.Addr and has
// logged its start line.
func waitListening(p *supProxy) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p.Exited() {
			return fmt.Errorf("blastbeat exited: %v", p.err)
		}
		c, err := net.Dial("tcp", p.Addr)
		if err == nil {
			c.Close()
			// Its own start line too: another test's process may hold
			// the port this one failed to bind (it then exits).
			if strings.Contains(p.Log(), "blastbeat started") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("blastbeat did not listen on %s within 10s: %v", p.Addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopSupervised stops p with SIGTERM unless it exited, and checks that
// it exited 0 with a clean log.
func stopSupervised(t *testing.T, p *supProxy) {
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("blastbeat exited with %v; log:\n%s", p.err, p.Log())
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
}

// waitLog waits until the log of p holds want: it comes through a pipe,
// possibly after what the test saw happen.
func waitLog(t *testing.T, p *proxy, want string) {
	t.Helper()
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(p.Log(), want) {
			return fmt.Errorf("log lacks %s:\n%s", want, p.Log())
		}
		return nil
	})
}

// notifySocket is a unix datagram socket standing in for systemd's
// notification socket.
type notifySocket struct {
	conn *net.UnixConn
	addr string
}

// listenNotify listens on addr (a path, or "@name" for an abstract
// socket).
func listenNotify(t *testing.T, addr string) *notifySocket {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifySocket{conn: c, addr: addr}
}

// next returns the next notification, or an error when p exits or none
// comes within 10 s.
func (n *notifySocket) next(p *supProxy) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 4096)
	for {
		// Short reads, so that an exit is noticed.
		_ = n.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		k, err := n.conn.Read(buf)
		if err == nil {
			return string(buf[:k]), nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return "", err
		}
		if p.Exited() {
			return "", fmt.Errorf("blastbeat exited: %v", p.err)
		}
		if time.Now().After(deadline) {
			return "", errors.New("no notification within 10s")
		}
	}
}

// expect fails the test unless the next notification is want.
func (n *notifySocket) expect(t *testing.T, p *supProxy, want string) {
	t.Helper()
	got, err := n.next(p)
	if err != nil || got != want {
		t.Fatalf("notification %q, %v; want %q; log:\n%s", got, err, want, p.Log())
	}
}

// TestSystemdNotify: under NOTIFY_SOCKET (a path or an abstract name) the
// proxy sends READY=1 once it listens, RELOADING=1 with MONOTONIC_USEC
// then READY=1 around a reload (SIGHUP), and STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, addr string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", fmt.Sprintf("@blastbeat-e2e-notify-%d-%d", os.Getpid(), time.Now().UnixNano())},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := listenNotify(t, tt.addr)
			p := startSupervised(t, supervised{
				vhosts: catchAll,
				setup:  func() ([]string, []*os.File) { return []string{"NOTIFY_SOCKET=" + tt.addr}, nil },
				ready: func(p *supProxy) error {
					got, err := ns.next(p)
					if err == nil && got != "READY=1\n" {
						err = fmt.Errorf("first notification %q, want READY=1", got)
					}
					return err
				},
			})
			// READY=1 came after the listeners were bound.
			c, err := net.Dial("tcp", p.Addr)
			if err != nil {
				t.Fatalf("READY=1 sent before listening: %v", err)
			}
			c.Close()

			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			got, err := ns.next(p)
			usec, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
			if _, perr := strconv.ParseUint(strings.TrimSuffix(usec, "\n"), 10, 64); err != nil || !ok || perr != nil {
				t.Fatalf("on SIGHUP: %q, %v; want RELOADING=1 and MONOTONIC_USEC", got, err)
			}
			ns.expect(t, p, "READY=1\n")
			waitLog(t, p.proxy, `msg="configuration reloaded" by=SIGHUP`)

			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			ns.expect(t, p, "STOPPING=1\n")
			waitProxyExit(t, p.proxy)
		})
	}
}

// TestSystemdWatchdog: under WatchdogSec= (WATCHDOG_USEC) the proxy sends
// WATCHDOG=1 at half that interval once it is ready (it sent none:
// systemd killed a healthy proxy every interval).
func TestSystemdWatchdog(t *testing.T) {
	t.Parallel()
	addr := filepath.Join(t.TempDir(), "notify")
	ns := listenNotify(t, addr)
	p := startSupervised(t, supervised{
		vhosts: catchAll,
		setup: func() ([]string, []*os.File) {
			return []string{"NOTIFY_SOCKET=" + addr, "WATCHDOG_USEC=200000"}, nil
		},
		ready: func(p *supProxy) error {
			got, err := ns.next(p)
			if err == nil && got != "READY=1\n" {
				err = fmt.Errorf("first notification %q, want READY=1", got)
			}
			return err
		},
	})
	ns.expect(t, p, "WATCHDOG=1\n")
	ns.expect(t, p, "WATCHDOG=1\n")
}

// TestSystemdSocketActivation: a socket passed as systemd passes it
// (LISTEN_FDS from descriptor 3, LISTEN_PID the proxy's own pid,
// LISTEN_FDNAMES) serves the bind with its address; another bind is bound
// as usual.
func TestSystemdSocketActivation(t *testing.T) {
	t.Parallel()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	inherited := ln.Addr().String()
	p := startSupervised(t, supervised{
		extra:     "bind = " + inherited + "\n",
		vhosts:    catchAll,
		listenPID: true,
		setup: func() ([]string, []*os.File) {
			f, err := ln.File() // a descriptor of its own, for this try
			if err != nil {
				t.Fatal(err)
			}
			return []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=web"}, []*os.File{f}
		},
	})
	// The proxy holds the socket now; were the test's copy left open,
	// connections would queue on it once the proxy stopped.
	ln.Close()
	waitLog(t, p.proxy, fmt.Sprintf(`msg="listening on an inherited socket" fd=3 name=web addr=%s`, inherited))
	hStartNode(t, p.ZMQ, "n1", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type == "uwsgi" {
			hRespond(n, m.SID, 200, "", "served "+m.Env["PATH_INFO"])
		}
	})
	served := func(a string) {
		t.Helper()
		checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			resp, err := http.Get("http://" + a + "/x")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != "served /x" {
				return fmt.Errorf("GET on %s: %d %q", a, resp.StatusCode, body)
			}
			return nil
		})
	}
	for _, a := range []string{inherited, p.Addr} {
		served(a)
	}
	// A reload that drops the inherited bind is refused (closing the
	// proxy's copy would leave systemd's socket accepting for nobody),
	// and the socket goes on serving.
	p.main = strings.Replace(p.main, "bind = "+inherited+"\n", "", 1)
	p.rewrite(t, catchAll)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p.proxy, "reload refused: bind "+inherited+" is a socket systemd passed in")
	served(inherited)
}

// TestSystemdSocketActivationUnmatched: an inherited socket whose address
// is no bind of the file stops the start, naming the socket.
func TestSystemdSocketActivationUnmatched(t *testing.T) {
	t.Parallel()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	p := launchSupervised(t, supervised{
		vhosts:    catchAll,
		listenPID: true,
		setup: func() ([]string, []*os.File) {
			return []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=stray"}, []*os.File{f}
		},
	})
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatalf("blastbeat did not exit:\n%s", p.Log())
	}
	var ee *exec.ExitError
	want := fmt.Sprintf("inherited socket fd 3 (stray, %s) matches no listen address (%s)", ln.Addr(), p.Addr)
	if !errors.As(p.err, &ee) || ee.ExitCode() != 1 || !strings.Contains(p.Log(), want) {
		t.Fatalf("blastbeat exited with %v, want status 1 and %q in the log:\n%s", p.err, want, p.Log())
	}
}
