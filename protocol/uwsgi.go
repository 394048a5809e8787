package protocol

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// uwsgiMaxVars is the largest datasize a uwsgi packet can declare.
const uwsgiMaxVars = 0xffff

// ErrUwsgiMalformed reports a uwsgi packet whose lengths do not add up.
var ErrUwsgiMalformed = errors.New("protocol: malformed uwsgi packet")

// BeginUwsgi appends the 4-byte uwsgi header placeholder to dst and returns
// the extended slice and the offset of the header, for FinishUwsgi.
func BeginUwsgi(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0), len(dst)
}

// AppendUwsgiVar appends one key/value pair. Keys and values longer than
// 65535 bytes make FinishUwsgi fail.
func AppendUwsgiVar(dst []byte, key, val []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(val)))
	return append(dst, val...)
}

// AppendUwsgiString is AppendUwsgiVar for string arguments.
func AppendUwsgiString(dst []byte, key, val string) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(val)))
	return append(dst, val...)
}

// FinishUwsgi writes the header of the packet that starts at start:
// modifier1 0, datasize (vars only, little-endian), modifier2 0.
func FinishUwsgi(dst []byte, start int) ([]byte, error) {
	size := len(dst) - start - 4
	if size > uwsgiMaxVars {
		return dst[:start], ErrUwsgiTooLarge
	}
	dst[start] = 0
	binary.LittleEndian.PutUint16(dst[start+1:], uint16(size))
	dst[start+3] = 0
	return dst, nil
}

// RangeUwsgi calls fn for every var of pkt, in order. The slices alias pkt.
func RangeUwsgi(pkt []byte, fn func(key, val []byte) bool) error {
	if len(pkt) < 4 {
		return ErrUwsgiMalformed
	}
	size := int(binary.LittleEndian.Uint16(pkt[1:3]))
	if len(pkt) < 4+size {
		return ErrUwsgiMalformed
	}
	vars := pkt[4 : 4+size]
	for len(vars) > 0 {
		if len(vars) < 2 {
			return ErrUwsgiMalformed
		}
		kl := int(binary.LittleEndian.Uint16(vars))
		if len(vars) < 2+kl+2 {
			return ErrUwsgiMalformed
		}
		key := vars[2 : 2+kl]
		vars = vars[2+kl:]
		vl := int(binary.LittleEndian.Uint16(vars))
		if len(vars) < 2+vl {
			return ErrUwsgiMalformed
		}
		val := vars[2 : 2+vl]
		vars = vars[2+vl:]
		if !fn(key, val) {
			return nil
		}
	}
	return nil
}

// ConnInfo is what the environ needs to know of the client connection.
// The addresses come formatted (the strings) or as values (LocalPort,
// Remote), which AppendEnviron formats straight into the packet: a
// connection then keeps no strings and builds its ConnInfo without
// allocating.
type ConnInfo struct {
	ServerPort string // the listener's port; empty: LocalPort
	RemoteAddr string // client IP, no brackets; empty: Remote's
	RemotePort string // empty: Remote's
	LocalPort  uint16
	Remote     netip.AddrPort
	TLS        bool
	Proto      string // "HTTP/1.1", "HTTP/1.0", "HTTP/2"; empty: from the request
}

// RemoteIP returns the client IP as REMOTE_ADDR has it.
func (ci *ConnInfo) RemoteIP() string {
	if ci.RemoteAddr != "" || !ci.Remote.IsValid() {
		return ci.RemoteAddr
	}
	return ci.Remote.Addr().Unmap().WithZone("").String()
}

// appendConnVars appends SERVER_PORT, REMOTE_ADDR and REMOTE_PORT.
func appendConnVars(dst []byte, ci *ConnInfo) []byte {
	var num [20]byte
	if ci.ServerPort != "" {
		dst = AppendUwsgiString(dst, "SERVER_PORT", ci.ServerPort)
	} else {
		dst = AppendUwsgiVar(dst, []byte("SERVER_PORT"), strconv.AppendUint(num[:0], uint64(ci.LocalPort), 10))
	}
	if ci.RemoteAddr != "" || !ci.Remote.IsValid() {
		dst = AppendUwsgiString(dst, "REMOTE_ADDR", ci.RemoteAddr)
	} else {
		var ip [64]byte
		dst = AppendUwsgiVar(dst, []byte("REMOTE_ADDR"), ci.Remote.Addr().Unmap().WithZone("").AppendTo(ip[:0]))
	}
	if ci.RemotePort != "" || !ci.Remote.IsValid() {
		return AppendUwsgiString(dst, "REMOTE_PORT", ci.RemotePort)
	}
	return AppendUwsgiVar(dst, []byte("REMOTE_PORT"), strconv.AppendUint(num[:0], uint64(ci.Remote.Port()), 10))
}

