package server

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/session"
)

// stuckWriter blocks every Write until release is closed, as a hung
// file system would; entered is closed on the first.
type stuckWriter struct {
	entered, release chan struct{}
}

func (w *stuckWriter) Write(b []byte) (int, error) {
	select {
	case <-w.entered:
	default:
		close(w.entered)
	}
	<-w.release
	return len(b), nil
}

// TestAccessLogReopenDoesNotWaitForWrites: SIGUSR1's Reopen returns while
// the writer is stuck in a write; the writer takes the new file after it.
// Before, Reopen waited for the lock the stuck write held, and with it
// the goroutine that reads the signals (SIGTERM included).
func TestAccessLogReopenDoesNotWaitForWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	a, err := newAccessLog(path, "combined", 1, 16<<20, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stuck := &stuckWriter{entered: make(chan struct{}), release: make(chan struct{})}
	a.bufs[0].mu.Lock()
	a.out = stuck // before the writer's first write: it reads a.out only in flush
	a.bufs[0].b = append(a.bufs[0].b, "line 1\n"...)
	a.bufs[0].mu.Unlock()
	a.kick <- struct{}{}
	<-stuck.entered
	done := make(chan error, 1)
	go func() { done <- a.Reopen() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Reopen waits for a stuck write")
	}
	close(stuck.release)
	a.bufs[0].mu.Lock()
	a.bufs[0].b = append(a.bufs[0].b, "line 2\n"...)
	a.bufs[0].mu.Unlock()
	a.Close()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "line 2\n" {
		t.Fatalf("the reopened file holds %q (%v), want line 2", got, err)
	}
}

type failingWriter struct{}

func (failingWriter) Write(b []byte) (int, error) { return 3, errors.New("no space left on device") }

// TestAccessLogWriteErrorsCounted: lines a failed write lost count as
// dropped (before, they were lost silently).
func TestAccessLogWriteErrorsCounted(t *testing.T) {
	a := &accessLog{bufs: make([]accessBuf, 1), out: failingWriter{}}
	a.bufs[0].b = []byte("one\ntwo\nthree\n")
	var spare []byte
	a.flush(&spare)
	if n := a.dropped.Load(); n != 3 {
		t.Fatalf("dropped %d, want 3", n)
	}
}

