package main

import (
	"encoding/binary"
	"errors"
)

// uwsgiHeaderSize is the fixed uwsgi packet header: modifier1 (u8),
// datasize (u16 LE), modifier2 (u8).
const uwsgiHeaderSize = 4

var (
	errUwsgiShort    = errors.New("uwsgi: packet shorter than its header")
	errUwsgiSize     = errors.New("uwsgi: datasize does not match the packet")
	errUwsgiTruncVar = errors.New("uwsgi: truncated var")
)

// forEachVar calls fn for every key/value var of a uwsgi packet (PROTOCOL.md,
// "The uwsgi packet"). key and val alias pkt and are valid only during the
// call. It returns an error for a malformed packet; fn may have been called
// for the vars before the fault.
func forEachVar(pkt []byte, fn func(key, val []byte)) error {
	if len(pkt) < uwsgiHeaderSize {
		return errUwsgiShort
	}
	size := int(binary.LittleEndian.Uint16(pkt[1:3]))
	vars := pkt[uwsgiHeaderSize:]
	if size != len(vars) {
		return errUwsgiSize
	}
	for len(vars) > 0 {
		if len(vars) < 2 {
			return errUwsgiTruncVar
		}
		kl := int(binary.LittleEndian.Uint16(vars))
		vars = vars[2:]
		if len(vars) < kl+2 {
			return errUwsgiTruncVar
		}
		key := vars[:kl]
		vars = vars[kl:]
		vl := int(binary.LittleEndian.Uint16(vars))
		vars = vars[2:]
		if len(vars) < vl {
			return errUwsgiTruncVar
		}
		fn(key, vars[:vl])
		vars = vars[vl:]
	}
	return nil
}

// request is what the bench node needs from a request head.
type request struct {
	path          string // PATH_INFO; one of the known routes or "" (other)
	contentLength int64  // CONTENT_LENGTH, -1 when absent or invalid
	websocket     bool   // HTTP_UPGRADE says websocket
}

// routes are the paths the node answers; interned so that parsing a request
// allocates nothing.
var routes = [...]string{"/", "/post", "/stream", "/ws"}

// parseRequest reads PATH_INFO, CONTENT_LENGTH and HTTP_UPGRADE from a uwsgi
// packet.
func parseRequest(pkt []byte) (request, error) {
	r := request{contentLength: -1}
	err := forEachVar(pkt, func(key, val []byte) {
		switch string(key) {
		case "PATH_INFO":
			for _, p := range routes {
				if string(val) == p {
					r.path = p
				}
			}
		case "CONTENT_LENGTH":
			r.contentLength = parseDecimal(val)
		case "HTTP_UPGRADE":
			r.websocket = asciiEqualFold(val, "websocket")
		}
	})
	return r, err
}

// parseDecimal parses a non-negative decimal; -1 when b is empty, not all
// digits, or too long to be a sane body length.
func parseDecimal(b []byte) int64 {
	if len(b) == 0 || len(b) > 18 {
		return -1
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
