// Command blastbeat runs the BlastBeat proxy: HTTP/1.1 clients in front,
// ZeroMQ backend nodes behind. Usage: blastbeat [flags] FILE.ini
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/internal/emperor"
	"github.com/blastbeat/blastbeat/internal/logbuf"
	"github.com/blastbeat/blastbeat/internal/metrics"
	"github.com/blastbeat/blastbeat/server"
)

const version = "0.1.0"

// logCloseWait bounds the wait at exit for a stderr that takes nothing.
const logCloseWait = 5 * time.Second

// stalledAfter: an event loop that has not run its sweep (every 250 ms)
// for this long is stuck, and the Emperor's heartbeats stop (as /healthz
// answers 503).
const stalledAfter = server.StalledAfter

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: it returns the exit status, 0 when done, 1 for a
// bad configuration or a failed start, 2 for a usage error. What was
// asked for (-h, -version) goes to stdout; errors, the -t verdict and
// the log go to stderr.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("blastbeat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	check := fs.Bool("t", false, "check the configuration file (every error in it, and the certificates) and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `FILE` until exit")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on `ADDR` (e.g. 127.0.0.1:6060); off by default")
	iniFile := fs.String("ini", "", "the configuration `FILE`, instead of the argument (the uWSGI Emperor's emperor-wrapper runs WRAPPER --ini FILE)")
	fs.Usage = func() {} // Parse calls it for -h and for mistakes alike: usage picks the stream
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: blastbeat [flags] FILE.ini\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) { // -h, -help, --help
			usage(stdout)
			return 0
		}
		usage(stderr) // after Parse's own line naming the bad flag
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "blastbeat %s\n", version)
		return 0
	}
	file := *iniFile
	switch {
	case file == "" && fs.NArg() == 1:
		file = fs.Arg(0)
	case file == "" || fs.NArg() != 0:
		usage(stderr)
		return 2
	}
	// Catch the signals before anything else can take time: a SIGTERM
	// that races the start (the config load included: a slow disk, a
	// FIFO) still stops gracefully, and as PID 1 in a container, where an
	// uncaught SIGTERM is ignored, it is not lost.
	// The stops have a channel of their own: signal.Notify drops a
	// signal whose channel is full, and SIGHUPs that came during a slow
	// reload could fill a shared one and lose the SIGTERM after them.
	stops, sigs := make(chan os.Signal, 2), make(chan os.Signal, 4)
	signal.Notify(stops, syscall.SIGTERM, syscall.SIGINT)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(stops)
	defer signal.Stop(sigs)
	// A write to a closed pipe fails with EPIPE instead of killing the
	// process: Go raises SIGPIPE for one on stdout or stderr, and a log
	// shipper that died (blastbeat … | shipper) would take the proxy and
	// its connections with it. The log and access log lines are then
	// dropped (access_log_dropped_total counts the latter).
	signal.Ignore(syscall.SIGPIPE)
	cfg, err := config.Load(file)
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	certs, err := tlsListeners(cfg, time.Now())
	if err != nil {
		printErrors(stderr, err)
		return 1
	}
	ident, err := resolveIdentity(cfg.UID, cfg.GID)
	if err != nil {
		fmt.Fprintf(stderr, "blastbeat: %s: %v\n", cfg.File, err)
		return 1
	}
	if *check {
		fmt.Fprintf(stderr, "blastbeat: %s: configuration ok\n", cfg.File)
		return 0
	}
	// The log goes through a bounded buffer: the event loops log, and
	// must never wait for a stderr nobody reads.
	logOut := logbuf.New(stderr, cfg.LogBuffer)
	log := newLogger(cfg, logOut)
	logOut.OnDropped = func(n uint64) {
		log.Warn("log lines dropped: stderr was slower than the log (log-buffer)", "lines", n)
	}
	defer logOut.Close(logCloseWait)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Error("cpuprofile", "err", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Error("cpuprofile", "err", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if *pprofAddr != "" {
		if _, err := servePprof(*pprofAddr, log); err != nil {
			log.Error("pprof", "err", err)
			return 1
		}
	}
	sup, err := openSupervisor(os.Getenv, cfg.EmperorHeartbeat, log)
	if err != nil {
		log.Error("supervisor", "err", err)
		return 1
	}
	defer sup.close()
	inherited, err := inheritedSockets(cfg, os.Getenv, os.Getpid(), log)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	opts := serverOptions(cfg, certs, log, stderr)
	opts.Inherited, opts.FirstRequest = inherited, sup.firstRequest()
	srv, err := server.New(opts)
	if err != nil {
		log.Error("config", "file", cfg.File, "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error("start", "err", locateListenError(cfg, inherited, err))
		return 1
	}
	// The stats listener is bound before the privileges go too, so that
	// it may take a port below 1024 as the binds may.
	var stats *metrics.Server
	if cfg.Stats != "" {
		if stats, err = metrics.Listen(cfg.Stats, cfg.StatsMaxConnections, cfg.StatsIdleTimeout, statsSource{srv, logOut}, log); err != nil {
			log.Error("start", "err", fmt.Errorf("%s: stats %s: %w", cfg.File, cfg.Stats, err))
			_ = srv.Shutdown(context.Background())
			return 1
		}
		defer stats.Close()
	}
	if err := ident.chownIPC(cfg.ZMQ); err != nil {
		log.Error("privileges", "err", fmt.Errorf("%s: %w", cfg.File, err))
		_ = srv.Shutdown(context.Background())
		return 1
	}
	if err := ident.apply(); err != nil {
		log.Error("privileges", "err", err)
		_ = srv.Shutdown(context.Background())
		return 1
	}
	procs, restore := setProcs(os.Getenv, srv.Pollers())
	defer restore()
	log.Info("blastbeat started", append(startAttrs(cfg), "workers", srv.Workers(), "procs", procs)...)
	warnFileLimit(log, cfg.MaxConnections, cfg.MaxNodes)
	sup.started(func() bool {
		if srv.Stalled(stalledAfter) {
			log.Warn("an event loop is stuck: no heartbeat to the supervisor (uWSGI Emperor, systemd's watchdog)", "stuck-for-more-than", stalledAfter)
			return false
		}
		return true
	})
	reopen := func() {
		if err := srv.ReopenLogs(); err != nil {
			log.Error("SIGUSR1: reopening the access log", "err", err)
			return
		}
		log.Info("SIGUSR1: access log reopened")
	}
	bySignal := waitForStop(stops, sigs, sup, log, func(by string) { reloadConfig(file, srv, log, by) }, reopen)
	sup.stopping()
	// The delay is for load balancers that watch /readyz; the uWSGI
	// Emperor stops a vassal itself, and curses one that takes long.
	if cfg.ShutdownDelay > 0 && bySignal {
		srv.Leaving()
		log.Info("shutdown-delay: serving on before the graceful stop; /readyz answers 503", "shutdown-delay", cfg.ShutdownDelay)
		delayStop(cfg.ShutdownDelay, stops, sigs, log, reopen)
	}
	// The signals stay caught while connections drain (shutdown-grace):
	// uncaught, a SIGHUP from config management would kill the process
	// with its requests. Another SIGTERM or SIGINT (the second, or the
	// third after a shutdown-delay) ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	go whileStopping(ctx, stops, sigs, cancel, log)
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("shutdown", "err", err)
	}
	cancel()
	log.Info("blastbeat stopped", statsAttrs(srv.Stats())...)
	return 0
}

// waitForStop returns when a signal (SIGTERM, SIGINT: bySignal) or the
// uWSGI Emperor (stop, or its end of the link closed) says to stop.
// SIGHUP and the Emperor's reload both take sup.reload.
func waitForStop(stops, sigs <-chan os.Signal, sup *supervisor, log *slog.Logger, reload func(by string), reopen func()) (bySignal bool) {
	for {
		select {
		case sig := <-stops:
			log.Info("stopping", "signal", sig.String())
			return true
		case sig := <-sigs:
			select {
			case stop := <-stops: // a stop waiting goes first
				log.Info("stopping", "signal", stop.String())
				return true
			default:
			}
			if sig == syscall.SIGHUP {
				sup.reload("SIGHUP", reload)
			} else {
				reopen()
			}
		case c := <-sup.commands:
			switch {
			case c.err != nil:
				log.Info("stopping", "uwsgi-emperor", "gone", "err", c.err)
				return false
			case c.cmd == emperor.Reload:
				sup.reload(byEmperor, reload)
			default:
				log.Info("stopping", "uwsgi-emperor", c.cmd.String())
				return false
			}
		}
	}
}

// delayStop waits out shutdown-delay: the proxy serves as before while
// load balancers, seeing /readyz fail, stop sending it traffic. A second
// SIGTERM or SIGINT ends the wait (and a third the graceful stop's);
// SIGUSR1 still reopens the access log (logrotate does not wait), SIGHUP
// is ignored, as during the stop.
func delayStop(d time.Duration, stops, sigs <-chan os.Signal, log *slog.Logger, reopen func()) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case sig := <-sigs:
			if sig == syscall.SIGUSR1 {
				reopen()
				continue
			}
			log.Info("signal ignored while stopping", "signal", sig.String())
		case sig := <-stops:
			log.Info("shutdown-delay cut short", "signal", sig.String())
			return
		}
	}
}

