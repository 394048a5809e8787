package main

import (
	"log/slog"
	"strconv"

	"golang.org/x/sys/unix"
)

// fileReserve is the descriptors counted for the proxy's own use beside
// its client connections and its node connections: listeners, epoll and
// event descriptors, the ZeroMQ context, log files.
const fileReserve = 100

// fileLimitWarning returns the attributes of a warning when maxConns
// client connections, a connection for each of maxNodes nodes and
// fileReserve do not fit under the open-file limit (Go raises the soft
// limit to the hard one at start), or nil. Past the limit accept(2) fails
// with EMFILE: the proxy then stops accepting for a moment, new
// connections wait in the listen backlog, and the ones it has are served.
func fileLimitWarning(maxConns, maxNodes int, limit uint64) []any {
	own := uint64(maxNodes) + fileReserve
	if uint64(maxConns)+own <= limit {
		return nil
	}
	about := uint64(0)
	if limit > own {
		about = limit - own
	}
	return []any{"max-connections", maxConns, "max-nodes", maxNodes, "open-file-limit", limit,
		"effect", "past about " + strconv.FormatUint(about, 10) + " client connections new ones wait in the listen backlog until some close; raise the limit (LimitNOFILE=, ulimit -n) or lower max-connections"}
}

// warnFileLimit logs fileLimitWarning's warning for this process.
func warnFileLimit(log *slog.Logger, maxConns, maxNodes int) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if attrs := fileLimitWarning(maxConns, maxNodes, lim.Cur); attrs != nil {
		log.Warn("max-connections is above what the open-file limit allows", attrs...)
	}
}
