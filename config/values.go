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
		ns := math.Round(f * float64(time.Second))
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0):
			return 0, fmt.Errorf("%q is not a duration", s)
		case f < 0:
			return 0, fmt.Errorf("%q is negative", s)
		case ns >= math.MaxInt64:
			return 0, fmt.Errorf("%q is too large", s)
		}
		return time.Duration(ns), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(`%q is not a duration (seconds such as "3" or "0.5", or "500ms")`, s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// parseSize parses a byte count with an optional k, m or g suffix
// (1024-based, either case).
func parseSize(s string) (int64, error) {
	num, shift := s, 0
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		}
	}
	if shift > 0 {
		num = s[:len(s)-1]
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return 0, fmt.Errorf("%q is not a size (bytes, optionally with a k, m or g suffix)", s)
	}
	if n > math.MaxInt64>>shift {
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

// parseTokenList parses a comma separated list of HTTP tokens, dropping
// empty items.
func parseTokenList(s string) ([]string, error) {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !isToken(item) {
			return nil, fmt.Errorf("%q is not a valid token", item)
		}
		out = append(out, item)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q is an empty list", s)
	}
	return out, nil
}

// isToken reports whether s is an HTTP token (RFC 9110, section 5.6.2).
func isToken(s string) bool {
	for _, c := range []byte(s) {
		if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return s != ""
}

// isAlnum reports whether c is an ASCII letter or digit.
func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// isHostname reports whether s is a plausible DNS name or IPv4 address:
// dot separated, non-empty labels of letters, digits, '-' and '_'.
func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" {
			return false
		}
		for _, c := range []byte(label) {
			if !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// validPort reports whether s is a decimal port from 1 to 65535.
func validPort(s string) bool {
	n, err := strconv.ParseUint(s, 10, 16)
	return err == nil && n > 0
}

// parseBind checks a listen address and returns it as host:port. Besides
// "host:port" and "[ipv6]:port" it accepts a bare IPv6 address followed by
// ":port" (split at the last colon), which it brackets.
func parseBind(s string) (string, error) {
	var host, port string
	if strings.HasPrefix(s, "[") {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", fmt.Errorf("%q is not [address]:port", s)
		}
		if a, err := netip.ParseAddr(h); err != nil || !a.Is6() {
			return "", fmt.Errorf("%q: %q is not an IPv6 address", s, h)
		}
		host, port = h, p
	} else {
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			return "", fmt.Errorf("%q is not address:port", s)
		}
		host, port = s[:i], s[i+1:]
		if _, err := netip.ParseAddr(host); err != nil && host != "" && !isHostname(host) {
			return "", fmt.Errorf("%q: %q is not an address or host name", s, host)
		}
	}
	if !validPort(port) {
		return "", fmt.Errorf("%q: %q is not a port (1-65535)", s, port)
	}
	n, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// parseEndpoint checks a ZeroMQ endpoint: tcp://HOST:PORT (PORT may be
// "*"), ipc://PATH or inproc://NAME.
func parseEndpoint(s string) (string, error) {
	for _, scheme := range []string{"tcp://", "ipc://", "inproc://"} {
		rest, ok := strings.CutPrefix(s, scheme)
		if !ok {
			continue
		}
		if rest == "" || strings.ContainsFunc(rest, unicode.IsSpace) {
			return "", fmt.Errorf("%q has an empty or malformed address", s)
		}
		if scheme == "tcp://" {
			i := strings.LastIndexByte(rest, ':')
			if i <= 0 || (rest[i+1:] != "*" && !validPort(rest[i+1:])) {
				return "", fmt.Errorf("%q is not tcp://HOST:PORT", s)
			}
		}
		return s, nil
	}
	return "", fmt.Errorf("%q does not start with tcp://, ipc:// or inproc://", s)
}

// parseVHostName checks the NAME of a [blastbeat:NAME] section and
// returns it lower-cased: "*", "host", "host:port", "[ipv6]" or
// "[ipv6]:port".
func parseVHostName(s string) (string, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	if name == "*" {
		return name, nil
	}
	host, port, hasPort := name, "", false
	if strings.HasPrefix(name, "[") {
		end := strings.IndexByte(name, ']')
		if end < 0 {
			return "", fmt.Errorf("virtual host %q: missing ']'", s)
		}
		if a, err := netip.ParseAddr(name[1:end]); err != nil || !a.Is6() || a.Zone() != "" {
			return "", fmt.Errorf("virtual host %q: not an IPv6 address", s)
		}
		rest := name[end+1:]
		port, hasPort = strings.CutPrefix(rest, ":")
		if rest != "" && !hasPort {
			return "", fmt.Errorf("virtual host %q: unexpected %q", s, rest)
		}
	} else {
		host, port, hasPort = strings.Cut(name, ":")
		if !isHostname(host) {
			return "", fmt.Errorf("virtual host %q: %q is not a host name", s, host)
		}
	}
	if hasPort && !validPort(port) {
		return "", fmt.Errorf("virtual host %q: %q is not a port (1-65535)", s, port)
	}
	return name, nil
}

// checkNode checks a backend node identity: 1 to 255 bytes.
func checkNode(s string) error {
	if s == "" || len(s) > maxNodeLen {
		return fmt.Errorf("node name must be 1 to %d bytes, got %d", maxNodeLen, len(s))
	}
	return nil
}
