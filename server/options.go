package server

import (
	"io"
	"log/slog"
	"time"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/internal/tlsconf"
)

// Options configure a Server: the loaded file (config.Options, whose
// Defaults are the one set of defaults: the server adds none) and what a
// file does not hold. They are values: the server never changes them.
type Options struct {
	config.Options
	// Logger gets the server's log lines (slog.Default when nil).
	Logger *slog.Logger
	// TLS has the certificates of each bind-ssl address (cmd/blastbeat
	// loads them with tlsconf, so -t and the start check the same files).
	TLS map[string]*tlsconf.Listener
	// Inherited has the listening sockets the server was handed (socket
	// activation): listen address (a bind or bind-ssl Addr) → descriptor.
	// Start listens on them instead of binding those addresses; the
	// server owns them from then on.
	Inherited map[string]int
	// FirstRequest, when set, is called once, on a goroutine of its own,
	// when the first response (a node's or the proxy's own) is complete.
	FirstRequest func()
	// Stderr is where access-log = stderr writes (os.Stderr when nil).
	Stderr io.Writer
}

// Internal timing, not a limit.
const (
	// sweepEvery is the resolution of every timeout.
	sweepEvery = 250 * time.Millisecond
)
