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
// is the file name used in error messages and Options.File. It reports
// every problem it finds, each an *Error naming the file and the line,
// joined with errors.Join when there are several (at most maxErrors).
// It reads on past a bad line, key or section and stops early only where
// the rest cannot be read: a UTF-16 file, a multi-line value, a file
// go-ini rejects.
func Parse(name string, data []byte) (*Options, error) {
	p := &parser{opts: Defaults(), state: map[string]*keyState{}, hosts: map[string]hostDef{}}
	p.opts.File = name
	p.errs.file = name
	s := scan(data, &p.errs)
	if s.partial {
		return nil, p.errs.err()
	}
	p.dropped = s.lostHeader
	f, err := ini.LoadSources(ini.LoadOptions{
		AllowShadows:               true,
		AllowDuplicateShadowValues: true,
		KeyValueDelimiters:         "=",
		IgnoreContinuation:         true,
		SpaceBeforeInlineComment:   true,
	}, s.data)
	if err != nil {
		p.errs.add(newError(ErrSyntax, name, 0, "", "", err.Error()))
		return nil, p.errs.err()
	}
	for _, e := range s.entries {
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
	for _, e := range s.entries {
		if e.header {
			p.section(e)
		} else {
			p.key(e)
		}
	}
	p.validate()
	if err := p.errs.err(); err != nil {
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
	seen  int      // occurrences met so far, in sections not dropped
	next  int      // occurrences with a non-empty value met so far
	first int      // line of the first occurrence
	vals  []string // go-ini's non-empty values, in file order
}

// hostDef is where a Host name (a virtual host's or an alias) was first
// defined.
type hostDef struct {
	line    int
	section string // as written, trimmed
	key     string // "alias", or "" for the section name
	vhost   int    // index in Options.VHosts
}

// parser walks the scanned entries and fills opts with go-ini's values.
type parser struct {
	opts     Options
	errs     errorList
	state    map[string]*keyState          // by entry.id
	hosts    map[string]hostDef            // Host names defined so far
	name     string                        // current section, trimmed, for messages
	keys     map[string]func(string) error // setters of the current section's keys; nil drops them
	dropped  bool                          // a section's keys were dropped: what it held is unknown
	mainRaw  string                        // the [blastbeat] section as go-ini names it
	vhostRaw []string                      // each VHosts' section as go-ini names it
	mainLine int                           // line of the [blastbeat] header, 0 if absent
	line     int                           // line of the entry being applied
}

// errorAt builds an *Error for this file.
func (p *parser) errorAt(line int, section, key string, kind error, detail string) *Error {
	return newError(kind, p.opts.File, line, section, key, detail)
}

// fail records an error.
func (p *parser) fail(line int, section, key string, kind error, detail string) {
	p.errs.add(p.errorAt(line, section, key, kind, detail))
}

// firstLine returns the line key was first set on in section (as go-ini
// names it), or 0.
func (p *parser) firstLine(section, key string) int {
	if st := p.state[section+"\x00"+key]; st != nil && st.seen > 0 {
		return st.first
	}
	return 0
}

// drop records a section whose keys are not read: an unknown, malformed
// or duplicate one.
func (p *parser) drop(line int, kind error, detail string) {
	p.fail(line, p.name, "", kind, detail)
	p.keys, p.dropped = nil, true
}

// section starts a [blastbeat] or [blastbeat:NAME] section.
func (p *parser) section(e entry) {
	p.name = strings.TrimSpace(e.section)
	switch rest, isVHost := strings.CutPrefix(p.name, mainSection+":"); {
	case p.name == mainSection:
		if p.mainLine > 0 {
			p.drop(e.line, ErrDuplicate, fmt.Sprintf("first defined at line %d", p.mainLine))
			return
		}
		p.mainRaw, p.mainLine, p.keys = e.section, e.line, p.mainKeys()
	case isVHost:
		host, err := parseVHostName(rest)
		if err != nil {
			p.drop(e.line, ErrBadValue, err.Error())
			return
		}
		if first, dup := p.hosts[host]; dup {
			p.errs.add(p.duplicateHost(e.line, "", host, first))
			p.keys, p.dropped = nil, true
			return
		}
		p.hosts[host] = hostDef{line: e.line, section: p.name, vhost: len(p.opts.VHosts)}
		p.opts.VHosts = append(p.opts.VHosts, VHost{Name: host, Format: "uwsgi", HTTPSRedirect: true, Line: e.line})
		p.vhostRaw = append(p.vhostRaw, e.section)
		i := len(p.opts.VHosts) - 1
		p.keys = p.vhostKeys(&p.opts.VHosts[i], i)
	default:
		p.drop(e.line, ErrUnknownSection, "expected [blastbeat] or [blastbeat:HOST[:PORT]]")
	}
}

// duplicateHost reports Host name host defined again on line (key is
// "alias", or "" for a section header) after first. Two virtual hosts
// answering one name would make routing depend on file order.
func (p *parser) duplicateHost(line int, key, host string, first hostDef) *Error {
	what := "[" + first.section + "]"
	if first.key != "" {
		what = first.key + " in " + what
	}
	return &Error{File: p.opts.File, Line: line, Section: p.name, Key: key, err: ErrDuplicate,
		Msg: fmt.Sprintf("duplicate host name %q: first defined at line %d (%s)", host, first.line, what)}
}

// key applies one "key = value" line of the current section.
func (p *parser) key(e entry) {
	if e.section == "" {
		p.fail(e.line, "", e.key, ErrSyntax, "key outside of any section")
		return
	}
	if p.keys == nil { // the section was dropped
		return
	}
	set, ok := p.keys[e.key]
	if !ok {
		p.fail(e.line, p.name, e.key, ErrUnknownKey, "")
		return
	}
	st := p.state[e.id()]
	st.seen++
	if !e.empty {
		st.next++ // this is go-ini's value number next, if go-ini and scan agree
	}
	if st.seen == 1 {
		st.first = e.line
	} else if !repeatable(e.key) {
		p.fail(e.line, p.name, e.key, ErrRepeated, fmt.Sprintf("first set at line %d", st.first))
		return
	}
	if e.empty {
		p.fail(e.line, p.name, e.key, ErrBadValue, "empty value")
		return
	}
	if len(st.vals) != st.count || st.next > len(st.vals) {
		p.fail(e.line, p.name, e.key, ErrSyntax, "value could not be read")
		return
	}
	p.line = e.line
	if err := set(st.vals[st.next-1]); err != nil {
		if ce, ok := err.(*Error); ok { // already says what is wrong
			p.errs.add(ce)
			return
		}
		p.fail(e.line, p.name, e.key, ErrBadValue, err.Error())
	}
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
		"bind":                       add(&o.Binds, false, p.bind),
		"zmq":                        add(&o.ZMQ, true, parseEndpoint),
		"ping-freq":                  set(&o.PingFreq, parseDuration),
		"max-hops":                   set(&o.MaxHops, parseInt),
		"timeout":                    set(&o.Timeout, parseDuration),
		"response-idle-timeout":      set(&o.ResponseIdleTimeout, parseDuration),
		"uid":                        set(&o.UID, parseString),
		"gid":                        set(&o.GID, parseString),
		"daemon":                     set(&o.Daemon, parseBool),
		"certificate":                set(&o.Certificate, parseString),
		"key":                        set(&o.Key, parseString),
		"max-connections":            set(&o.MaxConnections, parseInt),
		"max-header-size":            set(&o.MaxHeaderSize, parseSizeInt),
		"max-uri":                    set(&o.MaxURI, parseSizeInt),
		"max-body":                   set(&o.MaxBody, parseSize),
		"max-websocket-message":      set(&o.MaxWebSocketMessage, parseSizeInt),
		"websocket-message-timeout":  set(&o.WebSocketMessageTimeout, parseDuration),
		"max-pending-output":         set(&o.MaxPendingOutput, parseSizeInt),
		"max-pending-output-total":   set(&o.MaxPendingOutputTotal, parseSize),
		"credit-window":              set(&o.CreditWindow, parseSizeInt),
		"max-read-ahead":             set(&o.MaxReadAhead, parseSizeInt),
		"tls-handshake-timeout":      set(&o.TLSHandshakeTimeout, parseDuration),
		"tls-handshake-idle-timeout": set(&o.TLSHandshakeIdleTimeout, parseDuration),
		"max-tls-handshakes":         set(&o.MaxTLSHandshakes, parseInt),
		"max-client-hello":           set(&o.MaxClientHello, parseSizeInt),
		"http2":                      set(&o.HTTP2, parseBool),
		"http2-max-streams":          set(&o.HTTP2MaxStreams, parseInt),
		"http2-max-resets":           set(&o.HTTP2MaxResets, parseInt),
		"http2-max-control-frames":   set(&o.HTTP2MaxControlFrames, parseInt),
		"http2-header-table-size":    set(&o.HTTP2HeaderTableSize, parseSizeInt),
		"http2-max-header-block":     set(&o.HTTP2MaxHeaderBlock, parseSizeInt),
		"http2-stream-window":        set(&o.HTTP2StreamWindow, parseSizeInt),
		"http2-connection-window":    set(&o.HTTP2ConnectionWindow, parseSizeInt),
		"max-nodes":                  set(&o.MaxNodes, parseInt),
		"reuse-port":                 set(&o.ReusePort, parseBool),
		"stats":                      set(&o.Stats, parseString),
		"stats-public":               set(&o.StatsPublic, parseBool),
		"stats-max-connections":      set(&o.StatsMaxConnections, parseInt),
		"stats-idle-timeout":         set(&o.StatsIdleTimeout, parseDuration),
		"access-log":                 set(&o.AccessLog, parseAccessLog),
		"access-log-format":          set(&o.AccessLogFormat, oneOf("combined", "json")),
		"retry-buffer":               set(&o.RetryBuffer, parseSizeInt),
		"access-log-buffer":          set(&o.AccessLogBuffer, parseSizeInt),
		"node-read-ahead":            set(&o.NodeReadAhead, parseSizeInt),
		"header-timeout":             set(&o.HeaderTimeout, parseDuration),
		"idle-timeout":               set(&o.IdleTimeout, parseDuration),
		"tcp-keepalive":              set(&o.TCPKeepAlive, parseDuration),
		"shutdown-grace":             set(&o.ShutdownGrace, parseDuration),
		"shutdown-delay":             set(&o.ShutdownDelay, parseDuration),
		"workers":                    set(&o.Workers, parseInt),
		"ring-size":                  set(&o.RingSize, parseInt),
		"log-format":                 set(&o.LogFormat, oneOf("text", "json")),
		"log-level":                  set(&o.LogLevel, oneOf("debug", "info", "warn", "error")),
		"log-buffer":                 set(&o.LogBuffer, parseSizeInt),
		"stall-timeout":              set(&o.StallTimeout, parseDuration),
		"lingering-timeout":          set(&o.LingeringTimeout, parseDuration),
		"lingering-time":             set(&o.LingeringTime, parseDuration),
		"send-timeout":               set(&o.SendTimeout, parseDuration),
		"zmq-hwm":                    set(&o.ZMQHWM, parseInt),
		"zmq-rcv-hwm":                set(&o.ZMQRcvHWM, parseInt),
		"zmq-max-message":            set(&o.ZMQMaxMessage, parseSize),
		"zmq-queue-bytes":            set(&o.ZMQQueueBytes, parseSize),
		"zmq-io-threads":             set(&o.ZMQIOThreads, parseInt),
		"zmq-busy-poll":              set(&o.ZMQBusyPoll, parseDuration),
		"zmq-bridges":                set(&o.ZMQBridges, parseInt),
		"zmq-rebalance":              set(&o.ZMQRebalance, parseInt),
		"emperor-heartbeat":          set(&o.EmperorHeartbeat, parseDuration),
		"sessions":                   p.ignore("sessions"),
	}
}

// alias returns the setter of key alias of virtual host v, number i. A
// name another virtual host has is an error; one v already has is
// dropped.
func (p *parser) alias(v *VHost, i int) func(string) error {
	return func(s string) error {
		name, err := parseVHostName(s)
		if err != nil {
			return err
		}
		if name == "*" {
			// It matched no Host (the catch-all is a section's name).
			return errors.New("alias * is not a catch-all: name a section [blastbeat:*] instead")
		}
		if first, dup := p.hosts[name]; dup {
			if first.vhost == i {
				return nil
			}
			return p.duplicateHost(p.line, "alias", name, first)
		}
		p.hosts[name] = hostDef{line: p.line, section: p.name, key: "alias", vhost: i}
		v.Aliases = append(v.Aliases, name)
		return nil
	}
}

// vhostKeys returns the setters of the keys of virtual host v, number i.
// They are only valid until the next VHost is appended.
func (p *parser) vhostKeys(v *VHost, i int) map[string]func(string) error {
	return map[string]func(string) error{
		"node":                  add(&v.Nodes, true, parseNode),
		"bind":                  add(&v.Binds, false, p.bind),
		"bind-ssl":              add(&v.BindSSL, false, p.bind),
		"certificate":           set(&v.Certificate, parseString),
		"key":                   set(&v.Key, parseString),
		"format":                set(&v.Format, oneOf("uwsgi", "headers")),
		"websocket-protocols":   set(&v.WebSocketProtocols, parseTokenList),
		"websocket-handshake":   set(&v.WebSocketHandshake, oneOf("proxy", "node")),
		"timeout":               set(&v.Timeout, parseDuration),
		"response-idle-timeout": set(&v.ResponseIdleTimeout, parseDuration),
		"max-body":              set(&v.MaxBody, parseSize),
		"alias":                 p.alias(v, i),
		"allow-trace":           set(&v.AllowTrace, parseBool),
		"https-redirect":        set(&v.HTTPSRedirect, parseBool),
		"sessions":              p.ignore("sessions"),
		"cache":                 p.ignore("cache"),
	}
}
