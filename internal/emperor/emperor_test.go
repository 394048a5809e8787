package emperor

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// emperorPair returns a Vassal on one end of a socketpair and the other
// end, the Emperor's.
func emperorPair(t *testing.T) (*Vassal, *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	emp := os.NewFile(uintptr(fds[0]), "emperor")
	t.Cleanup(func() { emp.Close() })
	v, err := FromEnv(func(k string) string {
		if k == EnvFD {
			return strconv.Itoa(fds[1])
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, emp
}

// readN reads n bytes from the Emperor's end within a deadline.
func readN(t *testing.T, emp *os.File, n int) []byte {
	t.Helper()
	_ = emp.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(emp, b); err != nil {
		t.Fatalf("reading %d bytes from the vassal: %v", n, err)
	}
	return b
}

func TestFromEnvUnset(t *testing.T) {
	v, err := FromEnv(func(string) string { return "" })
	if v != nil || err != nil {
		t.Fatalf("FromEnv with no variable = %v, %v; want nil, nil", v, err)
	}
	for _, bad := range []string{"x", "-1", "99999"} {
		if _, err := FromEnv(func(string) string { return bad }); err == nil {
			t.Errorf("FromEnv(%s=%q) did not fail", EnvFD, bad)
		}
	}
}

func TestMessages(t *testing.T) {
	v, emp := emperorPair(t)
	for _, step := range []func() error{v.Ready, v.Ready, v.Loyal, v.Heartbeat, v.Loyal, v.Heartbeat, v.Reloaded} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	// Ready and Loyal are sent once; Reloaded says spawned and accepting
	// again.
	if got, want := readN(t, emp, 7), []byte{1, 5, 17, 26, 26, 1, 5}; !bytes.Equal(got, want) {
		t.Fatalf("the Emperor read %v, want %v", got, want)
	}
}

func TestHeartbeats(t *testing.T) {
	v, emp := emperorPair(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.Heartbeats(time.Millisecond, stop, func(err error) { t.Error(err) }, nil)
	}()
	if got := readN(t, emp, 3); !bytes.Equal(got, []byte{26, 26, 26}) {
		t.Fatalf("heartbeats: %v", got)
	}
	close(stop)
	<-done

	// A failed write ends the heartbeats.
	emp.Close()
	failed := 0
	v.Heartbeats(time.Millisecond, make(chan struct{}), func(error) { failed++ }, nil)
	if failed != 1 {
		t.Errorf("heartbeats to a closed Emperor failed %d times, want 1 then an end", failed)
	}
}

// TestHeartbeatsSkippedWhileNotAlive: no heartbeat while alive says no
// (a stuck proxy must not look well to the Emperor), and they resume when
// it says yes again.
func TestHeartbeatsSkippedWhileNotAlive(t *testing.T) {
	v, emp := emperorPair(t)
	var calls atomic.Int32
	alive := func() bool { return calls.Add(1) > 5 } // not alive for 5 beats
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.Heartbeats(time.Millisecond, stop, func(err error) { t.Error(err) }, alive)
	}()
	if got := readN(t, emp, 2); !bytes.Equal(got, []byte{26, 26}) {
		t.Fatalf("heartbeats once alive: %v", got)
	}
	close(stop)
	<-done
	v.Close()
	rest, err := io.ReadAll(emp)
	if err != nil {
		t.Fatal(err)
	}
	// Every look at alive past the fifth sent one.
	if sent, looks := 2+len(rest), int(calls.Load()); sent != looks-5 {
		t.Fatalf("%d heartbeats for %d looks at alive, want %d: the 5 that said no were not skipped", sent, looks, looks-5)
	}
}

func TestNext(t *testing.T) {
	v, emp := emperorPair(t)
	if _, err := emp.Write([]byte{1, 42, 0}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []Command{Reload, Command(42), Stop} {
		if got, err := v.Next(); got != want || err != nil {
			t.Fatalf("Next = %v, %v; want %v", got, err, want)
		}
	}
	emp.Close()
	if got, err := v.Next(); got != Stop || !errors.Is(err, io.EOF) {
		t.Fatalf("Next after the Emperor closed = %v, %v; want stop, EOF", got, err)
	}
	if err := v.Heartbeat(); err == nil {
		t.Error("a heartbeat to a closed Emperor did not fail")
	}
}

func TestCommandString(t *testing.T) {
	for c, want := range map[Command]string{Stop: "stop", Reload: "reload", GracefulStop: "graceful-stop", 7: "byte 7"} {
		if c.String() != want {
			t.Errorf("%d.String() = %q, want %q", byte(c), c.String(), want)
		}
	}
}

// TestOpenLeavesNonSocketOpen: a descriptor that is not a socket is
// refused and stays open (before, it was closed: UWSGI_EMPEROR_FD=2
// closed stderr).
func TestOpenLeavesNonSocketOpen(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := Open(int(w.Fd())); err == nil {
		t.Fatal("Open took a pipe for the Emperor's socket")
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatalf("the pipe was closed: %v", err)
	}
}
