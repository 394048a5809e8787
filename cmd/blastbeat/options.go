package main

import (
	"log/slog"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/server"
)

// serverOptions turns the loaded configuration into the server's options,
// warning about what this version accepts but does not do.
func serverOptions(cfg *config.Options, log *slog.Logger) server.Options {
	o := server.Options{
		ZMQ:            cfg.ZMQ,
		PingFreq:       cfg.PingFreq,
		Timeout:        cfg.Timeout,
		HeaderTimeout:  cfg.HeaderTimeout,
		IdleTimeout:    cfg.IdleTimeout,
		ShutdownGrace:  cfg.ShutdownGrace,
		MaxHops:        cfg.MaxHops,
		MaxConnections: cfg.MaxConnections,
		Limits: protocol.Limits{
			MaxHeadBytes: cfg.MaxHeaderSize,
			MaxURIBytes:  cfg.MaxURI,
			MaxBodyBytes: cfg.MaxBody,
		},
		MaxPendingOutput:      cfg.MaxPendingOutput,
		MaxPendingOutputTotal: cfg.MaxPendingOutputTotal,
		CreditWindow:          cfg.CreditWindow,
		MaxReadAhead:          cfg.MaxReadAhead,
		StallTimeout:          cfg.StallTimeout,
		SendTimeout:           cfg.SendTimeout,
		ZMQHWM:                cfg.ZMQHWM,
		RetryBuffer:           cfg.RetryBuffer,
		MaxWebSocketMessage:   cfg.MaxWebSocketMessage,
		Workers:               cfg.Workers,
		RingSize:              cfg.RingSize,
		Logger:                log,
	}
	for _, k := range cfg.Ignored {
		log.Warn("obsolete key of the original BlastBeat accepted and ignored", "file", cfg.File, "line", k.Line, "section", k.Section, "key", k.Key)
	}
	if cfg.Daemon {
		log.Warn("daemon = true is accepted but ignored: blastbeat stays in the foreground; use a supervisor")
	}
	seen := map[string]bool{}
	addBind := func(a string) {
		if !seen[a] {
			seen[a] = true
			o.Binds = append(o.Binds, a)
		}
	}
	for _, b := range cfg.Binds {
		addBind(b.Addr)
	}
	for _, v := range cfg.VHosts {
		for _, b := range v.Binds {
			addBind(b.Addr)
		}
		for _, b := range v.BindSSL {
			log.Warn("HTTPS is not supported yet; listener not started", "vhost", v.Name, "bind-ssl", b.Addr, "line", b.Line)
		}
		o.VHosts = append(o.VHosts, server.VHost{
			Name: v.Name, Aliases: v.Aliases, Nodes: v.Nodes, Format: v.Format,
			WebSocketProtocols: v.WebSocketProtocols,
			Timeout:            v.Timeout, MaxBody: v.MaxBody, AllowTrace: v.AllowTrace,
		})
	}
	return o
}
