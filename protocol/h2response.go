package protocol

import (
	"bytes"
	"strconv"

	"golang.org/x/net/http2/hpack"
)

// h2response.go turns a node's HTTP/1-style response head into an HTTP/2
// field block (RFC 9113 §8.3.2), HPACK-encoded (RFC 7541).

// ErrH2Response101 refuses a 101 Switching Protocols head for an HTTP/2
// client: HTTP/2 has no 101 (RFC 9113 §8.6). The server answers 502 on the
// stream, as for any other bad response.
var ErrH2Response101 = &Error{502, "101 Switching Protocols from backend on HTTP/2", "h2_response_101"}

// H2ResponseHead is what the HTTP/2 framing of a response needs to know of
// its head.
type H2ResponseHead struct {
	Status  int
	HeadLen int // bytes of raw that were the head; raw[HeadLen:] is body
	// Interim is set for a 1xx head (100, 103): it goes out as HEADERS
	// without END_STREAM and the final head follows.
	Interim bool
	// HasBody reports whether DATA follows a final head. When it is
	// false the HEADERS frame carries END_STREAM: no body for this status
	// or method (ResponseHead.NoBody), or content-length 0.
	HasBody       bool
	ContentLength int64 // -1 when absent (and for an interim head)
	// Chunked is set when the node framed the body with chunked coding:
	// the server sends each chunk's data as DATA, without chunk framing.
	Chunked bool
}

// EncodeH2ResponseHead HPACK-encodes the node's raw response head (as
// ParseResponseHead accepts it, lines ending in CRLF or LF) with enc, into
// the writer enc was made with: ":status", then every field in order with
// its name lower-cased (RFC 9113 §8.2.1) and its value trimmed, then
// "date: " date when date is non-nil and the head has no date field (as
// RewriteResponseHead does, RFC 9110 §6.6.1). Left out are the
// connection-specific fields (RFC 9113 §8.2.2: connection, keep-alive,
// proxy-connection, transfer-encoding, upgrade), te (meaningful only in a
// request), every field that a connection field names (RFC 9110 §7.6.1),
// and content-length in a 1xx or 204 response (RFC 9110 §8.6: MUST NOT).
// head is set when the request's method was HEAD.
//
// raw is checked first (ParseResponseHead; ErrBadResponse), and a 101 is
// refused (ErrH2Response101): on an error nothing has been encoded and enc's
// dynamic table is as it was. Otherwise the block is written and enc's
// dynamic table has changed, so the caller MUST send the block, in order
// with the connection's other field blocks (RFC 9113 §4.3). Bytes of raw
// after the head are not read.
//
// Names are lower-cased into a stack buffer, and the common ones map to
// constant strings; every other name and every value is a new string
// (EncodeH2ResponseHeadWith: one from a StringCache), which enc may keep
// in its dynamic table. enc is owned by the connection's event loop.
func EncodeH2ResponseHead(enc *hpack.Encoder, raw []byte, head bool, date []byte) (H2ResponseHead, error) {
	return EncodeH2ResponseHeadWith(enc, nil, raw, head, date)
}

// EncodeH2ResponseHeadWith is EncodeH2ResponseHead with the field values
// (and names that are not among the common ones) made into strings by
// strs, so that values repeated from response to response are not
// allocated again; a nil strs allocates each.
func EncodeH2ResponseHeadWith(enc *hpack.Encoder, strs *StringCache, raw []byte, head bool, date []byte) (H2ResponseHead, error) {
	raw, shift := H2StatusLineAsHTTP11(raw)
	out, err := encodeH2ResponseHead(enc, strs, raw, head, date)
	out.HeadLen -= shift
	return out, err
}

// H2StatusLineAsHTTP11 reads a response head whose status line says
// "HTTP/2" or "HTTP/2.0" as "HTTP/1.1": nodes written for the original
// put the environ's SERVER_PROTOCOL in their status line, and "HTTP/2
// 200 OK" is an HTTP/2 stream's "HTTP/1.1 200 OK" (the version is not
// sent on HTTP/2). It returns raw itself for any other status line, or a
// copy of the head alone (up to its blank line: the body bytes after it
// stay where they are) with the version rewritten, and shift, how many
// bytes longer the copy's head is than raw's: an offset into the copy's
// head less shift is the same place in raw.
func H2StatusLineAsHTTP11(raw []byte) (out []byte, shift int) {
	var version string
	switch {
	case bytes.HasPrefix(raw, []byte("HTTP/2 ")):
		version = "HTTP/2"
	case bytes.HasPrefix(raw, []byte("HTTP/2.0 ")):
		version = "HTTP/2.0"
	default:
		return raw, 0
	}
	head := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		head = raw[:i+4]
	}
	out = append(append(make([]byte, 0, len(head)+2), "HTTP/1.1"...), head[len(version):]...)
	return out, len("HTTP/1.1") - len(version)
}

