package protocol

// tcharTable marks RFC 9110 §5.6.2 token characters.
var tcharTable = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isTchar(c byte) bool { return tcharTable[c] }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold compares b with the lower-case ASCII string s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

func hasPrefixFold(b []byte, s string) bool {
	return len(b) >= len(s) && equalFold(b[:len(s)], s)
}

// eachToken calls fn for every comma-separated, trimmed, non-empty element.
func eachToken(v []byte, fn func([]byte)) {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		tok := trimOWS(v[:i])
		if len(tok) > 0 {
			fn(tok)
		}
		if i == len(v) {
			return
		}
		v = v[i+1:]
	}
}

// HasToken reports whether the comma-separated list v holds tok
// (lower-case ASCII), ignoring case.
func HasToken(v []byte, tok string) bool {
	found := false
	eachToken(v, func(t []byte) {
		if equalFold(t, tok) {
			found = true
		}
	})
	return found
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// EqualFold compares b with the lower-case ASCII string s, ignoring case
// (field names: EqualFold(h.Name, "user-agent")).
func EqualFold(b []byte, s string) bool { return equalFold(b, s) }
