// Package sdnotify tells systemd (or any supervisor that speaks its
// protocol) about the service's state: sd_notify(3) without libsystemd.
// Each state is one datagram of "KEY=VALUE" lines to the unix datagram
// socket named by NOTIFY_SOCKET: a path, or "@name" for an abstract
// socket. (systemd 254's vsock:CID:PORT form is not supported.)
package sdnotify

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// EnvSocket names the environment variable holding the socket's address.
const EnvSocket = "NOTIFY_SOCKET"

// writeTimeout bounds one notification: the socket is local, but a
// supervisor that stopped reading must not stall the caller.
const writeTimeout = 5 * time.Second

// Notifier sends notifications. A nil *Notifier sends nothing, so callers
// need not check whether they run under systemd.
type Notifier struct {
	conn *net.UnixConn
}

// FromEnv connects to the socket named by NOTIFY_SOCKET in getenv; it
// returns nil and no error when the variable is unset or empty.
func FromEnv(getenv func(string) string) (*Notifier, error) {
	addr := getenv(EnvSocket)
	if addr == "" {
		return nil, nil
	}
	if !strings.HasPrefix(addr, "/") && !strings.HasPrefix(addr, "@") {
		return nil, fmt.Errorf("sdnotify: %s=%q: only a path or an @abstract name is supported", EnvSocket, addr)
	}
	// A leading "@" is the abstract namespace to Go as to systemd: the
	// name's first byte becomes NUL.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("sdnotify: %s: %w", EnvSocket, err)
	}
	return &Notifier{conn: c}, nil
}

// Notify sends the lines of state ("READY=1", "STATUS=…") as one
// datagram.
func (n *Notifier) Notify(state ...string) error {
	if n == nil {
		return nil
	}
	_ = n.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := n.conn.Write([]byte(strings.Join(state, "\n") + "\n")); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Ready says that the service is up (after its start, and at the end of
// a reload).
func (n *Notifier) Ready() error { return n.Notify("READY=1") }

// Reloading says that a reload begins; Ready says it ended. It carries
// MONOTONIC_USEC, which Type=notify-reload services must send.
func (n *Notifier) Reloading() error {
	if n == nil {
		return nil
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sdnotify: clock_gettime: %w", err)
	}
	return n.Notify("RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", ts.Nano()/1000))
}

// Watchdog is systemd's keep-alive (WatchdogSec=): without one every
// WATCHDOG_USEC, systemd takes the service for hung.
func (n *Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// Environment variables of systemd's watchdog.
const (
	EnvWatchdogUSec = "WATCHDOG_USEC"
	EnvWatchdogPID  = "WATCHDOG_PID"
)

// WatchdogInterval returns how often to send Watchdog: half of
// WATCHDOG_USEC, as sd_watchdog_enabled(3) advises; 0 when it is unset or
// not a positive number, or when WATCHDOG_PID names another process.
func WatchdogInterval(getenv func(string) string, pid int) time.Duration {
	usec, err := strconv.ParseInt(getenv(EnvWatchdogUSec), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if p := getenv(EnvWatchdogPID); p != "" && p != strconv.Itoa(pid) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// Stopping says that the service is shutting down.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Close closes the connection to the socket.
func (n *Notifier) Close() error {
	if n == nil {
		return nil
	}
	return n.conn.Close()
}
