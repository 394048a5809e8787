package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"gopkg.in/ini.v1"
)

// mainSection is the name of the global section; virtual hosts are
// mainSection + ":" + NAME.
const mainSection = "blastbeat"

// Load reads the file at path and parses it as Parse does. Errors are
// *Error values naming the file, the line and the key.
func Load(path string) (*Options, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		return nil, &Error{File: path, Msg: "cannot read file: " + msg, err: err}
	}
	return Parse(path, data)
}

// Parse parses and validates a configuration already read into data; name
// is the file name used in error messages and Options.File.
func Parse(name string, data []byte) (*Options, error) {
	entries, serr := scan(data)
	if serr != nil {
		serr.File = name
		return nil, serr
	}
	f, err := ini.LoadSources(ini.LoadOptions{
		AllowShadows:               true,
		AllowDuplicateShadowValues: true,
		KeyValueDelimiters:         "=",
		IgnoreContinuation:         true,
		SpaceBeforeInlineComment:   true,
	}, data)
	if err != nil {
		return nil, newError(ErrSyntax, name, 0, "", "", err.Error())
	}
	p := &parser{
		file:   name,
		ini:    f,
		opts:   Defaults(),
		counts: map[string]int{},
		seen:   map[string]int{},
		first:  map[string]int{},
		values: map[string][]string{},
		hosts:  map[string]int{},
		vhost:  -1,
	}
	p.opts.File = name
	for _, e := range entries {
		if !e.header && !e.empty {
			p.counts[e.section+"\x00"+e.key]++
		}
	}
	for _, e := range entries {
		if e.header {
			err = p.section(e)
		} else {
			err = p.key(e)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p.opts, nil
}

// parser walks the scanned entries and fills opts with go-ini's values.
type parser struct {
	file string
	ini  *ini.File
	opts Options

	counts map[string]int      // non-empty values per section\x00key
	seen   map[string]int      // occurrences so far per section\x00key
	first  map[string]int      // line of the first occurrence per section\x00key
	values map[string][]string // go-ini's values per section\x00key

	name     string         // current section, trimmed, for messages
	vhost    int            // index of the current VHost, or -1 for [blastbeat]
	mainRaw  string         // the [blastbeat] section as go-ini names it
	mainLine int            // line of the [blastbeat] header, 0 if absent
	hosts    map[string]int // VHost.Name to its header line
	vhostRaw []string       // go-ini name of each VHost's section
	line     int            // line of the entry being applied
}

// errorAt builds an *Error for this file.
func (p *parser) errorAt(line int, section, key string, kind error, detail string) *Error {
	return newError(kind, p.file, line, section, key, detail)
}

// section starts a [blastbeat] or [blastbeat:NAME] section.
func (p *parser) section(e entry) error {
	p.name = strings.TrimSpace(e.section)
	switch rest, isVHost := strings.CutPrefix(p.name, mainSection+":"); {
	case p.name == mainSection:
		if p.mainLine > 0 {
			return p.errorAt(e.line, p.name, "", ErrDuplicate, fmt.Sprintf("first defined at line %d", p.mainLine))
		}
		p.mainRaw, p.mainLine, p.vhost = e.section, e.line, -1
	case isVHost:
		host, err := parseVHostName(rest)
		if err != nil {
			return p.errorAt(e.line, p.name, "", ErrBadValue, err.Error())
		}
		if l, ok := p.hosts[host]; ok {
			return p.errorAt(e.line, p.name, "", ErrDuplicate, fmt.Sprintf("virtual host %q first defined at line %d", host, l))
		}
		p.hosts[host] = e.line
		p.opts.VHosts = append(p.opts.VHosts, VHost{Name: host, Format: "uwsgi", Line: e.line})
		p.vhostRaw = append(p.vhostRaw, e.section)
		p.vhost = len(p.opts.VHosts) - 1
	default:
		return p.errorAt(e.line, p.name, "", ErrUnknownSection, "expected [blastbeat] or [blastbeat:HOST[:PORT]]")
	}
	return nil
}

// key applies one "key = value" line of the current section.
func (p *parser) key(e entry) error {
	if e.section == "" {
		return p.errorAt(e.line, "", e.key, ErrSyntax, "key outside of any section")
	}
	var set func(string) error
	if p.vhost < 0 {
		set = p.mainKey(e.key)
	} else {
		set = p.vhostKey(&p.opts.VHosts[p.vhost], e.key)
	}
	if set == nil {
		return p.errorAt(e.line, p.name, e.key, ErrUnknownKey, "")
	}
	id := e.section + "\x00" + e.key
	n := p.seen[id]
	p.seen[id]++
	if n == 0 {
		p.first[id] = e.line
	} else if !repeatable(e.key) {
		return p.errorAt(e.line, p.name, e.key, ErrRepeated, fmt.Sprintf("first set at line %d", p.first[id]))
	}
	if e.empty {
		return p.errorAt(e.line, p.name, e.key, ErrBadValue, "empty value")
	}
	vals, ok := p.values[id]
	if !ok {
		vals = p.lookup(e.section, e.key)
		p.values[id] = vals
	}
	// Every earlier occurrence had a value (or we would have stopped), so
	// this is the nth value, provided go-ini and scan agree on the count.
	if len(vals) != p.counts[id] || n >= len(vals) {
		return p.errorAt(e.line, p.name, e.key, ErrSyntax, "value could not be read")
	}
	p.line = e.line
	if err := set(vals[n]); err != nil {
		return p.errorAt(e.line, p.name, e.key, ErrBadValue, err.Error())
	}
	return nil
}

// lookup returns go-ini's non-empty values of key in section, in file
// order. It walks Keys rather than calling Key, which would fall back to
// a parent section.
func (p *parser) lookup(section, key string) []string {
	sec, err := p.ini.GetSection(section)
	if err != nil {
		return nil
	}
	for _, k := range sec.Keys() {
		if k.Name() == key {
			return k.ValueWithShadows()
		}
	}
	return nil
}

// repeatable reports whether key accumulates instead of being set once.
func repeatable(key string) bool {
	switch key {
	case "bind", "bind-ssl", "zmq", "node":
		return true
	}
	return false
}

// set returns a setter storing parse's result in dst.
func set[T any](dst *T, parse func(string) (T, error)) func(string) error {
	return func(s string) error {
		v, err := parse(s)
		if err == nil {
			*dst = v
		}
		return err
	}
}

// addBind returns a setter appending a Bind at the current line to dst.
func (p *parser) addBind(dst *[]Bind) func(string) error {
	return func(s string) error {
		addr, err := parseBind(s)
		if err == nil {
			*dst = append(*dst, Bind{Addr: addr, Line: p.line})
		}
		return err
	}
}

// mainKey returns the setter for key in [blastbeat], or nil if unknown.
func (p *parser) mainKey(key string) func(string) error {
	o := &p.opts
	switch key {
	case "bind":
		return p.addBind(&o.Binds)
	case "zmq":
		return func(s string) error {
			ep, err := parseEndpoint(s)
			if err == nil {
				o.ZMQ = append(o.ZMQ, ep)
			}
			return err
		}
	case "ping-freq":
		return set(&o.PingFreq, parseDuration)
	case "max-hops":
		return set(&o.MaxHops, parseInt)
	case "timeout":
		return set(&o.Timeout, parseDuration)
	case "uid":
		return set(&o.UID, parseString)
	case "gid":
		return set(&o.GID, parseString)
	case "daemon":
		return set(&o.Daemon, parseBool)
	case "certificate":
		return set(&o.Certificate, parseString)
	case "key":
		return set(&o.Key, parseString)
	case "max-connections":
		return set(&o.MaxConnections, parseInt)
	case "max-header-size":
		return set(&o.MaxHeaderSize, parseSizeInt)
	case "max-uri":
		return set(&o.MaxURI, parseSizeInt)
	case "max-body":
		return set(&o.MaxBody, parseSize)
	case "max-websocket-message":
		return set(&o.MaxWebSocketMessage, parseSizeInt)
	case "max-pending-output":
		return set(&o.MaxPendingOutput, parseSizeInt)
	case "retry-buffer":
		return set(&o.RetryBuffer, parseSizeInt)
	case "header-timeout":
		return set(&o.HeaderTimeout, parseDuration)
	case "idle-timeout":
		return set(&o.IdleTimeout, parseDuration)
	case "shutdown-grace":
		return set(&o.ShutdownGrace, parseDuration)
	case "workers":
		return set(&o.Workers, parseInt)
	case "ring-size":
		return set(&o.RingSize, parseInt)
	case "log-format":
		return set(&o.LogFormat, oneOf("text", "json"))
	case "log-level":
		return set(&o.LogLevel, oneOf("debug", "info", "warn", "error"))
	}
	return nil
}

// vhostKey returns the setter for key in a virtual host section, or nil
// if unknown.
func (p *parser) vhostKey(v *VHost, key string) func(string) error {
	switch key {
	case "node":
		return func(s string) error {
			if err := checkNode(s); err != nil {
				return err
			}
			if !slices.Contains(v.Nodes, s) {
				v.Nodes = append(v.Nodes, s)
			}
			return nil
		}
	case "bind":
		return p.addBind(&v.Binds)
	case "bind-ssl":
		return p.addBind(&v.BindSSL)
	case "certificate":
		return set(&v.Certificate, parseString)
	case "key":
		return set(&v.Key, parseString)
	case "format":
		return set(&v.Format, oneOf("uwsgi", "headers"))
	case "websocket-protocols":
		return set(&v.WebSocketProtocols, parseTokenList)
	case "timeout":
		return set(&v.Timeout, parseDuration)
	case "max-body":
		return set(&v.MaxBody, parseSize)
	}
	return nil
}
