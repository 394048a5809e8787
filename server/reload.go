package server

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode"

	"github.com/blastbeat/blastbeat/config"
)

// Reload applies a new configuration to the running server (SIGHUP, the
// uWSGI Emperor's reload): the virtual hosts (names, aliases, nodes,
// formats, per-vhost limits and keys), the nodes (new ones are connected
// and pinged; removed ones keep their sessions until these end) and the
// certificates of the bind-ssl listeners. New sessions and the next
// request of a keep-alive connection follow it; connections, WebSockets,
// HTTP/2 streams and requests in flight go on as they started.
//
// What a running process cannot change is refused, and the old
// configuration kept: a listen address that is not one of this process's
// (listeners are opened at the start). The [blastbeat] keys that shape
// connections and the bridge (limits, timeouts, ping-freq, zmq, …) apply
// at the next start: their changes are returned in restartKeys, for the
// caller to log. Safe from any goroutine; one reload at a time.
func (s *Server) Reload(opts Options) (restartKeys []string, err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	prev := s.rt.Load()
	rt, added, err := buildRouting(&opts, s.listeners, prev, len(s.loops))
	if err != nil {
		return nil, fmt.Errorf("reload refused: %w", err)
	}
	for _, ln := range s.listeners.all {
		if ln.tls != nil && opts.TLS[ln.addr] == nil {
			return nil, fmt.Errorf("reload refused: bind-ssl %s: no certificates loaded", ln.addr)
		}
	}
	if len(added) > 0 && s.bridge != nil {
		if err := s.bridge.AddIdentities(added); err != nil {
			return nil, fmt.Errorf("reload refused: %w (max-nodes)", err)
		}
	}
	for _, ln := range s.listeners.all {
		if ln.tls != nil {
			ln.certs.Store(opts.TLS[ln.addr])
		}
	}
	s.rt.Store(rt)
	return changedKeys(&s.given, &opts.Options), nil
}

// changedKeys names the [blastbeat] keys whose values differ between a
// and b (the vhosts, the file and what Reload applies left out).
func changedKeys(a, b *config.Options) []string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	t := va.Type()
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Name
		if slices.Contains([]string{"VHosts", "File", "Ignored", "Certificate", "Key"}, name) {
			continue
		}
		x, y := va.Field(i).Interface(), vb.Field(i).Interface()
		if bx, ok := x.([]config.Bind); ok {
			// Where a bind is in the file does not matter.
			x, y = bindAddrs(bx), bindAddrs(y.([]config.Bind))
		}
		if !reflect.DeepEqual(x, y) {
			out = append(out, keyName(name))
		}
	}
	return out
}

func bindAddrs(bs []config.Bind) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Addr
	}
	return out
}

// keyName turns a config.Options field name into its key: HTTP2MaxStreams
// is http2-max-streams.
func keyName(field string) string {
	switch field {
	case "ZMQHWM":
		return "zmq-hwm"
	case "Binds":
		return "bind"
	}
	var b strings.Builder
	r := []rune(field)
	for i, c := range r {
		upper := unicode.IsUpper(c)
		if i > 0 && upper && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) ||
			i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1])) {
			b.WriteByte('-')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
