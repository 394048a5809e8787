package main

import (
	"log/slog"
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
		log.Error("reload refused: the running configuration stays", "by", by, "file", file, "err", err)
		return
	}
	log.Info("configuration reloaded", "by", by, "file", file, "vhosts", len(cfg.VHosts))
	if len(restart) > 0 {
		log.Warn("changed keys that apply at the next start, not now", "keys", restart)
	}
}
