package e2e

import (
	"bufio"
	"fmt"
	"io"
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

// TestStalledStderrDoesNotStallLoops: with stderr a pipe that nobody
// reads (a stalled journald, a container log pipe), the event loop goes
// on serving while it logs: here a thousand failed TLS handshakes, a line
// each at log-level = debug, many times what the pipe holds. The lines
// past log-buffer are dropped, and their count is logged once stderr
// takes lines again. Before, the loop blocked in its write to stderr, and
// every connection on it with it.
func TestStalledStderrDoesNotStallLoops(t *testing.T) {
	t.Parallel()
	pki := tsNewPKI(t, "")
	cert, key := pki.issue(t, "secure", tsSecure)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	file := filepath.Join(t.TempDir(), "blastbeat.ini")
	cfg := fmt.Sprintf("[blastbeat]\nbind = %s\nzmq = tcp://127.0.0.1:%d\nworkers = 1\nlog-level = debug\nlog-buffer = 64k\n\n"+
		"[blastbeat:%s]\nnode = n1\nbind-ssl = %s\ncertificate = %s\nkey = %s\n", addr, freePort(t), tsSecure, tlsAddr, cert, key)
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(binary, file)
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		go func() { _, _ = io.Copy(io.Discard, r) }() // its last lines, so that it can exit
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("blastbeat did not stop on SIGTERM")
		}
	}()
	// Read the log until the start line, then stop reading it.
	br := bufio.NewReader(r)
	started := make(chan error, 1)
	go func() {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				started <- fmt.Errorf("the log ended before the start line: %v", err)
				return
			}
			if strings.Contains(line, "blastbeat started") {
				started <- nil
				return
			}
		}
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no start line")
	}
	// A thousand handshakes that fail: a debug line each, logged on the
	// loop, while stderr takes nothing.
	for i := range 1000 {
		c, err := net.DialTimeout("tcp", tlsAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // not TLS
		_, err = io.Copy(io.Discard, c)                               // the proxy answers, and closes it
		c.Close()
		if isTimeout(err) {
			t.Fatalf("failed handshake %d: not closed within 5 s: the loop waits for stderr", i)
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("a request after the log stalled: %v (the loop waits for stderr)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("a request after the log stalled: %d, want 404 (no such vhost)", resp.StatusCode)
	}
	// stderr is read again: the count of dropped lines follows.
	found := make(chan bool, 1)
	go func() {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				found <- false
				return
			}
			if strings.Contains(line, "log lines dropped") {
				found <- true
				_, _ = io.Copy(io.Discard, br)
				return
			}
		}
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Fatal("the log ended without the count of dropped lines")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no count of dropped lines once stderr was read again")
	}
}
