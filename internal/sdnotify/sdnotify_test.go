package sdnotify

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen returns a unix datagram socket at addr for the test to read.
func listen(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recv reads one datagram.
func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func env(addr string) func(string) string {
	return func(k string) string {
		if k == EnvSocket {
			return addr
		}
		return ""
	}
}

func TestNotify(t *testing.T) {
	for _, tt := range []struct{ name, addr string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", fmt.Sprintf("@blastbeat-sdnotify-test-%d", time.Now().UnixNano())},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sock := listen(t, tt.addr)
			n, err := FromEnv(env(tt.addr))
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if err := n.Ready(); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, sock); got != "READY=1\n" {
				t.Errorf("Ready sent %q", got)
			}
			var before unix.Timespec
			_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &before)
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			got := recv(t, sock)
			usec, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
			v, err := strconv.ParseInt(strings.TrimSuffix(usec, "\n"), 10, 64)
			if !ok || err != nil || v < before.Nano()/1000 || v > before.Nano()/1000+int64(time.Minute/time.Microsecond) {
				t.Errorf("Reloading sent %q, want RELOADING=1 and MONOTONIC_USEC about %d", got, before.Nano()/1000)
			}
			if err := n.Stopping(); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, sock); got != "STOPPING=1\n" {
				t.Errorf("Stopping sent %q", got)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	n, err := FromEnv(env(""))
	if n != nil || err != nil {
		t.Fatalf("FromEnv with no variable = %v, %v", n, err)
	}
	// A nil Notifier does nothing.
	if n.Ready() != nil || n.Reloading() != nil || n.Stopping() != nil || n.Close() != nil {
		t.Error("a nil Notifier failed")
	}
	for _, bad := range []string{"vsock:2:1234", "relative/path", filepath.Join(t.TempDir(), "absent")} {
		if _, err := FromEnv(env(bad)); err == nil {
			t.Errorf("FromEnv(%s=%q) did not fail", EnvSocket, bad)
		}
	}
}

// TestWatchdogInterval: half of WATCHDOG_USEC, for this process only.
func TestWatchdogInterval(t *testing.T) {
	for _, tt := range []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"30000000", "", 15 * time.Second},
		{"30000000", "42", 15 * time.Second},
		{"30000000", "43", 0}, // another process's
		{"0", "", 0},
		{"-5", "", 0},
		{"x", "", 0},
	} {
		env := map[string]string{EnvWatchdogUSec: tt.usec, EnvWatchdogPID: tt.pid}
		if got := WatchdogInterval(func(k string) string { return env[k] }, 42); got != tt.want {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, want %v", tt.usec, tt.pid, got, tt.want)
		}
	}
}
