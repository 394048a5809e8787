package main

import (
	"io"
	"log/slog"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/internal/tlsconf"
	"github.com/blastbeat/blastbeat/server"
)

// serverOptions gives the server the loaded configuration and the TLS
// certificates, warning about what this version accepts but does not do.
func serverOptions(cfg *config.Options, certs map[string]*tlsconf.Listener, log *slog.Logger, stderr io.Writer) server.Options {
	warnIgnored(cfg, log)
	return server.Options{Options: *cfg, Logger: log, TLS: certs, Stderr: stderr}
}

// warnIgnored warns about what cfg sets that this version accepts but
// does not do (at the start and at each reload).
func warnIgnored(cfg *config.Options, log *slog.Logger) {
	for _, k := range cfg.Ignored {
		log.Warn("obsolete key of the original BlastBeat accepted and ignored", "file", cfg.File, "line", k.Line, "section", k.Section, "key", k.Key)
	}
	if cfg.Daemon {
		log.Warn("daemon = true is accepted but ignored: blastbeat stays in the foreground; use a supervisor")
	}
}