// whileStopping takes the signals that come while the server shuts
// down: SIGHUP and SIGUSR1 are ignored (logged), another SIGTERM or
// SIGINT calls stop, so that the open connections are not waited for
// any more.
func whileStopping(ctx context.Context, stops, sigs <-chan os.Signal, stop func(), log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-sigs:
			log.Info("signal ignored while stopping", "signal", sig.String())
		case sig := <-stops:
			log.Warn("stopping at once: not waiting for the open connections any more", "signal", sig.String())
			stop()
		}
	}
}

// printErrors writes err to w, one "blastbeat: " line for each line of
// its message (errors.Join puts each error it joins on a line).
func printErrors(w io.Writer, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "blastbeat: %s\n", line)
	}
}

// startAttrs returns the attributes of the "blastbeat started" line:
// the listen addresses and ZeroMQ endpoints, each kind as one comma
// separated string ("bind=127.0.0.1:8080,[::1]:8080").
func startAttrs(cfg *config.Options) []any {
	var plain, secure []string
	for _, a := range listenAddrs(cfg) {
		if a.tls {
			secure = append(secure, a.addr)
		} else {
			plain = append(plain, a.addr)
		}
	}
	return []any{"version", version, "bind", strings.Join(plain, ","), "bind-ssl", strings.Join(secure, ","),
		"zmq", strings.Join(cfg.ZMQ, ",")}
}

// newLogger returns the logger cfg asks for (log-format, log-level),
// writing to w.
func newLogger(cfg *config.Options, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