// AppendEnviron appends r as a uwsgi packet holding the WSGI environ
// described by PROTOCOL.md, in its order. It fails with ErrUwsgiTooLarge
// when the packet would exceed 65535 bytes of vars.
func AppendEnviron(dst []byte, r *Request, ci *ConnInfo) ([]byte, error) {
	dst, start := BeginUwsgi(dst)
	dst = AppendUwsgiVar(dst, []byte("REQUEST_METHOD"), r.Method)
	dst = AppendUwsgiVar(dst, []byte("REQUEST_URI"), r.URI)
	dst = appendPathInfo(dst, r.Path)
	dst = AppendUwsgiVar(dst, []byte("QUERY_STRING"), r.Query)
	proto := ci.Proto
	if proto == "" {
		proto = "HTTP/1." + strconv.Itoa(r.Minor)
	}
	dst = AppendUwsgiString(dst, "SERVER_PROTOCOL", proto)
	dst = AppendUwsgiString(dst, "SCRIPT_NAME", "")
	host, _ := SplitHostPort(r.Host)
	dst = AppendUwsgiVar(dst, []byte("SERVER_NAME"), host)
	dst = appendConnVars(dst, ci)
	if ci.TLS {
		dst = AppendUwsgiString(dst, "HTTPS", "on")
		dst = AppendUwsgiString(dst, "UWSGI_SCHEME", "https")
	} else {
		dst = AppendUwsgiString(dst, "UWSGI_SCHEME", "http")
	}
	// CONTENT_TYPE, then CONTENT_LENGTH, whatever the order of the fields.
	for i, h := range r.Headers {
		if equalFold(h.Name, "content-type") {
			dst = appendJoined(dst, "CONTENT_TYPE", r.Headers, i, ", ")
			break
		}
	}
	for _, h := range r.Headers {
		if equalFold(h.Name, "content-length") {
			if r.ContentLength >= 0 {
				var num [20]byte
				dst = AppendUwsgiVar(dst, []byte("CONTENT_LENGTH"), strconv.AppendInt(num[:0], r.ContentLength, 10))
			}
			break
		}
	}
	// RFC 9110 §7.8: Upgrade is hop-by-hop, meaningful only when
	// Connection lists it, and never in HTTP/1.0; otherwise it is a stray
	// field of a plain request and is not passed on as HTTP_UPGRADE.
	// (HTTP_CONNECTION is passed on as it is.)
	connUpgrade := false
	var connArr [4][]byte // Connection values naming more fields (connectionValues)
	conns := connArr[:0]
	for _, h := range r.Headers {
		if equalFold(h.Name, "connection") {
			connUpgrade = connUpgrade || (r.Minor > 0 && HasToken(h.Value, "upgrade"))
			conns = appendNaming(conns, h.Value)
		}
	}
	for i, h := range r.Headers {
		if equalFold(h.Name, "content-type") || equalFold(h.Name, "content-length") ||
			!environSafe(h.Name) || (!connUpgrade && equalFold(h.Name, "upgrade")) ||
			requestHopByHop(h.Name, conns) {
			continue
		}
		sep := ", "
		if equalFold(h.Name, "cookie") {
			sep = "; "
		}
		dst = appendJoined(dst, "", r.Headers, i, sep)
	}
	return FinishUwsgi(dst, start)
}

