// Package emperor is the vassal side of the uWSGI Emperor protocol: one
// byte at a time over the stream socket the Emperor passes to each vassal
// it starts, its descriptor number in UWSGI_EMPEROR_FD.
//
// The bytes, as checked against uWSGI 2.0.21's Emperor (its log names
// each one it understands):
//
//	vassal → Emperor   1  spawned ("vassal NAME has been spawned"): its
//	                      stats' `ready`
//	                   5  accepting ("vassal NAME is ready to accept
//	                      requests"): its stats' `accepting`; its reload
//	                      (1, below) clears both, and a uWSGI vassal says
//	                      both again as it comes back
//	                  17  loyal ("vassal NAME is now loyal"): it served a
//	                      request; the Emperor throttles the respawn of
//	                      vassals that die before they are loyal
//	                  26  heartbeat: once a vassal sent one, the Emperor
//	                      respawns it when none came for
//	                      emperor-required-heartbeat (30 s by default)
//	Emperor → vassal   0  stop (the vassal file was removed; Emperor stop)
//	                   1  reload (the vassal file was touched)
//	                   2  stop gracefully (the same, with the Emperor's
//	                      --emperor-graceful-shutdown); BlastBeat's stop
//	                      is always graceful
//	                 EOF  the Emperor is gone
package emperor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// EnvFD names the environment variable holding the descriptor of the
// socket to the Emperor.
const EnvFD = "UWSGI_EMPEROR_FD"

// The bytes a vassal sends.
const (
	msgSpawned   = 1
	msgAccepting = 5
	msgLoyal     = 17
	msgHeartbeat = 26
)

// Command is a byte the Emperor sent.
type Command byte

// The commands of the Emperor.
const (
	Stop         Command = 0
	Reload       Command = 1
	GracefulStop Command = 2
)

func (c Command) String() string {
	switch c {
	case Stop:
		return "stop"
	case Reload:
		return "reload"
	case GracefulStop:
		return "graceful-stop"
	}
	return "byte " + strconv.Itoa(int(c))
}

// Vassal is the link to the Emperor. Its methods are safe for concurrent
// use; Next is meant for one reader.
type Vassal struct {
	conn  net.Conn
	wmu   sync.Mutex // one write at a time
	ready atomic.Bool
	loyal atomic.Bool
}

// FromEnv opens the link named by UWSGI_EMPEROR_FD in getenv; it returns
// nil and no error when the variable is unset or empty (not a vassal).
func FromEnv(getenv func(string) string) (*Vassal, error) {
	s := getenv(EnvFD)
	if s == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("emperor: %s=%q: not a file descriptor", EnvFD, s)
	}
	return Open(fd)
}

// Open takes over fd, a stream socket to the Emperor: it is closed and
// replaced by a close-on-exec duplicate.
func Open(fd int) (*Vassal, error) {
	// Checked before os.NewFile, whose Close (or finalizer) would close
	// a descriptor that is not the Emperor's socket: a stray
	// UWSGI_EMPEROR_FD=2 must not close stderr.
	if _, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE); err != nil {
		return nil, fmt.Errorf("emperor: %s=%d: not a socket: %w", EnvFD, fd, err)
	}
	f := os.NewFile(uintptr(fd), "emperor")
	if f == nil {
		return nil, fmt.Errorf("emperor: %s=%d: not a file descriptor", EnvFD, fd)
	}
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("emperor: %s=%d: %w", EnvFD, fd, err)
	}
	return &Vassal{conn: c}, nil
}

// send writes bytes to the Emperor.
func (v *Vassal) send(b ...byte) error {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	if _, err := v.conn.Write(b); err != nil {
		return fmt.Errorf("emperor: write: %w", err)
	}
	return nil
}

// Ready tells the Emperor that the vassal is up and accepts requests (1
// and 5), once: the calls after the first send nothing.
func (v *Vassal) Ready() error {
	if v.ready.Swap(true) {
		return nil
	}
	return v.send(msgSpawned, msgAccepting)
}

// Reloaded says 1 and 5 again after the Emperor's reload: the Emperor
// cleared both in its records when it sent it (its stats showed the
// vassal neither ready nor accepting for the rest of its life).
func (v *Vassal) Reloaded() error { return v.send(msgSpawned, msgAccepting) }

// Loyal tells the Emperor that the vassal served its first request, once:
// the calls after the first send nothing.
func (v *Vassal) Loyal() error {
	if v.loyal.Swap(true) {
		return nil
	}
	return v.send(msgLoyal)
}

// Heartbeat tells the Emperor that the vassal is alive.
func (v *Vassal) Heartbeat() error { return v.send(msgHeartbeat) }

// Heartbeats sends a heartbeat at once, then every interval until stop is
// closed or a write fails (the Emperor is gone): that error goes to fail
// (which may be nil). A beat is skipped while alive (which may be nil)
// says no: a vassal that is stuck must not tell the Emperor it is well,
// or the Emperor never restarts it.
func (v *Vassal) Heartbeats(every time.Duration, stop <-chan struct{}, fail func(error), alive func() bool) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if alive == nil || alive() {
			if err := v.Heartbeat(); err != nil {
				if fail != nil {
					fail(err)
				}
				return
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// Next waits for the Emperor's next byte. When the Emperor closed its end
// it returns Stop and io.EOF; after another read error, Stop and that
// error. Bytes other than Stop and Reload are returned as they are, for
// the caller to ignore.
func (v *Vassal) Next() (Command, error) {
	var b [1]byte
	for {
		n, err := v.conn.Read(b[:])
		if n == 1 {
			return Command(b[0]), nil
		}
		if errors.Is(err, io.EOF) {
			return Stop, io.EOF
		}
		if err != nil {
			return Stop, fmt.Errorf("emperor: read: %w", err)
		}
	}
}

// Close closes the link; a Next waiting returns an error.
func (v *Vassal) Close() error { return v.conn.Close() }
