package main

import (
	"bytes"
	"errors"
)

var errRequest = errors.New("mongrel2: malformed request message")

// request is one message from Mongrel2:
// "SENDER CONN_ID PATH HEADERS_TNETSTRING BODY_TNETSTRING".
// All slices alias the message.
type request struct {
	sender, connID, path []byte
	method               []byte // the METHOD header (GET, POST, JSON, WEBSOCKET_HANDSHAKE, WEBSOCKET…)
	flags                []byte // the FLAGS header of a WEBSOCKET message (hex)
	body                 []byte
}

// parseRequest parses a Mongrel2 request in the tnetstring protocol (the
// handler's protocol='tnetstring'): the headers are a tnetstring dict.
func parseRequest(msg []byte) (request, error) {
	var r request
	var ok bool
	if r.sender, msg, ok = bytes.Cut(msg, []byte{' '}); !ok {
		return r, errRequest
	}
	if r.connID, msg, ok = bytes.Cut(msg, []byte{' '}); !ok {
		return r, errRequest
	}
	if r.path, msg, ok = bytes.Cut(msg, []byte{' '}); !ok {
		return r, errRequest
	}
	hdrs, tag, rest, err := parseTnet(msg)
	if err != nil || tag != tnDict {
		return r, errRequest
	}
	err = forEachDictString(hdrs, func(k, v []byte) {
		switch string(k) {
		case "METHOD":
			r.method = v
		case "FLAGS":
			r.flags = v
		}
	})
	if err != nil {
		return r, errRequest
	}
	body, tag, _, err := parseTnet(rest)
	if err != nil || tag != tnString {
		return r, errRequest
	}
	r.body = body
	return r, nil
}

// appendReply appends a reply to Mongrel2 for one connection:
// "SENDER LEN:CONN_ID, DATA". An empty data closes the connection.
func appendReply(dst, sender, connID, data []byte) []byte {
	dst = append(dst, sender...)
	dst = append(dst, ' ')
	dst = appendTnetString(dst, connID)
	dst = append(dst, ' ')
	return append(dst, data...)
}

// parseHexFlags parses the FLAGS header of a WebSocket frame ("0x81").
func parseHexFlags(b []byte) (byte, bool) {
	b = bytes.TrimPrefix(b, []byte("0x"))
	if len(b) == 0 || len(b) > 2 {
		return 0, false
	}
	var v byte
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | (c - '0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// appendWSFrame appends an unmasked server frame (RFC 6455 §5.2).
func appendWSFrame(dst []byte, finOpcode byte, p []byte) []byte {
	dst = append(dst, finOpcode)
	switch n := len(p); {
	case n < 126:
		dst = append(dst, byte(n))
	case n < 1<<16:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		for s := 56; s >= 0; s -= 8 {
			dst = append(dst, byte(uint64(n)>>uint(s)))
		}
	}
	return append(dst, p...)
}