// requestHopByHop reports the request fields a proxy does not forward
// (RFC 9110 §7.6.1): Keep-Alive, TE, Proxy-Connection, and those the
// Connection values conns name, except the ones the environ needs
// (Host, the body's framing, Upgrade, and Connection itself, which goes
// on as HTTP_CONNECTION as it always did) and those a proxy in front
// adds (Forwarded, X-Forwarded-*, X-Real-IP).
func requestHopByHop(name []byte, conns [][]byte) bool {
	switch {
	case equalFold(name, "keep-alive"), equalFold(name, "te"), equalFold(name, "proxy-connection"):
		return true
	case len(conns) == 0, equalFold(name, "host"), equalFold(name, "transfer-encoding"),
		equalFold(name, "upgrade"), equalFold(name, "connection"),
		// What a proxy in front adds: a client must not strip it by
		// naming it (the known hop-by-hop abuse).
		equalFold(name, "forwarded"), equalFold(name, "x-real-ip"), hasPrefixFold(name, "x-forwarded-"):
		return false
	}
	return namedIn(conns, name)
}

// environSafe reports whether a header field may become an HTTP_* var.
// Names with '_' would collide with their '-' spelling (X_Forwarded_For
// spoofing X-Forwarded-For, as nginx's underscores_in_headers guards),
// and Proxy would become HTTP_PROXY, which CGI-style apps read as their
// outgoing proxy ("httpoxy"). Both are dropped.
func environSafe(name []byte) bool {
	if equalFold(name, "proxy") {
		return false
	}
	for _, c := range name {
		if c == '_' {
			return false
		}
	}
	return true
}

// firstOf reports whether hs[i] is the first field with its name.
func firstOf(hs []Header, i int) bool {
	for j := 0; j < i; j++ {
		if sameName(hs[j].Name, hs[i].Name) {
			return false
		}
	}
	return true
}

func sameName(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// appendJoined appends the var for hs[i] joined with every later field of
// the same name, unless an earlier field had that name. An empty key means
// HTTP_ + the upper-cased name with '-' as '_'.
func appendJoined(dst []byte, key string, hs []Header, i int, sep string) []byte {
	if !firstOf(hs, i) {
		return dst
	}
	name := hs[i].Name
	if key == "" {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(5+len(name)))
		dst = append(dst, "HTTP_"...)
		for _, c := range name {
			switch {
			case c == '-':
				c = '_'
			case c >= 'a' && c <= 'z':
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
		}
	} else {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
		dst = append(dst, key...)
	}
	lenAt := len(dst)
	dst = append(dst, 0, 0)
	n := 0
	for j := i; j < len(hs); j++ {
		if j != i && !sameName(hs[j].Name, name) {
			continue
		}
		if n > 0 {
			dst = append(dst, sep...)
		}
		dst = append(dst, hs[j].Value...)
		n++
	}
	vl := len(dst) - lenAt - 2
	if vl > 0xffff {
		vl = 0xffff // FinishUwsgi fails on the total anyway
	}
	binary.LittleEndian.PutUint16(dst[lenAt:], uint16(vl))
	return dst
}

// appendPathInfo appends PATH_INFO, the percent-decoded path. Invalid
// escapes are kept as they are, and so are escapes of NUL, CR and LF
// (which the parser already refuses with ErrBadPathEscape): PATH_INFO
// never holds those bytes.
func appendPathInfo(dst []byte, path []byte) []byte {
	path = targetPath(path)
	dst = AppendUwsgiString(dst, "PATH_INFO", "")
	lenAt := len(dst) - 2
	if len(path) == 0 {
		dst = append(dst, '/') // absolute-form without a path
	}
	for k := 0; k < len(path); k++ {
		c := path[k]
		if c == '%' && k+2 < len(path) {
			hi, ok1 := unhex(path[k+1])
			lo, ok2 := unhex(path[k+2])
			if ok1 && ok2 && !isControlEscape(hi<<4|lo) {
				dst = append(dst, hi<<4|lo)
				k += 2
				continue
			}
		}
		dst = append(dst, c)
	}
	binary.LittleEndian.PutUint16(dst[lenAt:], uint16(len(dst)-lenAt-2))
	return dst
}

// SplitHostPort splits a Host header value into host and port; the port
// is empty when absent. IPv6 literals keep their brackets.
func SplitHostPort(h []byte) (host, port []byte) {
	for i := len(h) - 1; i >= 0; i-- {
		switch h[i] {
		case ':':
			return h[:i], h[i+1:]
		case ']':
			return h, nil
		}
	}
	return h, nil
}
