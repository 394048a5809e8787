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
		var pe *fs.PathError
		if errors.As(err, &pe) { // the path is already in the message
			return nil, &Error{File: path, Msg: pe.Op + ": " + pe.Err.Error(), err: err}
		}
		return nil, &Error{File: path, Msg: err.Error(), err: err}
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
	p := &parser{opts: Defaults(), state: map[string]*keyState{}}
	p.opts.File = name
	for _, e := range entries {
		if e.header {
			continue
		}
		st := p.state[e.id()]
		if st == nil {
			st = &keyState{vals: values(f, e.section, e.key)}
			p.state[e.id()] = st
		}
		if !e.empty {
			st.count++
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

// values returns go-ini's non-empty values of key in section, in file
// order. It walks Keys rather than calling Key, which would fall back to
// a parent section.
func values(f *ini.File, section, key string) []string {
	if sec, err := f.GetSection(section); err == nil {
		for _, k := range sec.Keys() {
			if k.Name() == key {
				return k.ValueWithShadows()
			}
		}
	}
	return nil
}

// keyState follows one key of one section through the file.
type keyState struct {
	count int      // occurrences with a non-empty value, as scan saw them
	seen  int      // occurrences applied so far
	first int      // line of the first occurrence
	vals  []string // go-ini's non-empty values, in file order
}

// parser walks the scanned entries and fills opts with go-ini's values.
type parser struct {
	opts     Options
	state    map[string]*keyState          // by entry.id
	name     string                        // current section, trimmed, for messages
	keys     map[string]func(string) error // setters of the current section's keys
	mainRaw  string                        // the [blastbeat] section as go-ini names it
	mainLine int                           // line of the [blastbeat] header, 0 if absent
	line     int                           // line of the entry being applied
}

// errorAt builds an *Error for this file.
func (p *parser) errorAt(line int, section, key string, kind error, detail string) *Error {
	return newError(kind, p.opts.File, line, section, key, detail)
}

// firstLine returns the line key was first set on in section (as go-ini
// names it), or 0.
func (p *parser) firstLine(section, key string) int {
	if st := p.state[section+"\x00"+key]; st != nil && st.seen > 0 {
		return st.first
	}
	return 0
}

// section starts a [blastbeat] or [blastbeat:NAME] section.
func (p *parser) section(e entry) error {
	p.name = strings.TrimSpace(e.section)
	switch rest, isVHost := strings.CutPrefix(p.name, mainSection+":"); {
	case p.name == mainSection:
		if p.mainLine > 0 {
			return p.errorAt(e.line, p.name, "", ErrDuplicate, fmt.Sprintf("first defined at line %d", p.mainLine))
		}
		p.mainRaw, p.mainLine, p.keys = e.section, e.line, p.mainKeys()
	case isVHost:
		host, err := parseVHostName(rest)
		if err != nil {
			return p.errorAt(e.line, p.name, "", ErrBadValue, err.Error())
		}
		for _, v := range p.opts.VHosts {
			if v.Name == host {
				return p.errorAt(e.line, p.name, "", ErrDuplicate, fmt.Sprintf("virtual host %q first defined at line %d", host, v.Line))
			}
		}
		p.opts.VHosts = append(p.opts.VHosts, VHost{Name: host, Format: "uwsgi", HTTPSRedirect: true, Line: e.line})
		p.keys = p.vhostKeys(&p.opts.VHosts[len(p.opts.VHosts)-1])
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
	set, ok := p.keys[e.key]
	if !ok {
		return p.errorAt(e.line, p.name, e.key, ErrUnknownKey, "")
	}
	st := p.state[e.id()]
	if st.seen++; st.seen == 1 {
		st.first = e.line
	} else if !repeatable(e.key) {
		return p.errorAt(e.line, p.name, e.key, ErrRepeated, fmt.Sprintf("first set at line %d", st.first))
	}
	if e.empty {
		return p.errorAt(e.line, p.name, e.key, ErrBadValue, "empty value")
	}
	// Every earlier occurrence had a value (or we would have stopped), so
	// this is value number seen, provided go-ini and scan agree.
	if len(st.vals) != st.count || st.seen > len(st.vals) {
		return p.errorAt(e.line, p.name, e.key, ErrSyntax, "value could not be read")
	}
	p.line = e.line
	if err := set(st.vals[st.seen-1]); err != nil {
		return p.errorAt(e.line, p.name, e.key, ErrBadValue, err.Error())
	}
	return nil
}

// repeatable reports whether key accumulates instead of being set once.
func repeatable(key string) bool {
	switch key {
	case "bind", "bind-ssl", "zmq", "node", "alias":
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

// add returns a setter appending parse's result to dst; with unique set,
// a value already there is dropped.
func add[T comparable](dst *[]T, unique bool, parse func(string) (T, error)) func(string) error {
	return func(s string) error {
		v, err := parse(s)
		if err == nil && !(unique && slices.Contains(*dst, v)) {
			*dst = append(*dst, v)
		}
		return err
	}
}

// ignore returns a setter that records an obsolete key of the original.
func (p *parser) ignore(key string) func(string) error {
	return func(string) error {
		p.opts.Ignored = append(p.opts.Ignored, Ignored{Section: p.name, Key: key, Line: p.line})
		return nil
	}
}

// bind parses a listen address read on the current line.
func (p *parser) bind(s string) (Bind, error) {
	addr, err := parseBind(s)
	return Bind{Addr: addr, Line: p.line}, err
}

// mainKeys returns the setters of the [blastbeat] keys.
func (p *parser) mainKeys() map[string]func(string) error {
	o := &p.opts
	return map[string]func(string) error{
		"bind":                     add(&o.Binds, false, p.bind),
		"zmq":                      add(&o.ZMQ, true, parseEndpoint),
		"ping-freq":                set(&o.PingFreq, parseDuration),
		"max-hops":                 set(&o.MaxHops, parseInt),
		"timeout":                  set(&o.Timeout, parseDuration),
		"uid":                      set(&o.UID, parseString),
		"gid":                      set(&o.GID, parseString),
		"daemon":                   set(&o.Daemon, parseBool),
		"certificate":              set(&o.Certificate, parseString),
		"key":                      set(&o.Key, parseString),
		"max-connections":          set(&o.MaxConnections, parseInt),
		"max-header-size":          set(&o.MaxHeaderSize, parseSizeInt),
		"max-uri":                  set(&o.MaxURI, parseSizeInt),
		"max-body":                 set(&o.MaxBody, parseSize),
		"max-websocket-message":    set(&o.MaxWebSocketMessage, parseSizeInt),
		"max-pending-output":       set(&o.MaxPendingOutput, parseSizeInt),
		"max-pending-output-total": set(&o.MaxPendingOutputTotal, parseSize),
		"credit-window":            set(&o.CreditWindow, parseSizeInt),
		"max-read-ahead":           set(&o.MaxReadAhead, parseSizeInt),
		"tls-handshake-timeout":    set(&o.TLSHandshakeTimeout, parseDuration),
		"max-tls-handshakes":       set(&o.MaxTLSHandshakes, parseInt),
		"retry-buffer":             set(&o.RetryBuffer, parseSizeInt),
		"header-timeout":           set(&o.HeaderTimeout, parseDuration),
		"idle-timeout":             set(&o.IdleTimeout, parseDuration),
		"shutdown-grace":           set(&o.ShutdownGrace, parseDuration),
		"workers":                  set(&o.Workers, parseInt),
		"ring-size":                set(&o.RingSize, parseInt),
		"log-format":               set(&o.LogFormat, oneOf("text", "json")),
		"log-level":                set(&o.LogLevel, oneOf("debug", "info", "warn", "error")),
		"stall-timeout":            set(&o.StallTimeout, parseDuration),
		"send-timeout":             set(&o.SendTimeout, parseDuration),
		"zmq-hwm":                  set(&o.ZMQHWM, parseInt),
		"sessions":                 p.ignore("sessions"),
	}
}

// vhostKeys returns the setters of the keys of virtual host v. They are
// only valid until the next VHost is appended.
func (p *parser) vhostKeys(v *VHost) map[string]func(string) error {
	return map[string]func(string) error{
		"node":                add(&v.Nodes, true, parseNode),
		"bind":                add(&v.Binds, false, p.bind),
		"bind-ssl":            add(&v.BindSSL, false, p.bind),
		"certificate":         set(&v.Certificate, parseString),
		"key":                 set(&v.Key, parseString),
		"format":              set(&v.Format, oneOf("uwsgi", "headers")),
		"websocket-protocols": set(&v.WebSocketProtocols, parseTokenList),
		"timeout":             set(&v.Timeout, parseDuration),
		"max-body":            set(&v.MaxBody, parseSize),
		"alias":               add(&v.Aliases, true, parseVHostName),
		"allow-trace":         set(&v.AllowTrace, parseBool),
		"https-redirect":      set(&v.HTTPSRedirect, parseBool),
		"sessions":            p.ignore("sessions"),
		"cache":               p.ignore("cache"),
	}
}
