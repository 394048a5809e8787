package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxNodeLen is the longest ZeroMQ identity, in bytes.
const maxNodeLen = 255

// parseString accepts any (non-empty) value as is.
func parseString(s string) (string, error) { return s, nil }

// parseInt parses a decimal integer.
func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	return n, nil
}

// parseBool accepts true/false, yes/no, on/off and 1/0 in any case.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true/false, yes/no, on/off, 1/0)", s)
}

// parseDuration accepts seconds ("3", "0.5") or a Go duration ("500ms").
// Negative durations are rejected.
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f >= 0 && f <= float64(maxDuration/time.Second) { // false for NaN
			return time.Duration(math.Round(f * float64(time.Second))), nil
		}
		return 0, fmt.Errorf("%q is negative or more than a year", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf(`%q is not a duration (seconds such as "3" or "0.5", or "500ms")`, s)
	}
	if d > maxDuration {
		return 0, fmt.Errorf("%q is more than a year", s)
	}
	return d, nil
}

// maxDuration bounds every duration key: deadlines are computed as
// now + duration in int64 nanoseconds, which a few hundred years would
// overflow (every request then timing out at once).
const maxDuration = 365 * 24 * time.Hour

// parseSize parses a byte count with an optional k, m or g suffix
// (1024-based, either case).
func parseSize(s string) (int64, error) {
	num, shift := s, 0
	if i := strings.IndexAny(s, "kKmMgG"); i >= 0 && i == len(s)-1 {
		num, shift = s[:i], 10*(1+strings.IndexByte("kmg", s[i]|0x20))
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%q is not a size (bytes, optionally with a k, m or g suffix)", s)
	}
	if err != nil || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(n) << shift, nil
}

// parseSizeInt is parseSize for int fields.
func parseSizeInt(s string) (int, error) {
	n, err := parseSize(s)
	if err == nil && n > math.MaxInt {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int(n), err
}

// oneOf returns a parser accepting one of allowed, in any case, and
// returning it lower-cased.
func oneOf(allowed ...string) func(string) (string, error) {
	return func(s string) (string, error) {
		if l := strings.ToLower(s); slices.Contains(allowed, l) {
			return l, nil
		}
		return "", fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
	}
}

// parseTokenList parses a comma separated list of HTTP tokens (RFC 9110,
// section 5.6.2), dropping empty items.
func parseTokenList(s string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		if strings.ContainsFunc(item, func(r rune) bool { return !isAlnum(r) && !strings.ContainsRune("!#$%&'*+-.^_`|~", r) }) {
			return nil, fmt.Errorf("%q is not a valid token", item)
		}
		out = append(out, item)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q is an empty list", s)
	}
	return out, nil
}

// isAlnum reports whether r is an ASCII letter or digit.
func isAlnum(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}

// isHostname reports whether s is a plausible DNS name or IPv4 address:
// dot separated, non-empty labels of letters, digits, '-' and '_'.
func isHostname(s string) bool {
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.ContainsFunc(label, func(r rune) bool { return !isAlnum(r) && r != '-' && r != '_' }) {
			return false
		}
	}
	return len(s) <= 253
}

// validPort reports whether s is a decimal port from 1 to 65535.
func validPort(s string) bool {
	n, err := strconv.ParseUint(s, 10, 16)
	return err == nil && n > 0
}

// parseBind checks a listen address and returns it as host:port. Besides
// "host:port" and "[ipv6]:port" it accepts, as the original did, a bare
// IPv6 address followed by ":port" (split at the last colon), which it
// brackets.
func parseBind(s string) (string, error) {
	bracketed := strings.HasPrefix(s, "[")
	host, port, err := net.SplitHostPort(s)
	if i := strings.LastIndexByte(s, ':'); err != nil && !bracketed && i >= 0 {
		host, port, err = s[:i], s[i+1:], nil
	}
	if err != nil {
		return "", fmt.Errorf("%q is not address:port", s)
	}
	a, aerr := netip.ParseAddr(host)
	switch {
	case bracketed && (aerr != nil || !a.Is6()), !bracketed && aerr != nil && host != "" && !isHostname(host):
		return "", fmt.Errorf("%q: %q is not an address or host name", s, host)
	case !validPort(port):
		return "", fmt.Errorf("%q: %q is not a port (1-65535)", s, port)
	}
	n, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// parseEndpoint checks a ZeroMQ endpoint: tcp://HOST:PORT (PORT may be
// "*"), ipc://PATH or inproc://NAME.
func parseEndpoint(s string) (string, error) {
	scheme, addr, _ := strings.Cut(s, "://")
	ok := addr != "" && !strings.ContainsFunc(addr, unicode.IsSpace)
	switch i := strings.LastIndexByte(addr, ':'); scheme {
	case "tcp":
		ok = ok && i > 0 && (addr[i+1:] == "*" || validPort(addr[i+1:]))
	case "ipc", "inproc":
	default:
		ok = false
	}
	if !ok {
		return "", fmt.Errorf("%q is not tcp://HOST:PORT, ipc://PATH or inproc://NAME", s)
	}
	return s, nil
}

// parseVHostName checks the NAME of a [blastbeat:NAME] section and
// returns it lower-cased: "*", "host", "host:port", "[ipv6]" or
// "[ipv6]:port".
func parseVHostName(s string) (string, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	host, port, err := net.SplitHostPort(name)
	if err != nil { // no port, or malformed
		host, port = name, "80"
		if len(name) > 2 && name[0] == '[' && name[len(name)-1] == ']' {
			host = name[1 : len(name)-1]
		}
	}
	a, aerr := netip.ParseAddr(host)
	bracketed := strings.HasPrefix(name, "[")
	ipv6 := bracketed && aerr == nil && a.Is6() && a.Zone() == ""
	if name != "*" && (!validPort(port) || !ipv6 && (bracketed || !isHostname(host))) {
		return "", fmt.Errorf("virtual host %q is not HOST, HOST:PORT, [IPV6], [IPV6]:PORT or *", s)
	}
	if name != "*" && name != host && !bracketed || bracketed && name != "["+host+"]" {
		// A port as Host sends it: 08080 never matched Host: x:8080.
		n, _ := strconv.Atoi(port)
		name = net.JoinHostPort(host, strconv.Itoa(n))
	}
	return name, nil
}

// parseNode checks a backend node identity: 1 to 255 bytes of UTF-8
// (it is a label of the metrics, which Prometheus wants in UTF-8).
func parseNode(s string) (string, error) {
	if s == "" || len(s) > maxNodeLen {
		return "", fmt.Errorf("node name must be 1 to %d bytes, got %d", maxNodeLen, len(s))
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("node name %q is not UTF-8", s)
	}
	return s, nil
}

// parseAccessLog parses access-log: "off" (stored as ""), "stderr",
// "stdout" (a container's log), or a file path.
func parseAccessLog(s string) (string, error) {
	switch strings.ToLower(s) {
	case "":
		return "", errors.New("want off, stderr, stdout or a file path")
	case "off":
		return "", nil
	case "stderr", "stdout":
		// Any case: "Off" or "STDERR" made a file of that name, in the
		// folder the proxy runs in.
		return strings.ToLower(s), nil
	}
	return s, nil
}
