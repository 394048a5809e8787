package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/blastbeat/blastbeat/session"
)

// routing is what a reload replaces as one: the virtual hosts, the node
// registry, and which listeners serve which virtual hosts. A request head
// reads the current one (Server.rt); a session keeps the vhost and node
// it started with, and its next request on a keep-alive connection
// follows the routing of then. Immutable once published.
type routing struct {
	router *session.Router
	nodes  *session.Registry
	global map[*listener]bool             // [blastbeat] binds: the vhosts without listeners of their own
	serve  map[*listener][]*session.VHost // the vhosts that name a listener in bind or bind-ssl
	listed []bool                         // by node index: a vhost lists it (a reload may have removed it)
	own    map[*session.VHost]bool        // vhosts with listeners of their own
	https  map[*session.VHost]string      // a vhost's first bind-ssl port (308)
}

// retired reports whether node n is one a reload took out of every
// virtual host and whose last session ended: no longer reported (a
// node_up 0 for good would alert on a node removed on purpose), though
// its name stays known until a restart (max-nodes).
func (rt *routing) retired(n *session.Node) bool { return !rt.lists(n) && n.Sessions() == 0 }

// lists reports whether a virtual host of rt lists node n.
func (rt *routing) lists(n *session.Node) bool {
	return n.Index >= 0 && n.Index < len(rt.listed) && rt.listed[n.Index]
}

// serves reports whether ln serves vh: a vhost with listeners of its own
// is served only on them, the others on the global binds.
func (rt *routing) serves(ln *listener, vh *session.VHost) bool {
	if !rt.own[vh] && rt.global[ln] {
		return true
	}
	return slices.Contains(rt.serve[ln], vh)
}

// buildRouting makes the routing of opts over the listeners ls. With
// prev (a reload) the registry keeps prev's nodes at their indexes and
// appends new ones (added names them), and a vhost keeps the counters of
// prev's vhost of the same name. Every listen address of opts must be one
// of ls (newListeners made it from the same opts). The listeners of
// prevLs that ls drops (a reload closes them), and those an earlier
// reload closed, keep serving, on the connections they accepted while
// any is open, the vhosts of the same names they served.
func buildRouting(opts *Options, ls *listeners, prev *routing, prevLs *listeners, loops int) (rt *routing, added []string, err error) {
	var names []string
	for _, v := range opts.VHosts {
		names = append(names, v.Nodes...)
	}
	var nodes *session.Registry
	if prev == nil {
		nodes = session.NewRegistry(names, 3*opts.PingFreq)
		for _, n := range nodes.Nodes() {
			added = append(added, n.Name)
		}
	} else {
		nodes, added = prev.nodes.With(names)
	}
	oldStats := map[string]*session.VHostStats{}
	if prev != nil {
		for _, vh := range prev.router.VHosts() {
			oldStats[vh.Name] = vh.Stats
		}
	}
	rt = &routing{nodes: nodes, global: map[*listener]bool{}, serve: map[*listener][]*session.VHost{},
		own: map[*session.VHost]bool{}, https: map[*session.VHost]string{}, listed: make([]bool, len(nodes.Nodes()))}
	listen := func(addr string, secure bool) (*listener, error) {
		ln := ls.byAddr[addr]
		if ln == nil || (ln.tls != nil) != secure {
			what := "bind"
			if secure {
				what = "bind-ssl"
			}
			return nil, fmt.Errorf("%s %s: no such listener", what, addr)
		}
		return ln, nil
	}
	for _, b := range opts.Binds {
		ln, err := listen(b.Addr, false)
		if err != nil {
			return nil, nil, err
		}
		rt.global[ln] = true
	}
	var vhosts []*session.VHost
	for _, v := range opts.VHosts {
		name := strings.ToLower(v.Name)
		vh := &session.VHost{Name: name, Aliases: v.Aliases, Timeout: v.Timeout, MaxBody: v.MaxBody,
			WebSocketProtocols: v.WebSocketProtocols, AllowTrace: v.AllowTrace, HTTPSRedirect: v.HTTPSRedirect,
			NodeHandshake: v.WebSocketHandshake == "node", Stats: oldStats[name]}
		if vh.Stats == nil {
			vh.Stats = session.NewVHostStats(loops)
		}
		if vh.Timeout <= 0 {
			vh.Timeout = opts.Timeout
		}
		if vh.ResponseIdleTimeout = v.ResponseIdleTimeout; vh.ResponseIdleTimeout <= 0 {
			vh.ResponseIdleTimeout = opts.ResponseIdleTimeout
		}
		if vh.MaxBody <= 0 {
			vh.MaxBody = opts.MaxBody
		}
		switch v.Format {
		case "", "uwsgi":
		case "headers":
			vh.Format = session.FormatHeaders
		default:
			return nil, nil, fmt.Errorf("vhost %s: unknown format %q", v.Name, v.Format)
		}
		for _, n := range v.Nodes {
			vh.Nodes = append(vh.Nodes, nodes.Lookup([]byte(n)))
		}
		for _, n := range vh.Nodes {
			rt.listed[n.Index] = true
		}
		for _, b := range v.Binds {
			ln, err := listen(b.Addr, false)
			if err != nil {
				return nil, nil, err
			}
			rt.serve[ln] = append(rt.serve[ln], vh)
			rt.own[vh] = true
		}
		for _, b := range v.BindSSL {
			ln, err := listen(b.Addr, true)
			if err != nil {
				return nil, nil, err
			}
			rt.serve[ln] = append(rt.serve[ln], vh)
			rt.own[vh] = true
			if _, ok := rt.https[vh]; !ok {
				rt.https[vh] = ln.port
			}
		}
		vhosts = append(vhosts, vh)
	}
	rt.router = session.NewRouter(vhosts, nodes)
	if prev != nil && prevLs != nil {
		byName := map[string]*session.VHost{}
		for _, vh := range vhosts {
			byName[vh.Name] = vh
		}
		// prev routes prevLs's listeners, and the closed ones it kept.
		// Before, only prevLs's were looked at: at the second reload
		// after a listener was closed its connections lost their
		// routing (404 for every vhost).
		retired := map[*listener]bool{}
		for ln := range prev.global {
			retired[ln] = true
		}
		for ln := range prev.serve {
			retired[ln] = true
		}
		for _, ln := range prevLs.all {
			retired[ln] = true
		}
		for ln := range retired {
			if ls.byAddr[ln.addr] == ln {
				continue
			}
			if ln.conns.Load() == 0 && prevLs.byAddr[ln.addr] != ln {
				continue // closed by an earlier reload, its connections gone
			}
			if prev.global[ln] {
				rt.global[ln] = true
			}
			for _, old := range prev.serve[ln] {
				if vh := byName[old.Name]; vh != nil {
					rt.serve[ln] = append(rt.serve[ln], vh)
				}
			}
		}
	}
	return rt, added, nil
}
