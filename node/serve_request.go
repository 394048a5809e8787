package node

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// environKey is the context key of a request's uwsgi environ.
type environKey struct{}

// RequestEnviron returns the uwsgi environ (PROTOCOL.md) a request of
// Serve was built from, e.g. for SERVER_NAME or SERVER_PORT; nil for a
// request from a `format = headers` virtual host, or one that Serve did
// not make. The map is shared: do not change it.
func RequestEnviron(r *http.Request) map[string]string {
	env, _ := r.Context().Value(environKey{}).(map[string]string)
	return env
}

// requestFromEnviron builds a server request, as net/http's server would
// hand it to a Handler, from a uwsgi environ. Its Body is http.NoBody
// and it has no context yet; the caller sets both.
func requestFromEnviron(env map[string]string) (*http.Request, error) {
	r := &http.Request{
		Method:     env["REQUEST_METHOD"],
		RequestURI: env["REQUEST_URI"],
		Header:     make(http.Header, len(env)),
		Body:       http.NoBody,
	}
	if r.Method == "" {
		return nil, errors.New("no REQUEST_METHOD")
	}
	if r.RequestURI == "" {
		// Not from BlastBeat, which always sends it: rebuild it.
		r.RequestURI = (&url.URL{Path: env["PATH_INFO"], RawQuery: env["QUERY_STRING"]}).RequestURI()
	}
	var err error
	if r.URL, err = parseRequestURI(r.Method, r.RequestURI); err != nil {
		return nil, err
	}
	var ok bool
	if r.Proto, r.ProtoMajor, r.ProtoMinor, ok = parseProto(env["SERVER_PROTOCOL"]); !ok {
		return nil, fmt.Errorf("bad SERVER_PROTOCOL %q", env["SERVER_PROTOCOL"])
	}
	for k, v := range env {
		var name string
		switch {
		case k == "CONTENT_TYPE":
			name = "Content-Type"
		case k == "CONTENT_LENGTH":
			name = "Content-Length"
		case k == "HTTP_HOST", k == "HTTP_CONTENT_TYPE", k == "HTTP_CONTENT_LENGTH":
			continue // Host is r.Host; the CONTENT_ vars win
		case strings.HasPrefix(k, "HTTP_") && len(k) > 5:
			name = textproto.CanonicalMIMEHeaderKey(strings.ReplaceAll(k[5:], "_", "-"))
		default:
			continue
		}
		r.Header[name] = []string{v}
	}
	r.Host = env["HTTP_HOST"]
	if r.URL.Host != "" {
		r.Host = r.URL.Host // absolute form: the proxy checked they agree
	}
	if err := setBodyFraming(r); err != nil {
		return nil, err
	}
	r.Close = wantsClose(r)
	if addr := env["REMOTE_ADDR"]; addr != "" {
		r.RemoteAddr = net.JoinHostPort(addr, env["REMOTE_PORT"])
	}
	if strings.EqualFold(env["HTTPS"], "on") {
		// The TLS session is the proxy's: its details are not known here.
		r.TLS = &tls.ConnectionState{}
	}
	return r, nil
}

// requestFromHead builds a server request from a raw request head (a
// `format = headers` virtual host). RemoteAddr and TLS are not known.
func requestFromHead(raw []byte) (*http.Request, error) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, err
	}
	r.Body = http.NoBody
	r.Header.Del("Transfer-Encoding")
	if r.ContentLength < 0 {
		// ReadRequest says -1 for chunked; a body-less request says 0.
		r.Header.Set("Transfer-Encoding", "chunked")
	}
	if err := setBodyFraming(r); err != nil {
		return nil, err
	}
	return r, nil
}

// wantsClose is net/http's Request.Close for a server request: the
// client's connection closes after the response (HTTP/1.0 without
// keep-alive, or Connection: close). The proxy decides; this only tells
// the handler.
func wantsClose(r *http.Request) bool {
	if r.ProtoMajor != 1 {
		return false
	}
	if hasToken(r.Header, "Connection", "close") {
		return true
	}
	return r.ProtoMinor == 0 && !hasToken(r.Header, "Connection", "keep-alive")
}

// setBodyFraming sets ContentLength and TransferEncoding from the
// header, as net/http's server does: a chunked body has length -1 and no
// Transfer-Encoding field left; no body at all is 0.
func setBodyFraming(r *http.Request) error {
	r.ContentLength = 0
	r.TransferEncoding = nil
	if te := r.Header.Get("Transfer-Encoding"); te != "" {
		r.Header.Del("Transfer-Encoding")
		if !strings.EqualFold(strings.TrimSpace(te), "chunked") {
			return fmt.Errorf("unsupported Transfer-Encoding %q", te)
		}
		r.Header.Del("Content-Length")
		r.TransferEncoding = []string{"chunked"}
		r.ContentLength = -1
		return nil
	}
	if cl := r.Header.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad Content-Length %q", cl)
		}
		r.ContentLength = n
	}
	return nil
}

// parseRequestURI parses a request target as net/http's server does:
// origin form, absolute form, `*`, or a CONNECT authority.
func parseRequestURI(method, uri string) (*url.URL, error) {
	if method == http.MethodConnect && !strings.HasPrefix(uri, "/") {
		u, err := url.ParseRequestURI("http://" + uri)
		if err != nil {
			return nil, err
		}
		u.Scheme = ""
		return u, nil
	}
	return url.ParseRequestURI(uri)
}

// parseProto parses SERVER_PROTOCOL: HTTP/1.x, and HTTP/2 (which
// net/http's own HTTP/2 server calls HTTP/2.0). Empty means HTTP/1.1.
func parseProto(p string) (proto string, major, minor int, ok bool) {
	switch p {
	case "":
		return "HTTP/1.1", 1, 1, true
	case "HTTP/2", "HTTP/2.0":
		return "HTTP/2.0", 2, 0, true
	}
	major, minor, ok = http.ParseHTTPVersion(p)
	return p, major, minor, ok
}

// isWebSocket reports whether r opens a WebSocket session (the proxy
// passes Upgrade only when Connection lists it, in HTTP/1.1; a
// format = headers head comes as the client sent it).
func isWebSocket(r *http.Request) bool {
	return r.ProtoAtLeast(1, 1) && hasToken(r.Header, "Upgrade", "websocket") && hasToken(r.Header, "Connection", "upgrade")
}

// hasToken reports whether a comma-separated field of h lists tok.
func hasToken(h http.Header, name, tok string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), tok) {
				return true
			}
		}
	}
	return false
}
