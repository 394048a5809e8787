package protocol

import (
	"bytes"
	"strconv"
	"time"
)

// maxResponseHeadBytes bounds a backend's response head (as large as a
// uwsgi packet can carry).
const maxResponseHeadBytes = 64 << 10

// ResponseHead is what the proxy needs to know of a backend's response
// head to frame it for the client.
type ResponseHead struct {
	Status        int
	ContentLength int64 // -1 when absent
	Chunked       bool  // Transfer-Encoding: chunked
	Close         bool  // the backend asked for Connection: close
	Upgrade       bool  // 101 Switching Protocols
}

// NoBody reports whether a response with this status to a request with
// this method carries no body (RFC 9110 §6.4.1).
func (h *ResponseHead) NoBody(head bool) bool {
	return head || (h.Status >= 100 && h.Status < 200) || h.Status == 204 || h.Status == 304
}

// RewriteResponseHead appends to dst the head the client gets for the
// backend's raw head: an HTTP/1.1 status line, the backend's fields minus
// hop-by-hop ones (and minus Transfer-Encoding when dechunk is set), then
// Date: date when date is non-nil and the head has no Date field, then
// Connection: close when closeConn is set, or Connection: keep-alive when
// keepAlive10 is set, and the empty line. It reads raw up to its first
// empty line; bytes after it (the start of the body) are not touched.
//
// date is an IMF-fixdate (AppendHTTPDate) that the caller formats once a
// second and reuses: RFC 9110 §6.6.1 has a proxy with a clock add the Date
// that an origin left out. nil adds none. Nothing is allocated beyond
// dst's growth.
//
// raw is not checked again: it must be a head that ParseResponseHead
// accepted (a malformed one may panic). The decision of closeConn depends
// on the head itself, so callers use ParseResponseHead first and then this
// to write.
func RewriteResponseHead(dst, raw []byte, dechunk, closeConn, keepAlive10 bool, date []byte) []byte {
	line, raw := nextLine(raw)
	dst = append(dst, "HTTP/1.1"...)
	dst = append(dst, line[len("HTTP/1.x"):]...)
	if len(line) == len("HTTP/1.x 200") {
		dst = append(dst, ' ') // status-code SP [reason-phrase] (RFC 9112 §4)
	}
	dst = append(dst, '\r', '\n')
	// 1xx and 204 carry no framing fields (RFC 9110 §8.6, RFC 9112 §6.1).
	noLength := line[9] == '1' || string(line[9:12]) == "204"
	var connArr [4][]byte // room for a few on the stack; more are rare
	conns := connectionValues(raw, connArr[:0])
	sawDate, sawLength := false, false
	for {
		line, raw = nextLine(raw)
		if len(line) == 0 {
			break
		}
		c := bytes.IndexByte(line, ':')
		name := line[:c]
		switch {
		case equalFold(name, "connection"), equalFold(name, "keep-alive"),
			equalFold(name, "proxy-connection"):
			continue
		case (dechunk || noLength) && equalFold(name, "transfer-encoding"):
			continue
		case equalFold(name, "content-length"):
			if noLength || sawLength {
				// A repeat is the same value (ParseResponseHead): one
				// field is sent (RFC 9110 §8.6).
				continue
			}
			sawLength = true
		case len(conns) > 0 && !equalFold(name, "upgrade") && !equalFold(name, "transfer-encoding") &&
			namedIn(conns, name):
			// Hop-by-hop: named by Connection (RFC 9110 §7.6.1); never the
			// framing the proxy writes by (Content-Length was seen above).
			continue
		case equalFold(name, "date"):
			sawDate = true
		}
		dst = append(dst, line...)
		dst = append(dst, '\r', '\n')
	}
	if date != nil && !sawDate {
		dst = append(dst, "Date: "...)
		dst = append(dst, date...)
		dst = append(dst, '\r', '\n')
	}
	if closeConn {
		dst = append(dst, "Connection: close\r\n"...)
	} else if keepAlive10 {
		dst = append(dst, "Connection: keep-alive\r\n"...)
	}
	return append(dst, '\r', '\n')
}

