package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

// emperorLink is the uWSGI Emperor's end of the socketpair it shares with
// a vassal.
type emperorLink struct {
	f *os.File
}

// emperorPair makes a socketpair for a vassal: the child's end goes to
// the process as descriptor 3 (UWSGI_EMPEROR_FD=3), the other end stays
// with the test, in *link (replaced on each start try).
func emperorPair(t *testing.T, link **emperorLink) func() ([]string, []*os.File) {
	return func() ([]string, []*os.File) {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Non-blocking, so that os.File polls it and deadlines work.
		if err := syscall.SetNonblock(fds[0], true); err != nil {
			t.Fatal(err)
		}
		l := &emperorLink{f: os.NewFile(uintptr(fds[0]), "emperor")}
		t.Cleanup(func() { l.f.Close() })
		*link = l
		return []string{"UWSGI_EMPEROR_FD=3"}, []*os.File{os.NewFile(uintptr(fds[1]), "vassal")}
	}
}

// read reads one byte from the vassal, failing the test when none comes
// within 10 s.
func (l *emperorLink) read(t *testing.T, p *supProxy) byte {
	t.Helper()
	b, err := l.tryRead()
	if err != nil {
		t.Fatalf("reading from the vassal: %v; log:\n%s", err, p.Log())
	}
	return b
}

// tryRead reads one byte from the vassal, waiting up to 10 s.
func (l *emperorLink) tryRead() (byte, error) {
	if err := l.f.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return 0, err
	}
	var b [1]byte
	_, err := io.ReadFull(l.f, b[:])
	return b[0], err
}

// pending fails the test if the vassal sent a byte not read yet.
func (l *emperorLink) pending(t *testing.T, p *supProxy) {
	t.Helper()
	if err := l.f.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if n, err := l.f.Read(b[:]); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the vassal sent %v (%v) too early; log:\n%s", b[:n], err, p.Log())
	}
}

// send writes one byte to the vassal.
func (l *emperorLink) send(t *testing.T, b byte) {
	t.Helper()
	if _, err := l.f.Write([]byte{b}); err != nil {
		t.Fatal(err)
	}
}

// emperorReady waits until the vassal listens, then for its "spawned"
// and "ready to accept requests" bytes (1, 5). A vassal that could not bind (another test's process took
// the free port first, and its listening fooled waitListening) ends the
// link with EOF: that is returned, not fatal, so that startSupervised
// starts it again on another port.
func emperorReady(link **emperorLink) func(*supProxy) error {
	return func(p *supProxy) error {
		if err := waitListening(p); err != nil {
			return err
		}
		for _, want := range []byte{1, 5} {
			b, err := (*link).tryRead()
			if err != nil {
				return fmt.Errorf("reading the vassal's ready bytes: %w", err)
			}
			if b != want {
				return fmt.Errorf("the vassal sent %d, want %d (1 spawned, then 5 accepting)", b, want)
			}
		}
		return nil
	}
}

// get makes one request through p; with no node connected the proxy
// answers it itself (503).
func get(t *testing.T, p *supProxy) {
	t.Helper()
	resp, err := http.Get(p.URL("/"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// TestEmperorLoyalThenStop: a vassal says it is ready once it listens,
// announces its loyalty (17) once it served a request, not before, and
// stops gracefully (exit 0) on the Emperor's 0.
func TestEmperorLoyalThenStop(t *testing.T) {
	t.Parallel()
	var link *emperorLink
	p := startSupervised(t, supervised{vhosts: catchAll, setup: emperorPair(t, &link), ready: emperorReady(&link)})
	link.pending(t, p)
	get(t, p)
	if b := link.read(t, p); b != 17 {
		t.Fatalf("after the first request the vassal sent %d, want 17 (loyal)", b)
	}
	waitLog(t, p.proxy, `msg="first request served: loyal to the uWSGI Emperor"`)
	get(t, p)
	link.send(t, 0)
	waitProxyExit(t, p.proxy)
	waitLog(t, p.proxy, `msg=stopping uwsgi-emperor=stop`)
	// Loyalty is announced once.
	_ = link.f.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := io.ReadAll(link.f); err != nil || len(rest) > 0 {
		t.Errorf("after the loyalty the vassal sent %v (%v)", rest, err)
	}
}

// TestEmperorGracefulStop: the Emperor's 2 (its --emperor-graceful-shutdown
// sends it instead of 0) stops the vassal gracefully too. Before, it was
// logged as an unknown command and ignored, and the Emperor SIGKILLed the
// vassal 30 s later, its connections cut.
func TestEmperorGracefulStop(t *testing.T) {
	t.Parallel()
	var link *emperorLink
	p := startSupervised(t, supervised{vhosts: catchAll, setup: emperorPair(t, &link), ready: emperorReady(&link)})
	link.send(t, 2)
	waitProxyExit(t, p.proxy)
	waitLog(t, p.proxy, `msg=stopping uwsgi-emperor=graceful-stop`)
}

// TestEmperorHeartbeatThenEOF: with emperor-heartbeat the vassal sends a
// heartbeat (26) at that pace; when the Emperor goes away (EOF) it stops
// gracefully.
func TestEmperorHeartbeatThenEOF(t *testing.T) {
	t.Parallel()
	var link *emperorLink
	p := startSupervised(t, supervised{extra: "emperor-heartbeat = 20ms\n", vhosts: catchAll,
		setup: emperorPair(t, &link), ready: emperorReady(&link)})
	for i := 0; i < 3; i++ {
		if b := link.read(t, p); b != 26 {
			t.Fatalf("heartbeat %d: the vassal sent %d, want 26", i, b)
		}
	}
	link.f.Close()
	waitProxyExit(t, p.proxy)
	waitLog(t, p.proxy, `msg=stopping uwsgi-emperor=gone err=EOF`)
}

// TestEmperorReload: the Emperor's 1 takes the reload path of SIGHUP;
// the vassal goes on serving, and says again that it is up and accepts
// requests (1, 5): the Emperor cleared both marks when it asked (its
// stats showed the vassal neither ready nor accepting after a reload).
func TestEmperorReload(t *testing.T) {
	t.Parallel()
	var link *emperorLink
	p := startSupervised(t, supervised{vhosts: catchAll, setup: emperorPair(t, &link), ready: emperorReady(&link)})
	link.send(t, 1)
	waitLog(t, p.proxy, `msg="configuration reloaded" by="uWSGI Emperor"`)
	for _, want := range []byte{1, 5} {
		if b := link.read(t, p); b != want {
			t.Fatalf("after the Emperor's reload the vassal sent %d, want %d (1 spawned, then 5 accepting)", b, want)
		}
	}
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatalf("not serving after the Emperor's reload: %v", err)
	}
	c.Close()
	get(t, p)
	if b := link.read(t, p); b != 17 {
		t.Fatalf("after the first request the vassal sent %d, want 17 (loyal)", b)
	}
}
