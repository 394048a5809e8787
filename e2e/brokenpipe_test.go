package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestStdoutClosedKeepsServing: with access-log = stdout into a pipe whose
// reader is gone (a log shipper that died: blastbeat … | shipper), the
// access log's writes fail, are counted in access_log_dropped_total, and
// the proxy goes on serving. Before, Go's SIGPIPE on stdout killed it,
// and every connection with it.
func TestStdoutClosedKeepsServing(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	stats := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	file := filepath.Join(t.TempDir(), "blastbeat.ini")
	cfg := fmt.Sprintf("[blastbeat]\nbind = %s\nzmq = tcp://127.0.0.1:%d\nstats = %s\naccess-log = stdout\n\n[blastbeat:a.test]\nnode = n1\n",
		addr, freePort(t), stats)
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the reader is gone before the first line
	log := &logBuffer{}
	cmd := exec.Command(binary, file)
	cmd.Stdout, cmd.Stderr = w, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	alive := func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("blastbeat exited: %v\n%s", err, log.String())
		default:
			return nil
		}
	}
	dropped := regexp.MustCompile(`(?m)^blastbeat_access_log_dropped_total (\d+)`)
	get := func(url string) (int, string, error) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	// Requests (404: no such vhost; each an access log line) until a
	// failed write is counted: the proxy has met the closed pipe.
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if err := alive(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := get("http://" + addr + "/"); err != nil {
			return err
		}
		_, body, err := get("http://" + stats + "/metrics")
		if err != nil {
			return err
		}
		m := dropped.FindStringSubmatch(body)
		if m == nil {
			return errors.New("no access_log_dropped_total in /metrics")
		}
		if n, _ := strconv.Atoi(m[1]); n == 0 {
			return errors.New("no access log line dropped yet")
		}
		return nil
	})
	if code, _, err := get("http://" + addr + "/"); err != nil || code != 404 {
		t.Fatalf("after the pipe broke: %d %v, want the proxy still answering 404\n%s", code, err, log.String())
	}
	if err := alive(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("blastbeat exited with %v\n%s", err, log.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("blastbeat did not stop on SIGTERM\n%s", log.String())
	}
}
