package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/internal/tlsconf"
)

// tlsListeners loads the certificates of every bind-ssl listener, grouped
// by address in file order (the first virtual host of an address gives
// the certificate for clients without SNI or with an unknown name). Both
// `-t` and the start use it, so a missing, unreadable, mismatched or
// expired file is reported before anything listens, naming the file, the
// config line (a virtual host's first bind-ssl) and the virtual host.
// Every bad certificate is reported, joined with errors.Join. Relative
// paths are taken from the config file's folder.
func tlsListeners(cfg *config.Options, now time.Time) (map[string]*tlsconf.Listener, error) {
	sites := map[string][]tlsconf.Site{}
	var order []string // addresses in file order, for the errors
	var errs []error
	for _, v := range cfg.VHosts {
		if len(v.BindSSL) == 0 {
			continue
		}
		// SNI names a host without a port: an alias's port (alias =
		// c.test:8443) made a name no handshake matched.
		names := []string{hostOnly(v.Name)}
		for _, a := range v.Aliases {
			names = append(names, hostOnly(a))
		}
		site := tlsconf.Site{
			Names:    names,
			CertFile: relTo(cfg.File, v.Certificate),
			KeyFile:  relTo(cfg.File, v.Key),
		}
		if _, err := tlsconf.Load(site.CertFile, site.KeyFile, now); err != nil {
			b := v.BindSSL[0]
			errs = append(errs, fmt.Errorf("%s:%d: [blastbeat:%s] bind-ssl %s: %w", cfg.File, b.Line, v.Name, b.Addr, err))
			continue
		}
		for _, b := range v.BindSSL {
			if _, seen := sites[b.Addr]; !seen {
				order = append(order, b.Addr)
			}
			sites[b.Addr] = append(sites[b.Addr], site)
		}
	}
	out := make(map[string]*tlsconf.Listener, len(sites))
	for _, addr := range order {
		l, err := tlsconf.NewListener(sites[addr], now)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: bind-ssl %s: %w", cfg.File, addr, err))
			continue
		}
		out[addr] = l
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// relTo resolves path against the folder of the config file.
func relTo(file, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(file), path)
}

// hostOnly drops a virtual host name's port ("a.test:8443" → "a.test").
func hostOnly(name string) string {
	if i := len(name) - 1; i > 0 && name[0] != '[' {
		for j := i; j >= 0; j-- {
			if name[j] == ':' {
				return name[:j]
			}
			if name[j] < '0' || name[j] > '9' {
				break
			}
		}
	}
	return name
}
