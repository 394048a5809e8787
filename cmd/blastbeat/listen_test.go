package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/config"
)

// busyAddr returns an address this test holds a listener on until it ends.
func busyAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// freeAddr returns an address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestListenErrorNamesLine starts the server on an address in use and
// checks that the error names that address and its line.
func TestListenErrorNamesLine(t *testing.T) {
	dir := t.TempDir()
	testCA(t, dir)
	busy := busyAddr(t)
	tests := []struct {
		name string
		src  string // %s: the busy address, %f: a free one
		want string // after the file name
	}{
		{
			name: "[blastbeat] bind",
			src:  "[blastbeat]\nbind = %s\nzmq = inproc://listen-1\n[blastbeat:*]\nnode = n\n",
			want: ":2: [blastbeat] bind " + busy + ": bind: address already in use",
		},
		{
			// The free address is bound (and left open by gnet) before the
			// busy one fails.
			name: "virtual host bind after a free one",
			src:  "[blastbeat]\nbind = %f\nzmq = inproc://listen-2\n[blastbeat:a.test]\nnode = n\nbind = %s\n",
			want: ":6: [blastbeat:a.test] bind " + busy + ": bind: address already in use",
		},
		{
			name: "bind-ssl",
			src: "[blastbeat]\nbind = %f\nzmq = inproc://listen-3\n[blastbeat:secure.local]\nnode = n\n" +
				"certificate = foo.pem\nkey = foo.key\nbind-ssl = %f\nbind-ssl = %s\n",
			want: ":9: [blastbeat:secure.local] bind-ssl " + busy + ": bind: address already in use",
		},
	}
	tests = append(tests, struct {
		name string
		src  string
		want string
	}{
		name: "zmq endpoint",
		src:  "[blastbeat]\nbind = %f\n; the nodes' side\nzmq = tcp://%s\n[blastbeat:*]\nnode = n\n",
		want: ":4: [blastbeat] zmq tcp://" + busy + ": address already in use",
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.ReplaceAll(tt.src, "%s", busy)
			for strings.Contains(src, "%f") {
				src = strings.Replace(src, "%f", freeAddr(t), 1)
			}
			file := writeFile(t, dir, "listen.ini", src)
			var stdout, stderr bytes.Buffer
			if code := run([]string{file}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), file+tt.want) {
				t.Fatalf("run = %d, stderr:\n%s\nwant 1 and %q", code, stderr.String(), file+tt.want)
			}
		})
	}
}

func TestListenAddrs(t *testing.T) {
	cfg := &config.Options{
		Binds: []config.Bind{{Addr: "127.0.0.1:8080", Line: 2}, {Addr: "[::1]:8080", Line: 3}},
		VHosts: []config.VHost{
			{Name: "a.test", Binds: []config.Bind{{Addr: "127.0.0.1:8080", Line: 9}, {Addr: "0.0.0.0:8081", Line: 10}},
				BindSSL: []config.Bind{{Addr: "0.0.0.0:8443", Line: 11}}},
			{Name: "b.test", BindSSL: []config.Bind{{Addr: "0.0.0.0:8443", Line: 15}, {Addr: "[::]:8443", Line: 16}}},
		},
		ZMQ: []string{"tcp://*:5000", "inproc://x"},
	}
	want := []listenAddr{
		{addr: "127.0.0.1:8080", section: "blastbeat", line: 2},
		{addr: "[::1]:8080", section: "blastbeat", line: 3},
		{addr: "0.0.0.0:8081", section: "blastbeat:a.test", line: 10},
		{addr: "0.0.0.0:8443", tls: true, section: "blastbeat:a.test", line: 11},
		{addr: "[::]:8443", tls: true, section: "blastbeat:b.test", line: 16},
	}
	got := listenAddrs(cfg)
	if len(got) != len(want) {
		t.Fatalf("listenAddrs = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("listenAddrs[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	tests := []struct {
		name string
		cfg  *config.Options
		want string
	}{
		{name: "every kind", cfg: cfg, want: "bind=127.0.0.1:8080,[::1]:8080,0.0.0.0:8081 bind-ssl=0.0.0.0:8443,[::]:8443 zmq=tcp://*:5000,inproc://x"},
		{name: "no bind-ssl", cfg: &config.Options{Binds: cfg.Binds[:1], ZMQ: cfg.ZMQ[1:]}, want: `bind=127.0.0.1:8080 bind-ssl="" zmq=inproc://x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			newLogger(&config.Options{LogLevel: "info"}, &out).Info("blastbeat started", startAttrs(tt.cfg)...)
			if want := "version=" + version + " " + tt.want + "\n"; !strings.HasSuffix(out.String(), want) {
				t.Errorf("start line %q, want it to end %q", out.String(), want)
			}
		})
	}
}

func TestNetwork(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:80", "tcp4"},
		{"0.0.0.0:80", "tcp4"},
		{"[::]:80", "tcp6"},
		{"[fe80::1%eth0]:80", "tcp6"},
		{"localhost:80", "tcp"},
		{":80", "tcp"},
	}
	for _, tt := range tests {
		if got := network(tt.addr); got != tt.want {
			t.Errorf("network(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// waitWriter is a log writer that closes found when what it was written
// contains want. Safe for concurrent use.
type waitWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  string
	found chan struct{}
}

func (w *waitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.buf.String(), w.want)
	w.buf.Write(p)
	if !had && strings.Contains(w.buf.String(), w.want) {
		close(w.found)
	}
	return len(p), nil
}

func (w *waitWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestStartLine starts the proxy for real, checks the start line and
// stops it with SIGTERM.
func TestStartLine(t *testing.T) {
	// Not under a supervisor: run would talk to the test's own.
	for _, k := range []string{"NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "UWSGI_EMPEROR_FD"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	file := writeFile(t, dir, "start.ini", "[blastbeat]\nbind = "+addr+"\nzmq = inproc://start-line\n[blastbeat:*]\nnode = n\n")
	cpus := runtime.GOMAXPROCS(0)
	workers := max(1, cpus-1)
	pollers := workers + 1 // the loops and the bridge
	if workers > 1 {
		pollers++ // gnet's main reactor
	}
	procs := procsFor(cpus, pollers)
	if os.Getenv("GOMAXPROCS") != "" {
		procs = cpus
	}
	want := fmt.Sprintf(" bind=%s bind-ssl=\"\" zmq=inproc://start-line workers=%d procs=%d\n", addr, workers, procs)
	log := &waitWriter{want: "blastbeat started", found: make(chan struct{})}
	done := make(chan int, 1)
	go func() { done <- run([]string{file}, &bytes.Buffer{}, log) }()
	select {
	case <-log.found:
	case code := <-done:
		t.Fatalf("run = %d before starting:\n%s", code, log)
	case <-time.After(30 * time.Second):
		t.Fatalf("no start line:\n%s", log)
	}
	// run has caught SIGTERM since before it listened.
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run = %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not stop:\n%s", log)
	}
	if !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}
