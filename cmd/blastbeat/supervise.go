package main

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/blastbeat/blastbeat/internal/emperor"
	"github.com/blastbeat/blastbeat/internal/sdnotify"
)

// supervisor is the process's link to what runs it: systemd's notify
// socket (NOTIFY_SOCKET) and the uWSGI Emperor (UWSGI_EMPEROR_FD), each
// nil when absent. The stop and reload paths are the signals' and the
// Emperor's alike.
type supervisor struct {
	log    *slog.Logger
	notify *sdnotify.Notifier
	vassal *emperor.Vassal
	// heartbeat is the emperor-heartbeat interval; 0 for none.
	heartbeat time.Duration
	// watchdog is how often systemd's watchdog wants WATCHDOG=1
	// (WatchdogSec=); 0 for none.
	watchdog time.Duration
	// commands are the Emperor's stop and reload; never closed, nil
	// without an Emperor (a nil channel never delivers).
	commands chan emperorCommand
	done     chan struct{} // closed by close: the goroutines end
}

// emperorCommand is a command read from the Emperor; err is set when the
// link ended (a stop).
type emperorCommand struct {
	cmd emperor.Command
	err error
}

// openSupervisor opens the links named in the environment. A notify
// socket that cannot be reached is logged and ignored (as sd_notify
// does); a bad UWSGI_EMPEROR_FD is an error.
func openSupervisor(getenv func(string) string, heartbeat time.Duration, log *slog.Logger) (*supervisor, error) {
	s := &supervisor{log: log, heartbeat: heartbeat, done: make(chan struct{})}
	n, err := sdnotify.FromEnv(getenv)
	if err != nil {
		log.Warn("systemd notification socket unusable; not notifying", "err", err)
	}
	s.notify = n
	if n != nil {
		s.watchdog = sdnotify.WatchdogInterval(getenv, os.Getpid())
	}
	if s.vassal, err = emperor.FromEnv(getenv); err != nil {
		s.notify.Close()
		return nil, err
	}
	if s.vassal != nil {
		s.commands = make(chan emperorCommand, 1)
	}
	return s, nil
}

// firstRequest is server.Options.FirstRequest under an Emperor: the
// vassal announces its loyalty. Nil without one.
func (s *supervisor) firstRequest() func() {
	if s.vassal == nil {
		return nil
	}
	return func() {
		if err := s.vassal.Loyal(); err != nil {
			s.log.Warn("announcing loyalty to the uWSGI Emperor", "err", err)
			return
		}
		s.log.Info("first request served: loyal to the uWSGI Emperor")
	}
}

// started tells the supervisors that the server listens (and its ZeroMQ
// bridge is up), then starts the Emperor's heartbeats and reader.
func (s *supervisor) started(alive func() bool) {
	s.warn("systemd", s.notify.Ready())
	if s.watchdog > 0 {
		go s.watchdogs(alive)
	}
	if s.vassal == nil {
		return
	}
	s.warn("uWSGI Emperor", s.vassal.Ready())
	if s.heartbeat > 0 {
		go s.vassal.Heartbeats(s.heartbeat, s.done, func(err error) {
			select {
			case <-s.done: // close closed the link under it
			default:
				s.log.Warn("uWSGI Emperor heartbeat failed; no more heartbeats", "err", err)
			}
		}, alive)
	}
	go s.readEmperor()
}

// watchdogs sends systemd's WATCHDOG=1 every s.watchdog while alive says
// the event loops run: a stuck loop stops them, and systemd restarts the
// proxy (WatchdogSec=, Restart=on-watchdog or on-failure).
func (s *supervisor) watchdogs(alive func() bool) {
	t := time.NewTicker(s.watchdog)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			if alive() {
				s.warn("systemd", s.notify.Watchdog())
			}
		}
	}
}

// readEmperor passes the Emperor's stop and reload to commands until the
// link ends or close is called.
func (s *supervisor) readEmperor() {
	for {
		cmd, err := s.vassal.Next()
		switch {
		case err == nil && cmd != emperor.Stop && cmd != emperor.Reload && cmd != emperor.GracefulStop:
			s.log.Warn("uWSGI Emperor sent an unknown command; ignored", "command", cmd.String())
			continue
		case err != nil && !errors.Is(err, io.EOF):
			select {
			case <-s.done: // the read failed because close closed the link
				return
			default:
			}
		}
		select {
		case s.commands <- emperorCommand{cmd: cmd, err: err}:
		case <-s.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// reload is what SIGHUP and the Emperor's reload both do (by names
// which): do, between systemd's RELOADING=1 and READY=1.
func (s *supervisor) reload(by string, do func(by string)) {
	s.warn("systemd", s.notify.Reloading())
	do(by)
	s.warn("systemd", s.notify.Ready())
	if by == byEmperor && s.vassal != nil {
		// Applied or refused, the vassal serves: the Emperor, which
		// cleared its ready and accepting marks when it asked, is told.
		s.warn("uWSGI Emperor", s.vassal.Reloaded())
	}
}

// byEmperor names the Emperor's reload (and what the log says did it).
const byEmperor = "uWSGI Emperor"

// stopping tells systemd that the server stops.
func (s *supervisor) stopping() { s.warn("systemd", s.notify.Stopping()) }

// close ends the heartbeats and the reader and closes the links.
func (s *supervisor) close() {
	close(s.done)
	s.notify.Close()
	if s.vassal != nil {
		s.vassal.Close()
	}
}

// warn logs a failed notification.
func (s *supervisor) warn(to string, err error) {
	if err != nil {
		s.log.Warn("notifying the supervisor failed", "supervisor", to, "err", err)
	}
}
