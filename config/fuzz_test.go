package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/blastbeat/blastbeat/config"
)

// FuzzParse checks that Parse never panics, that every error it joins is
// a *config.Error, and that a success satisfies the validation rules.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		readmeBasic,
		readmeVHostBind,
		readmeSSL,
		sharedCanvas,
		shippedIni,
		"",
		"[blastbeat]\nbind = \"\"\"x\n",
		"[blastbeat]\nbind = 0.0.0.0:1\nbind =\nbind = ''\nzmq = inproc://x\n[blastbeat:a]\nnode = `n`\n",
		"\xEF\xBB\xBF[blastbeat]\r\nbind = fe80::1%eth0:80 ; c\r\nzmq = tcp://*:*\r\n[blastbeat:[::1]:80]\r\nnode = n\r\n",
		"[blastbeat.x]\nkey = a\n[blastbeat:a.b]\nnode = x\\\n  y\n- = 1\n",
		"[blastbeat] x\nbind = 0.0.0.0:0\nzmq =\n[oops\nnode = n\n[blastbeat:a]\nalias = B\nalias = b\n[blastbeat:b ]\nnode = m\nnode\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts, err := config.Parse("fuzz.ini", data)
		if err != nil {
			for _, e := range leaves(err) {
				ce, ok := e.(*config.Error)
				if !ok {
					t.Fatalf("error %T %v is not a *config.Error", e, e)
				}
				// A syntax error without a line, or a value go-ini and the
				// line scanner disagree on, means the two parsers drifted
				// apart.
				if (errors.Is(ce, config.ErrSyntax) && ce.Line == 0) || strings.Contains(ce.Msg, "could not be read") {
					t.Fatalf("line scanner and go-ini disagree: %v", err)
				}
			}
			if opts != nil {
				t.Fatalf("Parse returned options and error %v", err)
			}
			return
		}
		if len(opts.ZMQ) == 0 || len(opts.VHosts) == 0 {
			t.Fatalf("accepted options without zmq or vhosts: %+v", opts)
		}
		for _, v := range opts.VHosts {
			if len(v.Nodes) == 0 {
				t.Fatalf("accepted vhost %q without nodes", v.Name)
			}
			for _, n := range v.Nodes {
				if n == "" || len(n) > 255 {
					t.Fatalf("accepted node %q", n)
				}
			}
		}
		if opts.MaxURI > opts.MaxHeaderSize || opts.RingSize&(opts.RingSize-1) != 0 || opts.RingSize < 1024 {
			t.Fatalf("accepted inconsistent limits: %+v", opts)
		}
	})
}

// leaves returns the errors joined in err (err itself if it joins none).
func leaves(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leaves(e)...)
	}
	return out
}
