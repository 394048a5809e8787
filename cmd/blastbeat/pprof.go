package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"golang.org/x/net/netutil"
)

// Limits of the -pprof listener, a developer's tool: a few connections
// at once, and none held by a client that sends nothing.
const (
	pprofMaxConns          = 8
	pprofReadHeaderTimeout = 5 * time.Second
	pprofReadTimeout       = 10 * time.Second
	pprofIdleTimeout       = 30 * time.Second
)

// servePprof serves the runtime profiles on addr, on its own mux (never
// on the proxy's listeners), and only on loopback: the profiles show the
// process's memory, command line and code.
func servePprof(addr string, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("-pprof %s: not a loopback address (the profiles show the process's memory)", addr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("pprof listening", "addr", ln.Addr().String())
	// No WriteTimeout: /debug/pprof/profile?seconds=N writes after N
	// seconds, and refuses an N past a WriteTimeout.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: pprofReadHeaderTimeout, ReadTimeout: pprofReadTimeout,
		IdleTimeout: pprofIdleTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	lim := netutil.LimitListener(ln, pprofMaxConns)
	go func() { _ = srv.Serve(lim) }()
	return ln, nil
}
