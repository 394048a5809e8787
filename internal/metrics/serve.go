package metrics

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/blastbeat/blastbeat/server"
)

// Timeouts of the stats listener: it serves operators and scrapers, never
// clients, and a stuck scraper must not keep a goroutine forever.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
)

// NodeStatus is one line of /status.
type NodeStatus struct {
	Name     string   `json:"name"`
	VHosts   []string `json:"vhosts"`
	Up       bool     `json:"up"`
	Sessions int64    `json:"sessions"`
	// LastPong is the time of the node's last pong (RFC 3339), "" for
	// never; LastPongAge its age in seconds, -1 for never.
	LastPong    string  `json:"last_pong"`
	LastPongAge float64 `json:"last_pong_age_seconds"`
}

// Status is the /status document.
type Status struct {
	Nodes       []NodeStatus `json:"nodes"`
	Connections int64        `json:"connections"`
}

// notReady lists the virtual hosts none of whose nodes is up, sorted.
func notReady(st Status) []string {
	live := map[string]bool{}
	for _, n := range st.Nodes {
		for _, vh := range n.VHosts {
			live[vh] = live[vh] || n.Up
		}
	}
	var out []string
	for vh, ok := range live {
		if !ok {
			out = append(out, vh)
		}
	}
	sort.Strings(out)
	return out
}

// Handler serves /metrics and /status for src, and for probes (a
// container's liveness and readiness): /healthz, 200 while the process
// serves (503 while an event loop is stuck: server.StalledAfter without a
// sweep); /readyz, 200 unless a graceful stop or its shutdown-delay began (503), and with
// ?vhosts also 503 while a virtual host has no live node, naming them.
// The node check is asked for, not the default: one vhost's nodes down
// would take every replica of a proxy that serves others out of its
// load balancer.
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	busy := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "stats_busy_total",
		Help: "Stats requests other than probes answered 503: every connection of the stats listener but those kept for probes was in use (stats-max-connections)."})
	reg.MustRegister(NewCollector(src), busy, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(status(src))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		// Served off the event loops: a stuck loop (every connection on
		// it hangs) must not read as alive to a liveness probe.
		if st, ok := src.(interface{ Stalled(time.Duration) bool }); ok && st.Stalled(server.StalledAfter) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("an event loop is stuck\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		// A probe every few seconds from every kubelet and balancer: the
		// plain check reads one flag, not the whole snapshot.
		var m server.Metrics
		stopping := false
		vhosts := r.URL.Query().Has("vhosts")
		if st, ok := src.(interface{ Stopping() bool }); ok && !vhosts {
			stopping = st.Stopping()
		} else {
			m = src.Metrics()
			stopping = m.Stopping
		}
		if stopping {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("stopping\n"))
			return
		}
		if vhosts {
			if down := notReady(statusOf(m)); len(down) > 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("no live node for: " + strings.Join(down, ", ") + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return probeSlots(mux, busy)
}

// probeSlots serves a request that came on a probe connection (the
// stats listener's reserved slots, slotListener) only if it is a probe,
// and closes the connection after it either way; busy counts the others.
func probeSlots(next http.Handler, busy prometheus.Counter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(probeConnKey{}) == nil {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
			busy.Inc()
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("stats listener busy: every connection but those kept for /healthz and /readyz is in use (stats-max-connections)\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func status(src Source) Status { return statusOf(src.Metrics()) }

// statusOf is the /status document of m.
func statusOf(m server.Metrics) Status {
	now := time.Now()
	var st Status
	for _, n := range m.Open {
		st.Connections += n
	}
	st.Nodes = []NodeStatus{}
	for _, n := range m.Nodes {
		ns := NodeStatus{Name: n.Name, VHosts: n.VHosts, Up: n.Up, Sessions: n.Sessions, LastPongAge: -1}
		if ns.VHosts == nil {
			ns.VHosts = []string{}
		}
		if n.LastPong != 0 {
			age := now.Sub(time.Unix(0, n.LastPong))
			if m.Now != 0 {
				age = time.Duration(m.Now - n.LastPong) // on the node times' clock
			}
			ns.LastPong = now.Add(-age).UTC().Format(time.RFC3339Nano)
			ns.LastPongAge = age.Seconds()
		}
		st.Nodes = append(st.Nodes, ns)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Name < st.Nodes[j].Name })
	return st
}

// Server is the stats listener.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr and serves src's /metrics and /status on it until
// Close.
// At most maxConns connections are served at once (more wait in the
// listen backlog), an eighth of them kept for probes (slotListener), and
// one idle between requests for idleTimeout is
// closed, so that scrapers that keep connections open cannot pile up
// goroutines and descriptors the proxy's clients need. A request must
// also be read whole within idleTimeout: no handler reads a body, and
// net/http reads an unread one after the response without a deadline
// of its own (a request that declared a body and sent none kept its
// connection, and one of the maxConns, for good).
func Listen(addr string, maxConns int, idleTimeout time.Duration, src Source, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ln = newSlotListener(ln, maxConns)
	s := &Server{ln: ln, srv: &http.Server{Handler: Handler(src), ConnContext: connContext, ReadHeaderTimeout: min(readHeaderTimeout, idleTimeout),
		ReadTimeout: idleTimeout, WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("stats listener", "addr", addr, "err", err)
		}
	}()
	return s, nil
}

// Addr is the address it listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops it.
func (s *Server) Close() error { return s.srv.Close() }