// TestAccessLogStdout: access-log = stdout writes to the process's
// standard output (a container's log), not to a file named "stdout".
func TestAccessLogStdout(t *testing.T) {
	t.Chdir(t.TempDir())
	a, err := newAccessLog("stdout", "combined", 1, 16<<20, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.out != os.Stdout || a.file != nil {
		t.Fatalf("access-log = stdout writes to %v", a.out)
	}
	if _, err := os.Stat("stdout"); err == nil {
		t.Fatal("a file named stdout was created")
	}
}

// TestAccessLogBufferBound: a loop's buffer holds at most
// access-log-buffer bytes of lines; past it a line is dropped and counted.
func TestAccessLogBufferBound(t *testing.T) {
	a := &accessLog{bufs: make([]accessBuf, 1), maxBytes: 100}
	a.bufs[0].b = make([]byte, 90)
	ex := &exchange{entry: &accessEntry{remote: "127.0.0.1", method: "GET", uri: "/", proto: "HTTP/1.1"}}
	a.write(0, ex, nil, session.SID{}, 0, time.Now()) // under the bound: appended
	n := len(a.bufs[0].b)
	if n <= 90 || a.dropped.Load() != 0 {
		t.Fatalf("under access-log-buffer: %d bytes, %d dropped; want the line kept", n, a.dropped.Load())
	}
	a.write(0, ex, nil, session.SID{}, 0, time.Now()) // past it: dropped
	if len(a.bufs[0].b) != n || a.dropped.Load() != 1 {
		t.Fatalf("past access-log-buffer: %d bytes (was %d), %d dropped; want the line dropped and counted", len(a.bufs[0].b), n, a.dropped.Load())
	}
}

// TestAccessLogDropsCountedWhileStuck: lines dropped while the writer is
// stuck in a write (a hung NFS, a stalled pipe) show in
// access_log_dropped_total at once. Before, a loop counted them in its
// buffer and only the writer's next flush, the very thing stuck, moved
// them to the metric.
func TestAccessLogDropsCountedWhileStuck(t *testing.T) {
	a, err := newAccessLog(filepath.Join(t.TempDir(), "access.log"), "combined", 1, 200, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stuck := &stuckWriter{entered: make(chan struct{}), release: make(chan struct{})}
	a.bufs[0].mu.Lock()
	a.out = stuck // before the writer's first write: it reads a.out only in flush
	a.bufs[0].b = append(a.bufs[0].b, "line 1\n"...)
	a.bufs[0].mu.Unlock()
	a.kick <- struct{}{}
	<-stuck.entered
	ex := &exchange{entry: &accessEntry{remote: "127.0.0.1", method: "GET", uri: "/", proto: "HTTP/1.1"}}
	for range 10 { // 10 lines of about 100 bytes into a 200-byte buffer
		a.write(0, ex, nil, session.SID{}, 0, time.Now())
	}
	if n := a.dropped.Load(); n == 0 {
		t.Errorf("%d lines dropped while the writer is stuck; the metric says 0", 10-bytes.Count(a.bufs[0].b, []byte{'\n'}))
	}
	close(stuck.release)
	a.Close()
}

// tearingWriter fails its first write after n bytes, as a disk that
// filled up mid-write does, and takes every later write whole.
type tearingWriter struct {
	n      int
	failed bool
	got    []byte
}

func (w *tearingWriter) Write(b []byte) (int, error) {
	if !w.failed {
		w.failed = true
		w.got = append(w.got, b[:w.n]...)
		return w.n, errors.New("no space left on device")
	}
	w.got = append(w.got, b...)
	return len(b), nil
}

// TestAccessLogTornLineEnded: a write that failed inside a line leaves
// that line's head in the file; the next write begins on a line of its
// own. Before, the next line was glued to the torn head, and a log
// parser lost both.
func TestAccessLogTornLineEnded(t *testing.T) {
	w := &tearingWriter{n: len("one\ntw")}
	a := &accessLog{bufs: make([]accessBuf, 1), out: w}
	a.bufs[0].b = []byte("one\ntwo\nthree\n")
	var spare []byte
	a.flush(&spare)
	if n := a.dropped.Load(); n != 2 {
		t.Fatalf("dropped %d, want 2 (two, torn; three)", n)
	}
	a.bufs[0].b = append(a.bufs[0].b, "four\n"...)
	a.flush(&spare)
	if string(w.got) != "one\ntw\nfour\n" {
		t.Fatalf("the log holds %q, want the torn line ended before four", w.got)
	}
}

// TestAccessLogWriteErrorsLogged: a failed write is logged at once with
// the lines it lost; while writes go on failing, one line per
// accessLogErrorEvery sums the lines lost since; the first write that
// works again is logged. Before, a full disk showed only in
// access_log_dropped_total.
func TestAccessLogWriteErrorsLogged(t *testing.T) {
	var out bytes.Buffer
	a := &accessLog{dest: "/var/log/bb.log", log: slog.New(slog.NewTextHandler(&out, nil))}
	t0 := time.Unix(1000, 0)
	full := errors.New("no space left on device")
	a.report(3, full, t0)
	a.report(2, full, t0.Add(time.Second))
	a.report(4, full, t0.Add(accessLogErrorEvery-time.Second))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], "lines-lost=3") ||
		!strings.Contains(lines[0], "no space left on device") || !strings.Contains(lines[0], "/var/log/bb.log") {
		t.Fatalf("after three failures within a minute:\n%s", out.String())
	}
	a.report(1, full, t0.Add(accessLogErrorEvery))
	a.report(0, nil, t0.Add(accessLogErrorEvery+time.Second))
	a.report(0, nil, t0.Add(accessLogErrorEvery+2*time.Second))
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "lines-lost=7") || !strings.Contains(lines[2], "writing again") || !strings.Contains(lines[2], "lines-lost=0") {
		t.Fatalf("a minute on, then a write that works:\n%s", out.String())
	}
}