// connectionValues appends to conns the values of the Connection fields
// of fields (a head's field lines, up to its empty line) that name more
// than close, keep-alive and upgrade: the other fields they name are
// hop-by-hop.
func connectionValues(fields []byte, conns [][]byte) [][]byte {
	for {
		var line []byte
		line, fields = nextLine(fields)
		if len(line) == 0 {
			return conns
		}
		c := bytes.IndexByte(line, ':')
		if c < 0 || !equalFold(line[:c], "connection") {
			continue
		}
		conns = appendNaming(conns, line[c+1:])
	}
}

// appendNaming appends the Connection field value v to conns when it
// names more than close, keep-alive and upgrade.
func appendNaming(conns [][]byte, v []byte) [][]byte {
	named := false
	eachToken(v, func(tok []byte) {
		if !equalFold(tok, "close") && !equalFold(tok, "keep-alive") && !equalFold(tok, "upgrade") {
			named = true
		}
	})
	if named {
		conns = append(conns, v)
	}
	return conns
}

// nextLine splits off one line ending in CRLF or LF (without the ending).
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// ParseResponseHead validates a backend's raw response head. It returns
// the head, the length of the head in raw (up to and including the empty
// line; later bytes are body), and ErrBadResponse when it is malformed:
// no status line, a status outside 100..599, a bad field, both
// Content-Length and Transfer-Encoding, an unknown transfer coding, a
// Content-Length list or two differing Content-Length fields, or no
// terminating empty line within maxResponseHeadBytes. Leniently, lines may
// end in LF, and a frame that ends right after a field's line end is a
// whole head.
func ParseResponseHead(raw []byte) (ResponseHead, int, error) {
	h := ResponseHead{ContentLength: -1}
	truncated := len(raw) > maxResponseHeadBytes
	if truncated {
		raw = raw[:maxResponseHeadBytes]
	}
	line, rest := nextLine(raw)
	if rest == nil || len(line) < 12 || string(line[:7]) != "HTTP/1." ||
		(line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return h, 0, ErrBadResponse
	}
	code := 0
	for _, c := range line[9:12] {
		if !isDigit(c) {
			return h, 0, ErrBadResponse
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || code > 599 || !validFieldValue(line[9:]) {
		return h, 0, ErrBadResponse
	}
	h.Status = code
	h.Upgrade = code == 101
	sawTE := false
	var clVal []byte
	for {
		if rest == nil {
			return h, 0, ErrBadResponse // no empty line
		}
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			return h, 0, ErrBadResponse
		}
		name, val := line[:c], trimOWS(line[c+1:])
		for _, b := range name {
			if !isTchar(b) {
				return h, 0, ErrBadResponse
			}
		}
		if !validFieldValue(val) {
			return h, 0, ErrBadResponse
		}
		switch {
		case equalFold(name, "content-length"):
			// The field is forwarded as it is, so it must be one number
			// that every client reads alike (RFC 9110 §8.6): no list, and
			// a repeated field repeats it byte for byte.
			n, ok := parseContentLength(val)
			if !ok || bytes.IndexByte(val, ',') >= 0 ||
				(clVal != nil && !bytes.Equal(val, clVal)) {
				return h, 0, ErrBadResponse
			}
			h.ContentLength, clVal = n, val
		case equalFold(name, "transfer-encoding"):
			if sawTE || !equalFold(val, "chunked") {
				return h, 0, ErrBadResponse
			}
			sawTE = true
			h.Chunked = true
		case equalFold(name, "connection"):
			if HasToken(val, "close") {
				h.Close = true
			}
		}
	}
	if sawTE && h.ContentLength >= 0 {
		return h, 0, ErrBadResponse
	}
	n := len(raw) - len(rest)
	if rest == nil {
		// The frame ended right after the last field's line end: the whole
		// frame is the head (RewriteResponseHead adds the empty line). A
		// frame cut at maxResponseHeadBytes is not that.
		if truncated {
			return h, 0, ErrBadResponse
		}
		n = len(raw)
	}
	return h, n, nil
}

func validFieldValue(v []byte) bool {
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// UwsgiResponseToHead converts a backend's `uwsgi` response (var Status,
// then one var per header field) into a raw HTTP/1.1 head appended to dst.
// A var that would not stay one line (a value with a control byte other
// than HTAB, a name that is not a token) is refused with ErrBadResponse;
// the status and framing are checked by ParseResponseHead on the result.
func UwsgiResponseToHead(dst, pkt []byte) ([]byte, error) {
	start := len(dst)
	status := false
	bad := false
	err := RangeUwsgi(pkt, func(k, v []byte) bool {
		// Each var is one line of the head: a CR, LF or other control
		// byte in it, or a name that is not a token, would inject fields.
		if !validFieldValue(v) {
			bad = true
			return false
		}
		if !status {
			if !equalFold(k, "status") {
				return false
			}
			dst = append(dst, "HTTP/1.1 "...)
			dst = append(dst, v...)
			dst = append(dst, '\r', '\n')
			status = true
			return true
		}
		if len(k) == 0 {
			bad = true
			return false
		}
		for _, c := range k {
			if !isTchar(c) {
				bad = true
				return false
			}
		}
		dst = append(dst, k...)
		dst = append(dst, ':', ' ')
		dst = append(dst, v...)
		dst = append(dst, '\r', '\n')
		return true
	})
	if err != nil || !status || bad {
		return dst[:start], ErrBadResponse
	}
	return append(dst, '\r', '\n'), nil
}

// AppendChunk appends data as one chunk of the chunked coding; empty data
// appends the last chunk and the end of the (empty) trailer section.
func AppendChunk(dst, data []byte) []byte {
	if len(data) == 0 {
		return append(dst, "0\r\n\r\n"...)
	}
	dst = strconv.AppendInt(dst, int64(len(data)), 16)
	dst = append(dst, '\r', '\n')
	dst = append(dst, data...)
	return append(dst, '\r', '\n')
}

// AppendChunkHeader appends the size line of a chunk of n > 0 bytes.
func AppendChunkHeader(dst []byte, n int) []byte {
	// By hand: strconv.AppendInt's base-16 path allocates.
	const hex = "0123456789abcdef"
	var a [16]byte
	i := len(a)
	for u := uint64(n); ; u >>= 4 {
		i--
		a[i] = hex[u&15]
		if u < 16 {
			break
		}
	}
	dst = append(dst, a[i:]...)
	return append(dst, '\r', '\n')
}

// httpDateLayout is RFC 9110 §5.6.7's IMF-fixdate, for a time in UTC.
const httpDateLayout = "Mon, 02 Jan 2006 15:04:05 GMT"

// AppendHTTPDate appends t as an IMF-fixdate (RFC 9110 §5.6.7), such as
// "Sun, 06 Nov 1994 08:49:37 GMT", always in UTC, for a Date field.
func AppendHTTPDate(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, httpDateLayout)
}

// AppendError appends a complete small text/plain error response.
func AppendError(dst []byte, status int, msg string, closeConn bool) []byte {
	return AppendErrorDate(dst, status, msg, closeConn, nil)
}

// AppendErrorDate is AppendError with a Date field holding date (an
// IMF-fixdate from AppendHTTPDate) when date is non-nil.
func AppendErrorDate(dst []byte, status int, msg string, closeConn bool, date []byte) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, StatusText(status)...)
	if date != nil {
		dst = append(dst, "\r\nDate: "...)
		dst = append(dst, date...)
	}
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(msg)+1), 10)
	if closeConn {
		dst = append(dst, "\r\nConnection: close"...)
	}
	dst = append(dst, "\r\n\r\n"...)
	dst = append(dst, msg...)
	return append(dst, '\n')
}

// StatusText is the reason phrase for the statuses the proxy answers.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 417:
		return "Expectation Failed"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Error"
}

// HeadField returns the trimmed value of the first field called name
// (lower case) in a response head that ParseResponseHead accepted; nil
// when there is none.
func HeadField(head []byte, name string) []byte {
	_, rest := nextLine(head) // the status line
	for len(rest) > 0 {
		var line []byte
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		if c := bytes.IndexByte(line, ':'); c > 0 && equalFold(line[:c], name) {
			return bytes.TrimSpace(line[c+1:])
		}
	}
	return nil
}
