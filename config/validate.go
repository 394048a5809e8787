package config

import "fmt"

// maxRingSize bounds ring-size (16M messages).
const maxRingSize = 1 << 24

// validate checks what needs the whole file: required sections and keys,
// ranges, and relations between fields. Errors point at the key's line
// when it was set, else at its section's header.
func (p *parser) validate() error {
	o := &p.opts
	if p.mainLine == 0 {
		return p.errorAt(0, "", "", ErrMissing, "no [blastbeat] section")
	}
	if len(o.ZMQ) == 0 {
		return p.errorAt(p.mainLine, mainSection, "zmq", ErrMissing, "at least one zmq endpoint is required")
	}
	if len(o.VHosts) == 0 {
		return p.errorAt(0, "", "", ErrMissing, "at least one [blastbeat:HOST] section is required")
	}
	binds := len(o.Binds)
	for _, v := range o.VHosts {
		binds += len(v.Binds) + len(v.BindSSL)
	}
	if binds == 0 {
		return p.errorAt(p.mainLine, mainSection, "bind", ErrMissing, "at least one bind is required (in [blastbeat] or a virtual host)")
	}
	uriKey := "max-uri"
	if p.firstLine(p.mainRaw, uriKey) == 0 {
		uriKey = "max-header-size" // max-uri kept its default
	}
	checks := []struct {
		key string
		ok  bool
		msg string
	}{
		{"ping-freq", o.PingFreq > 0, "must be greater than 0"},
		{"timeout", o.Timeout > 0, "must be greater than 0"},
		{"max-hops", o.MaxHops >= 0, "must not be negative"},
		{"max-connections", o.MaxConnections > 0, "must be greater than 0"},
		{"max-header-size", 256 <= o.MaxHeaderSize && o.MaxHeaderSize <= 65535, "must be between 256 and 65535"},
		{"max-uri", o.MaxURI > 0, "must be greater than 0"},
		{uriKey, o.MaxURI <= o.MaxHeaderSize, fmt.Sprintf("max-uri (%d) must not exceed max-header-size (%d)", o.MaxURI, o.MaxHeaderSize)},
		{"max-body", o.MaxBody > 0, "must be greater than 0"},
		{"max-websocket-message", o.MaxWebSocketMessage > 0, "must be greater than 0"},
		{"max-pending-output", o.MaxPendingOutput > 0, "must be greater than 0"},
		{"max-pending-output-total", o.MaxPendingOutputTotal >= int64(o.MaxPendingOutput),
			fmt.Sprintf("must be at least max-pending-output (%d)", o.MaxPendingOutput)},
		{"credit-window", o.CreditWindow >= 1024, "must be at least 1k"},
		{"max-read-ahead", o.MaxReadAhead >= 4096, "must be at least 4k"},
		{"tls-handshake-timeout", o.TLSHandshakeTimeout > 0, "must be greater than 0"},
		{"max-tls-handshakes", o.MaxTLSHandshakes > 0, "must be greater than 0"},
		{"header-timeout", o.HeaderTimeout > 0, "must be greater than 0"},
		{"workers", o.Workers >= 0, "must not be negative"},
		{"stall-timeout", o.StallTimeout > 0, "must be greater than 0"},
		{"send-timeout", o.SendTimeout > 0, "must be greater than 0"},
		{"zmq-hwm", o.ZMQHWM > 0, "must be greater than 0"},
		{"ring-size", o.RingSize >= 1024 && o.RingSize <= maxRingSize && o.RingSize&(o.RingSize-1) == 0,
			fmt.Sprintf("must be a power of two from 1024 to %d", maxRingSize)},
	}
	for _, c := range checks {
		if !c.ok {
			line := p.firstLine(p.mainRaw, c.key)
			if line == 0 {
				line = p.mainLine
			}
			return p.errorAt(line, mainSection, c.key, ErrBadValue, c.msg)
		}
	}
	for i := range o.VHosts {
		v := &o.VHosts[i]
		if len(v.Nodes) == 0 {
			return p.errorAt(v.Line, mainSection+":"+v.Name, "node", ErrMissing, "at least one node is required")
		}
		if len(v.BindSSL) == 0 {
			continue
		}
		// A TLS virtual host needs a certificate and key: its own, or
		// the [blastbeat] defaults.
		if v.Certificate == "" {
			v.Certificate = o.Certificate
		}
		if v.Key == "" {
			v.Key = o.Key
		}
		section := mainSection + ":" + v.Name
		if v.Certificate == "" {
			return p.errorAt(v.BindSSL[0].Line, section, "certificate", ErrMissing, "bind-ssl needs a certificate (here or in [blastbeat])")
		}
		if v.Key == "" {
			return p.errorAt(v.BindSSL[0].Line, section, "key", ErrMissing, "bind-ssl needs a key (here or in [blastbeat])")
		}
	}
	return nil
}