func encodeH2ResponseHead(enc *hpack.Encoder, strs *StringCache, raw []byte, head bool, date []byte) (H2ResponseHead, error) {
	h, n, err := ParseResponseHead(raw)
	if err != nil {
		return H2ResponseHead{}, err
	}
	if h.Upgrade {
		return H2ResponseHead{}, ErrH2Response101
	}
	out := H2ResponseHead{Status: h.Status, HeadLen: n, ContentLength: h.ContentLength, Chunked: h.Chunked}
	noLength := h.Status < 200 || h.Status == 204
	if h.Status < 200 {
		out.Interim, out.ContentLength, out.Chunked = true, -1, false
	}
	out.HasBody = !h.NoBody(head) && h.ContentLength != 0
	raw = raw[:n]

	// The values of the connection fields, whose tokens name more fields
	// to leave out. Room for a few on the stack; more are rare.
	var connArr [4][]byte
	conns := connArr[:0]
	_, rest := nextLine(raw) // the status line
	for {
		var line []byte
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		c := bytes.IndexByte(line, ':')
		if equalFold(line[:c], "connection") {
			conns = append(conns, line[c+1:])
		}
	}

	if err := enc.WriteField(hpack.HeaderField{Name: ":status", Value: h2StatusValue(h.Status)}); err != nil {
		return out, err
	}
	var nameBuf [64]byte
	sawDate, sawLength := false, false
	_, rest = nextLine(raw)
	for {
		var line []byte
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		c := bytes.IndexByte(line, ':')
		name, val := line[:c], trimOWS(line[c+1:])
		switch {
		case h2HopByHop(name), namedIn(conns, name):
			continue
		case equalFold(name, "content-length"):
			if noLength || sawLength {
				// A repeat is the same value (ParseResponseHead): nghttp2
				// refuses a second content-length; one is sent (RFC 9110
				// §8.6).
				continue
			}
			sawLength = true
		case equalFold(name, "date"):
			sawDate = true
		}
		f := hpack.HeaderField{Name: h2FieldName(&nameBuf, strs, name), Value: strs.String(val)}
		if err := enc.WriteField(f); err != nil {
			return out, err
		}
	}
	if date != nil && !sawDate {
		if err := enc.WriteField(hpack.HeaderField{Name: "date", Value: strs.String(date)}); err != nil {
			return out, err
		}
	}
	return out, nil
}

// h2HopByHop reports the fields that HTTP/2 does not carry in a response:
// RFC 9113 §8.2.2's connection-specific ones, and te.
func h2HopByHop(name []byte) bool {
	return equalFold(name, "connection") || equalFold(name, "keep-alive") ||
		equalFold(name, "proxy-connection") || equalFold(name, "transfer-encoding") ||
		equalFold(name, "upgrade") || equalFold(name, "te")
}

// namedIn reports whether one of the connection field values conns lists
// name (RFC 9110 §7.6.1: those fields are hop-by-hop too).
func namedIn(conns [][]byte, name []byte) bool {
	found := false
	for _, v := range conns {
		eachToken(v, func(tok []byte) {
			if sameName(tok, name) {
				found = true
			}
		})
	}
	return found
}

// h2FieldName returns name lower-cased as a string: a constant for the
// common response fields (no allocation), else strs's string.
func h2FieldName(buf *[64]byte, strs *StringCache, name []byte) string {
	low := buf[:0]
	if len(name) > len(buf) {
		low = make([]byte, 0, len(name))
	}
	for _, c := range name {
		low = append(low, lower(c))
	}
	switch string(low) {
	case "accept-ranges":
		return "accept-ranges"
	case "access-control-allow-origin":
		return "access-control-allow-origin"
	case "age":
		return "age"
	case "alt-svc":
		return "alt-svc"
	case "cache-control":
		return "cache-control"
	case "content-disposition":
		return "content-disposition"
	case "content-encoding":
		return "content-encoding"
	case "content-language":
		return "content-language"
	case "content-length":
		return "content-length"
	case "content-location":
		return "content-location"
	case "content-range":
		return "content-range"
	case "content-security-policy":
		return "content-security-policy"
	case "content-type":
		return "content-type"
	case "date":
		return "date"
	case "etag":
		return "etag"
	case "expires":
		return "expires"
	case "last-modified":
		return "last-modified"
	case "link":
		return "link"
	case "location":
		return "location"
	case "referrer-policy":
		return "referrer-policy"
	case "retry-after":
		return "retry-after"
	case "server":
		return "server"
	case "set-cookie":
		return "set-cookie"
	case "strict-transport-security":
		return "strict-transport-security"
	case "vary":
		return "vary"
	case "via":
		return "via"
	case "www-authenticate":
		return "www-authenticate"
	case "x-content-type-options":
		return "x-content-type-options"
	case "x-frame-options":
		return "x-frame-options"
	}
	return strs.String(low)
}

// h2StatusValue returns the :status value: a constant for the common
// codes (no allocation), else a new string.
func h2StatusValue(code int) string {
	switch code {
	case 100:
		return "100"
	case 103:
		return "103"
	case 200:
		return "200"
	case 201:
		return "201"
	case 204:
		return "204"
	case 206:
		return "206"
	case 301:
		return "301"
	case 302:
		return "302"
	case 303:
		return "303"
	case 304:
		return "304"
	case 307:
		return "307"
	case 308:
		return "308"
	case 400:
		return "400"
	case 401:
		return "401"
	case 403:
		return "403"
	case 404:
		return "404"
	case 500:
		return "500"
	case 502:
		return "502"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	return strconv.Itoa(code)
}
