package main

import (
	"log/slog"
	"strings"
	"time"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/server"
)

// reloadConfig re-reads file and applies it to srv (SIGHUP, the uWSGI
// Emperor's reload). A file that does not load, or certificates that do
// not, are refused with every error logged (naming file and line), and
// the running configuration stays. Keys that apply only at a restart are
// named in a warning.
func reloadConfig(file string, srv *server.Server, log *slog.Logger, by string) {
	cfg, err := config.Load(file)
	if err != nil {
		log.Error("reload refused: the running configuration stays", "by", by, "err", err)
		return
	}
	tlsCerts, err := tlsListeners(cfg, time.Now())
	if err != nil {
		log.Error("reload refused: the running configuration stays", "by", by, "err", err)
		return
	}
	restart, err := srv.Reload(server.Options{Options: *cfg, TLS: tlsCerts})
	if err != nil {
		log.Error("reload refused: the running configuration stays", "by", by, "file", file, "err", locateReloadError(cfg, err))
		return
	}
	warnIgnored(cfg, log)
	log.Info("configuration reloaded", "by", by, "file", file, "vhosts", len(cfg.VHosts))
	if len(restart) > 0 {
		log.Warn("changed keys that apply at the next start, not now", "keys", restart)
	}
}

// locateReloadError names the config line of the address a refused
// reload could not listen on ("FILE:LINE: [SECTION] bind ADDR: …"), as
// the start does; other errors are returned as they are.
func locateReloadError(cfg *config.Options, err error) error {
	for _, a := range listenAddrs(cfg) {
		if strings.Contains(err.Error(), "listen "+a.addr+":") {
			return a.locate(cfg.File, err)
		}
	}
	return err
}
