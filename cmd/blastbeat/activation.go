package main

import (
	"fmt"
	"log/slog"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/internal/sdlisten"
)

// inheritedSockets takes the listening sockets passed by socket
// activation (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES in getenv) and
// returns them by the listen address of cfg they are bound to, for
// server.Options.Inherited. The addresses without one are bound as usual;
// a socket bound to none of them is an error naming it and the file.
func inheritedSockets(cfg *config.Options, getenv func(string) string, pid int, log *slog.Logger) (map[string]int, error) {
	socks, err := sdlisten.Sockets(getenv, pid)
	if err != nil || len(socks) == 0 {
		return nil, err
	}
	var addrs []string
	for _, a := range listenAddrs(cfg) {
		addrs = append(addrs, a.addr)
	}
	inherited, err := sdlisten.Match(socks, addrs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	for _, s := range socks {
		log.Info("listening on an inherited socket", "fd", s.FD, "name", s.Name, "addr", s.Addr.String())
	}
	return inherited, nil
}
