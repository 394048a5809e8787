package protocol

import (
	"bytes"
	"net/netip"
	"strings"
)

// Limits bound what a RequestParser accepts. Zero fields take the defaults.
type Limits struct {
	MaxHeadBytes int   // whole head, request line included (431); default DefaultMaxHeadBytes
	MaxURIBytes  int   // request target (414); default DefaultMaxURIBytes
	MaxHeaders   int   // header fields (431); default DefaultMaxHeaders
	MaxBodyBytes int64 // request body, declared or chunked (413); 0 means no limit
}

const (
	// DefaultMaxHeadBytes matches common proxies (nginx allows 4×8 KiB);
	// a head must also fit a uwsgi packet (64 KiB).
	DefaultMaxHeadBytes = 16 << 10
	// DefaultMaxURIBytes leaves room for headers inside the head limit.
	DefaultMaxURIBytes = 8 << 10
	// DefaultMaxHeaders keeps the per-connection span table small.
	DefaultMaxHeaders = 100
	// maxChunkLineBytes bounds a chunk-size line with its extensions.
	maxChunkLineBytes = 4 << 10
	// maxChunkSize refuses sizes that would overflow int64 arithmetic.
	maxChunkSize = 1 << 48
)

// Event is what one Feed call produced.
type Event uint8

const (
	EvNeedMore Event = iota // buf is exhausted; call again with more bytes
	EvHead                  // a request head is complete: see Request
	EvBody                  // data is the next piece of the (de-chunked) body
	EvEnd                   // the request (head and body) is complete
)

// Header is one header field; slices point into the buffer given to Feed.
type Header struct {
	Name, Value []byte
}

// Request is a parsed request head. Its byte slices point into the buffer
// passed to the Feed call that returned EvHead and are valid only as long
// as that buffer is.
type Request struct {
	Method        []byte
	URI           []byte // raw request target
	Path          []byte // URI up to '?', still percent-encoded
	Query         []byte // after '?', without it
	Minor         int    // HTTP/1.Minor: 0 or 1
	Headers       []Header
	Host          []byte
	ContentLength int64 // -1 when absent
	Chunked       bool
	KeepAlive     bool
	Expect100     bool
	Upgrade       []byte // Upgrade header value when Connection has "upgrade"
	HeadLen       int    // bytes of the head, final CRLF included
}

// HasBody reports whether a body follows the head.
func (r *Request) HasBody() bool { return r.Chunked || r.ContentLength > 0 }

// parser states, named after positions in the RFC 9112 grammar.
const (
	stStart uint8 = iota // before the request line (leading CRLFs skipped)
	stMethod
	stTarget
	stVersion
	stRequestLineLF
	stFieldStart // at the start of a header line
	stFieldName
	stFieldValueLead // OWS before a value
	stFieldValue
	stFieldLF
	stHeadLF
	stBodyLength // Content-Length bytes remain
	stChunkSize  // hex digits
	// chunk-ext (RFC 9112 §7.1.1):
	//   *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
	stChunkExtStart      // after ';': BWS, then the name
	stChunkExtName       // token
	stChunkExtNameBWS    // BWS after the name: '=' or ';' follows
	stChunkExtValueStart // after '=': BWS, then token or quoted-string
	stChunkExtToken      // token value
	stChunkExtQuoted     // inside a quoted-string value
	stChunkExtQuotedPair // after '\' in a quoted-string
	stChunkExtQuotedEnd  // after the closing DQUOTE
	stChunkExtValueBWS   // BWS after a value: ';' follows
	stChunkSizeLF        // LF after the size line
	stChunkData          // chunk bytes remain
	stChunkDataCR        // CR after chunk data
	stChunkDataLF        // LF after chunk data
	stTrailerStart       // start of a trailer line or the final CRLF
	stTrailerLine        // inside a trailer line
	stTrailerLineLF      // LF ending a trailer line
	stTrailerEndLF       // LF of the final CRLF
	stBodyDone           // EvEnd is due
)

// span is a header field's offsets from the start of the head.
type span struct{ nameStart, nameEnd, valStart, valEnd int32 }

// RequestParser is a resumable HTTP/1.1 request parser (RFC 9112).
//
// While a head is incomplete, Feed consumes nothing: the caller keeps the
// bytes and passes them again, with more appended, on the next call; the
// parser remembers how far it scanned and never rescans. Body bytes are
// consumed as they are framed, so the body is never buffered.
//
// A RequestParser is owned by one goroutine (the connection's event loop).
type RequestParser struct {
	limits Limits

	state     uint8
	scan      int   // head: offset already scanned
	tokStart  int32 // head: start of the current token
	uriEnd    int32
	methodEnd int32
	minor     int
	remaining int64 // body bytes left in the message or chunk
	received  int64 // body bytes so far (for MaxBodyBytes)
	lineLen   int   // chunk-size and trailer lines

	spans []span // header fields of the head in progress
	req   Request
}

// NewRequestParser returns a parser enforcing lim.
func NewRequestParser(lim Limits) *RequestParser {
	p := &RequestParser{}
	p.Init(lim)
	return p
}

// Init (re)initialises p with lim, keeping its span table's capacity.
func (p *RequestParser) Init(lim Limits) {
	if lim.MaxHeadBytes <= 0 {
		lim.MaxHeadBytes = DefaultMaxHeadBytes
	}
	if lim.MaxURIBytes <= 0 {
		lim.MaxURIBytes = DefaultMaxURIBytes
	}
	if lim.MaxHeaders <= 0 {
		lim.MaxHeaders = DefaultMaxHeaders
	}
	// The span and header tables keep their room: a reused parser
	// allocates nothing once they have grown. The old fields are
	// cleared, so the buffers they point into are not kept alive.
	spans := p.spans[:0]
	hdrs := p.req.Headers[:cap(p.req.Headers)]
	clear(hdrs)
	*p = RequestParser{limits: lim, spans: spans, req: Request{Headers: hdrs[:0]}}
}

// Request returns the head parsed by the last EvHead; see Request's
// lifetime rule.
func (p *RequestParser) Request() *Request { return &p.req }

// InHead reports whether the parser is between requests or inside a head.
func (p *RequestParser) InHead() bool { return p.state <= stHeadLF }

// Idle reports whether the parser is between requests with nothing scanned.
func (p *RequestParser) Idle() bool { return p.state == stStart && p.scan == 0 }

// BodyLeft returns how many body bytes Feed will take next with no
// framing byte between them: what is left of a Content-Length body or of
// the current chunk's data; 0 anywhere else (the head, a chunk-size line,
// trailers).
func (p *RequestParser) BodyLeft() int64 {
	if p.state == stBodyLength || p.state == stChunkData {
		return p.remaining
	}
	return 0
}

// EndDue reports whether Feed has the request's EvEnd to give without
// another byte: the head or the last body piece was taken, and the end
// was not asked for yet.
func (p *RequestParser) EndDue() bool { return p.state == stBodyDone }

// Pending reports how many head bytes have been scanned but not consumed.
func (p *RequestParser) Pending() int {
	if p.InHead() {
		return p.scan
	}
	return 0
}

// Feed parses buf. In a head, buf must begin where the head begins (all
// unconsumed bytes). It returns how many bytes of buf were consumed, the
// event, for EvBody the body piece (a sub-slice of buf), and a *Error when
// the request is malformed; after an error the connection must be closed.
func (p *RequestParser) Feed(buf []byte) (n int, ev Event, data []byte, err error) {
	if p.state <= stHeadLF {
		return p.feedHead(buf)
	}
	return p.feedBody(buf)
}

func (p *RequestParser) feedHead(buf []byte) (int, Event, []byte, error) {
	lim := p.limits
	end := len(buf)
	if end > lim.MaxHeadBytes {
		end = lim.MaxHeadBytes
	}
	i := p.scan
	for ; i < end; i++ {
		c := buf[i]
		switch p.state {
		case stStart:
			if c == '\r' || c == '\n' {
				// RFC 9112 §2.2: ignore empty lines before the request line.
				// They are skipped here and consumed with the head.
				if c == '\n' && (i == 0 || buf[i-1] != '\r') {
					return 0, EvNeedMore, nil, ErrBareLF
				}
				// RFC 9112 §2.2: a bare CR is invalid.
				if c == '\r' && i > 0 && buf[i-1] == '\r' {
					return 0, EvNeedMore, nil, ErrBadRequestLine
				}
				continue
			}
			if i > 0 && buf[i-1] == '\r' {
				return 0, EvNeedMore, nil, ErrBadRequestLine // bare CR
			}
			if !isTchar(c) {
				return 0, EvNeedMore, nil, ErrBadRequestLine
			}
			p.tokStart = int32(i)
			p.state = stMethod
		case stMethod:
			if c == ' ' {
				p.methodEnd = int32(i)
				p.state = stTarget
				continue
			}
			if !isTchar(c) {
				return 0, EvNeedMore, nil, ErrBadRequestLine
			}
		case stTarget:
			if c == ' ' {
				if int32(i) == p.methodEnd+1 {
					return 0, EvNeedMore, nil, ErrBadRequestLine
				}
				p.uriEnd = int32(i)
				p.state = stVersion
				continue
			}
			if c <= ' ' || c == 0x7f {
				return 0, EvNeedMore, nil, ErrBadRequestLine
			}
			if i-int(p.methodEnd)-1 >= lim.MaxURIBytes {
				return 0, EvNeedMore, nil, ErrURITooLong
			}
		case stVersion:
			if c == '\r' {
				if err := p.checkVersion(buf[p.uriEnd+1 : i]); err != nil {
					return 0, EvNeedMore, nil, err
				}
				p.state = stRequestLineLF
				continue
			}
			if c == '\n' {
				return 0, EvNeedMore, nil, ErrBareLF
			}
			if i-int(p.uriEnd) > len("HTTP/1.1") {
				return 0, EvNeedMore, nil, ErrBadRequestLine
			}
		case stRequestLineLF, stFieldLF:
			if c != '\n' {
				return 0, EvNeedMore, nil, ErrBadHeader
			}
			p.state = stFieldStart
		case stFieldStart:
			switch {
			case c == '\r':
				p.state = stHeadLF
			case c == '\n':
				return 0, EvNeedMore, nil, ErrBareLF
			case c == ' ' || c == '\t':
				// RFC 9112 §5.2: obs-fold is refused in requests.
				return 0, EvNeedMore, nil, ErrObsFold
			case isTchar(c):
				if len(p.spans) >= lim.MaxHeaders {
					return 0, EvNeedMore, nil, ErrTooManyHeaders
				}
				p.spans = append(p.spans, span{nameStart: int32(i)})
				p.state = stFieldName
			default:
				return 0, EvNeedMore, nil, ErrBadHeader
			}
		case stFieldName:
			if c == ':' {
				p.spans[len(p.spans)-1].nameEnd = int32(i)
				p.state = stFieldValueLead
				continue
			}
			if c == ' ' || c == '\t' {
				// RFC 9112 §5.1: MUST reject whitespace before the colon.
				return 0, EvNeedMore, nil, ErrSpaceBeforeColon
			}
			if !isTchar(c) {
				return 0, EvNeedMore, nil, ErrBadHeader
			}
		case stFieldValueLead:
			if c == ' ' || c == '\t' {
				continue
			}
			s := &p.spans[len(p.spans)-1]
			s.valStart, s.valEnd = int32(i), int32(i)
			p.state = stFieldValue
			i-- // re-read c as a value byte
		case stFieldValue:
			s := &p.spans[len(p.spans)-1]
			switch {
			case c == '\r':
				p.state = stFieldLF
			case c == '\n':
				return 0, EvNeedMore, nil, ErrBareLF
			case c == ' ' || c == '\t':
				// trailing OWS is not part of the value; valEnd stays.
			case c < ' ' || c == 0x7f:
				return 0, EvNeedMore, nil, ErrBadHeader
			default:
				s.valEnd = int32(i + 1)
			}
		case stHeadLF:
			if c != '\n' {
				return 0, EvNeedMore, nil, ErrBareLF
			}
			p.scan = 0
			return p.finishHead(buf, i+1)
		}
	}
	p.scan = i
	if i >= lim.MaxHeadBytes {
		if p.state == stTarget {
			return 0, EvNeedMore, nil, ErrURITooLong
		}
		return 0, EvNeedMore, nil, ErrHeadTooLarge
	}
	return 0, EvNeedMore, nil, nil
}

// visibleASCII reports whether b is all visible US-ASCII (VCHAR).
func visibleASCII(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func (p *RequestParser) checkVersion(v []byte) error {
	if len(v) != 8 || string(v[:7]) != "HTTP/1." {
		if len(v) == 8 && string(v[:5]) == "HTTP/" && v[6] == '.' && isDigit(v[5]) && isDigit(v[7]) {
			return ErrBadVersion
		}
		if len(v) >= 5 && visibleASCII(v) && !equalFold(v[:5], "http/") {
			return ErrNotHTTP
		}
		return ErrBadRequestLine
	}
	switch v[7] {
	case '0':
		p.minor = 0
	case '1':
		p.minor = 1
	default:
		// HTTP/1.2 to 1.9: served as 1.1, the highest minor version the
		// proxy implements (RFC 9112 §2.3), as nginx does.
		if !isDigit(v[7]) {
			return ErrBadVersion
		}
		p.minor = 1
	}
	return nil
}

// finishHead interprets the header fields of a complete head of n bytes.
func (p *RequestParser) finishHead(buf []byte, n int) (int, Event, []byte, error) {
	r := &p.req
	hdrs := r.Headers[:0]
	*r = Request{
		Method:        buf[p.tokStart:p.methodEnd],
		URI:           buf[p.methodEnd+1 : p.uriEnd],
		Minor:         p.minor,
		ContentLength: -1,
		KeepAlive:     p.minor == 1,
		HeadLen:       n,
	}
	r.Path = r.URI
	if q := bytes.IndexByte(r.URI, '?'); q >= 0 {
		r.Path, r.Query = r.URI[:q], r.URI[q+1:]
	}
	if !validTarget(r.Method, r.URI) {
		return 0, EvNeedMore, nil, ErrBadRequestLine
	}
	// The path is percent-decoded into PATH_INFO (appendPathInfo): a NUL,
	// CR or LF there would end a C string or a log line in the backend.
	// The query string is forwarded still encoded (QUERY_STRING, as CGI
	// has it), so its escapes are the application's to decode and check.
	if escapesControl(targetPath(r.Path)) {
		return 0, EvNeedMore, nil, ErrBadPathEscape
	}
	var sawTE, sawHost, badHost, connUpgrade bool
	var upgrade []byte
	for _, s := range p.spans {
		h := Header{Name: buf[s.nameStart:s.nameEnd], Value: buf[s.valStart:s.valEnd]}
		hdrs = append(hdrs, h)
		switch {
		case equalFold(h.Name, "content-length"):
			cl, ok := parseContentLength(h.Value)
			if !ok {
				return 0, EvNeedMore, nil, ErrBadContentLength
			}
			if r.ContentLength >= 0 && r.ContentLength != cl {
				return 0, EvNeedMore, nil, ErrDupContentLength
			}
			r.ContentLength = cl
		case equalFold(h.Name, "transfer-encoding"):
			if sawTE {
				return 0, EvNeedMore, nil, ErrBadTE
			}
			sawTE = true
			if !equalFold(h.Value, "chunked") {
				if bytes.Contains(bytes.ToLower(h.Value), []byte("chunked")) {
					return 0, EvNeedMore, nil, ErrBadTE
				}
				return 0, EvNeedMore, nil, ErrUnknownTE
			}
			r.Chunked = true
		case equalFold(h.Name, "host"):
			if sawHost {
				return 0, EvNeedMore, nil, ErrDupHost
			}
			sawHost = true
			badHost = !validHost(h.Value) // after the target's own check, below
			r.Host = h.Value
		case equalFold(h.Name, "connection"):
			eachToken(h.Value, func(tok []byte) {
				switch {
				case equalFold(tok, "close"):
					r.KeepAlive = false
				case equalFold(tok, "keep-alive"):
					if p.minor == 0 {
						r.KeepAlive = true
					}
				case equalFold(tok, "upgrade"):
					connUpgrade = true
				}
			})
		case equalFold(h.Name, "expect"):
			if !equalFold(h.Value, "100-continue") {
				return 0, EvNeedMore, nil, ErrExpectation
			}
			r.Expect100 = p.minor == 1
		case equalFold(h.Name, "upgrade"):
			// Repeated fields are one list (RFC 9110 §5.3), as the node
			// sees them (HTTP_UPGRADE joins them): any that lists
			// websocket makes it a WebSocket request, here too.
			if upgrade == nil || HasToken(h.Value, "websocket") {
				upgrade = h.Value
			}
		}
	}
	// Connection: close wins over keep-alive whatever their order.
	for _, h := range hdrs {
		if equalFold(h.Name, "connection") {
			eachToken(h.Value, func(tok []byte) {
				if equalFold(tok, "close") {
					r.KeepAlive = false
				}
			})
		}
	}
	r.Headers = hdrs
	p.spans = p.spans[:0]
	// RFC 9110 §7.8: a server MUST ignore Upgrade in an HTTP/1.0
	// request (an HTTP/1.0 proxy may have forwarded it, hop-by-hop as
	// it is): a plain request, not a WebSocket (nor a 400).
	if connUpgrade && p.minor > 0 {
		r.Upgrade = upgrade
	}
	if sawTE {
		// RFC 9112 §6.1: TE with CL is a smuggling shape; TE in HTTP/1.0
		// cannot be trusted.
		if r.ContentLength >= 0 || p.minor == 0 {
			return 0, EvNeedMore, nil, ErrCLAndTE
		}
	}
	if auth, ok := absoluteAuthority(r.URI); ok {
		// RFC 9112 §3.2.2: the authority of an absolute-form target is the
		// request's host, and a client MUST send a Host identical to it; a
		// different Host is refused rather than routed one way and seen
		// another way by the backend.
		if !validAuthority(auth) {
			return 0, EvNeedMore, nil, ErrBadRequestLine
		}
		if sawHost && !sameName(r.Host, auth) {
			return 0, EvNeedMore, nil, ErrBadHost
		}
		r.Host = auth
	}
	if badHost {
		return 0, EvNeedMore, nil, ErrBadHost
	}
	if p.minor == 1 && !sawHost {
		return 0, EvNeedMore, nil, ErrMissingHost
	}
	if lim := p.limits.MaxBodyBytes; lim > 0 && r.ContentLength > lim {
		return 0, EvNeedMore, nil, ErrBodyTooLarge
	}
	p.received = 0
	switch {
	case r.Chunked:
		p.state = stChunkSize
		p.remaining, p.lineLen = 0, 0
	case r.ContentLength > 0:
		p.state = stBodyLength
		p.remaining = r.ContentLength
	default:
		p.state = stBodyDone
	}
	return n, EvHead, nil, nil
}

func (p *RequestParser) feedBody(buf []byte) (int, Event, []byte, error) {
	i := 0
	for {
		switch p.state {
		case stBodyDone:
			p.state = stStart
			return i, EvEnd, nil, nil
		case stBodyLength, stChunkData:
			if i == len(buf) {
				return i, EvNeedMore, nil, nil
			}
			k := int64(len(buf) - i)
			if k > p.remaining {
				k = p.remaining
			}
			p.remaining -= k
			if p.remaining == 0 {
				if p.state == stBodyLength {
					p.state = stBodyDone
				} else {
					p.state = stChunkDataCR
				}
			}
			start := i
			i += int(k)
			return i, EvBody, buf[start:i], nil
		}
		if i == len(buf) {
			return i, EvNeedMore, nil, nil
		}
		c := buf[i]
		i++
		switch p.state {
		case stChunkSize:
			p.lineLen++
			if p.lineLen > maxChunkLineBytes { // endless leading zeros
				return i, EvNeedMore, nil, ErrBadChunk
			}
			if v, ok := unhex(c); ok {
				p.remaining = p.remaining<<4 | int64(v)
				if p.remaining > maxChunkSize {
					return i, EvNeedMore, nil, ErrBadChunk
				}
				continue
			}
			if p.lineLen == 1 {
				return i, EvNeedMore, nil, ErrBadChunk
			}
			// RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF. §7.1.1 allows
			// BWS before ';', but parsers disagree on "5 \r\n" (net/http
			// reads 5, others refuse), so whitespace right after the
			// digits ("5 \r\n", "5\t;x") is refused, as nginx does.
			switch c {
			case ';':
				p.state = stChunkExtStart
			case '\r':
				p.state = stChunkSizeLF
			default:
				return i, EvNeedMore, nil, ErrBadChunk
			}
		case stChunkExtStart, stChunkExtName, stChunkExtNameBWS, stChunkExtValueStart,
			stChunkExtToken, stChunkExtQuoted, stChunkExtQuotedPair, stChunkExtQuotedEnd,
			stChunkExtValueBWS:
			p.lineLen++
			if p.lineLen > maxChunkLineBytes {
				return i, EvNeedMore, nil, ErrBadChunk
			}
			if !p.chunkExt(c) {
				return i, EvNeedMore, nil, ErrBadChunk
			}
		case stChunkSizeLF:
			if c != '\n' {
				return i, EvNeedMore, nil, ErrBadChunk
			}
			p.lineLen = 0
			if p.remaining == 0 {
				p.state = stTrailerStart
				continue
			}
			p.received += p.remaining
			if lim := p.limits.MaxBodyBytes; lim > 0 && p.received > lim {
				return i, EvNeedMore, nil, ErrBodyTooLarge
			}
			p.state = stChunkData
		case stChunkDataCR:
			if c != '\r' {
				return i, EvNeedMore, nil, ErrBadChunk
			}
			p.state = stChunkDataLF
		case stChunkDataLF:
			if c != '\n' {
				return i, EvNeedMore, nil, ErrBadChunk
			}
			p.state = stChunkSize
		case stTrailerStart:
			switch c {
			case '\r':
				p.state = stTrailerEndLF
			case '\n':
				return i, EvNeedMore, nil, ErrBadChunk
			default:
				p.state = stTrailerLine
			}
		case stTrailerLine:
			p.lineLen++
			if p.lineLen > p.limits.MaxHeadBytes {
				return i, EvNeedMore, nil, ErrHeadTooLarge
			}
			if c == '\r' {
				p.state = stTrailerLineLF
			} else if c == '\n' {
				return i, EvNeedMore, nil, ErrBareLF
			}
		case stTrailerLineLF:
			if c != '\n' {
				return i, EvNeedMore, nil, ErrBadChunk
			}
			p.state = stTrailerStart
		case stTrailerEndLF:
			if c != '\n' {
				return i, EvNeedMore, nil, ErrBadChunk
			}
			p.state = stBodyDone
		}
	}
}

// chunkExt advances the chunk-ext states by one byte (RFC 9112 §7.1.1):
//
//	chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//	chunk-ext-name = token
//	chunk-ext-val  = token / quoted-string
//
// It reports false when c cannot continue the grammar: a ';' without a
// name, a name or value that is neither token nor quoted-string, a control
// byte, or whitespace before the CR (the grammar has BWS only before ';'
// and around '='). Extensions are checked, never forwarded.
func (p *RequestParser) chunkExt(c byte) bool {
	ws := c == ' ' || c == '\t'
	switch p.state {
	case stChunkExtStart: // BWS chunk-ext-name
		switch {
		case ws:
		case isTchar(c):
			p.state = stChunkExtName
		default:
			return false
		}
	case stChunkExtName:
		switch {
		case isTchar(c):
		case ws:
			p.state = stChunkExtNameBWS
		default:
			return p.chunkExtNext(c, true)
		}
	case stChunkExtNameBWS: // BWS before '=' or ';'
		if !ws && (c == '\r' || !p.chunkExtNext(c, true)) {
			return false
		}
	case stChunkExtValueStart: // BWS chunk-ext-val
		switch {
		case ws:
		case c == '"':
			p.state = stChunkExtQuoted
		case isTchar(c):
			p.state = stChunkExtToken
		default:
			return false
		}
	case stChunkExtToken:
		switch {
		case isTchar(c):
		case ws:
			p.state = stChunkExtValueBWS
		default:
			return p.chunkExtNext(c, false)
		}
	case stChunkExtQuoted: // RFC 9110 §5.6.4: qdtext / quoted-pair
		switch {
		case c == '"':
			p.state = stChunkExtQuotedEnd
		case c == '\\':
			p.state = stChunkExtQuotedPair
		case c == '\t' || c >= ' ' && c != 0x7f:
		default:
			return false
		}
	case stChunkExtQuotedPair: // "\" ( HTAB / SP / VCHAR / obs-text )
		if c != '\t' && (c < ' ' || c == 0x7f) {
			return false
		}
		p.state = stChunkExtQuoted
	case stChunkExtQuotedEnd:
		if ws {
			p.state = stChunkExtValueBWS
			return true
		}
		return p.chunkExtNext(c, false)
	case stChunkExtValueBWS: // BWS before ';'
		if !ws && (c != ';' || !p.chunkExtNext(c, false)) {
			return false
		}
	}
	return true
}

// chunkExtNext handles the byte that ends a name or a value: ';' starts
// the next extension, CR ends the line and, after a name, '=' starts its
// value.
func (p *RequestParser) chunkExtNext(c byte, afterName bool) bool {
	switch {
	case c == ';':
		p.state = stChunkExtStart
	case c == '\r':
		p.state = stChunkSizeLF
	case c == '=' && afterName:
		p.state = stChunkExtValueStart
	default:
		return false
	}
	return true
}

// validTarget checks the request-target forms of RFC 9112 §3.2. Methods
// are compared case-sensitively (RFC 9110 §9.1): "options" and "connect"
// are extension methods, so "options *" is refused and "connect
// http://a/" is an ordinary absolute-form request.
func validTarget(method, uri []byte) bool {
	switch {
	case string(method) == "CONNECT":
		// Only authority-form is CONNECT's (RFC 9110 §9.3.6), and that is
		// not proxied. Before, an origin-form CONNECT went to the node, and
		// its 2xx would turn the client's connection into a tunnel
		// (RFC 9112 §6.3) that the proxy went on reading as HTTP.
		return false
	case uri[0] == '/':
		return true
	case len(uri) == 1 && uri[0] == '*':
		return string(method) == "OPTIONS"
	default:
		return hasPrefixFold(uri, "http://") || hasPrefixFold(uri, "https://")
	}
}

// targetPath returns the path of a Request.Path: for absolute-form the
// part from the first '/' after the authority, empty when there is none
// (the path is then "/"); otherwise path itself.
func targetPath(path []byte) []byte {
	var rest []byte
	switch {
	case hasPrefixFold(path, "http://"):
		rest = path[len("http://"):]
	case hasPrefixFold(path, "https://"):
		rest = path[len("https://"):]
	default:
		return path
	}
	if k := bytes.IndexByte(rest, '/'); k >= 0 {
		return rest[k:]
	}
	return rest[len(rest):]
}

// escapesControl reports whether path holds a percent-escape of NUL, CR or
// LF: "%00", "%0d", "%0a" in either case. Decoding can only ever produce
// one of those bytes from such a triple (a hex digit is never '%'), so
// the scan agrees with appendPathInfo's decoding.
func escapesControl(path []byte) bool {
	for k := 0; k+2 < len(path); k++ {
		if path[k] == '%' {
			hi, ok1 := unhex(path[k+1])
			lo, ok2 := unhex(path[k+2])
			if ok1 && ok2 && isControlEscape(hi<<4|lo) {
				return true
			}
		}
	}
	return false
}

// isControlEscape reports whether a decoded path byte is one that is never
// decoded: NUL, CR or LF.
func isControlEscape(c byte) bool { return c == 0 || c == '\r' || c == '\n' }

// absoluteAuthority returns the authority of an absolute-form target
// (up to the first '/' or '?') and whether uri is one.
func absoluteAuthority(uri []byte) ([]byte, bool) {
	var rest []byte
	switch {
	case hasPrefixFold(uri, "http://"):
		rest = uri[len("http://"):]
	case hasPrefixFold(uri, "https://"):
		rest = uri[len("https://"):]
	default:
		return nil, false
	}
	for i, c := range rest {
		if c == '/' || c == '?' {
			return rest[:i], true
		}
	}
	return rest, true
}

// validAuthority accepts host [":" port] (RFC 3986 §3.2.2-3): an IPv6
// literal in brackets, or a reg-name / IPv4 address without userinfo or
// percent-encoding, then an optional numeric port.
func validAuthority(a []byte) bool {
	host, rest := a, []byte(nil)
	if len(a) > 0 && a[0] == '[' {
		end := bytes.IndexByte(a, ']')
		if end < 0 {
			return false
		}
		ip, err := netip.ParseAddr(string(a[1:end]))
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return false
		}
		rest = a[end+1:]
	} else {
		if c := bytes.IndexByte(a, ':'); c >= 0 {
			host, rest = a[:c], a[c:]
		}
		if len(host) == 0 {
			return false
		}
		for _, c := range host {
			alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c)
			if !alnum && strings.IndexByte("-._~!$&'()*+;=", c) < 0 {
				return false
			}
		}
	}
	if len(rest) > 0 {
		if rest[0] != ':' {
			return false
		}
		for _, c := range rest[1:] {
			if !isDigit(c) {
				return false
			}
		}
	}
	return true
}

// validHost checks a Host field value: an authority without userinfo,
// as in the absolute form (RFC 9112 §3.2: anything else gets 400).
// Before, almost anything passed, and routing cut it at its last ':'.
func validHost(h []byte) bool { return validAuthority(h) }

// parseContentLength accepts 1*DIGIT, or a list of identical values
// (RFC 9110 §8.6).
func parseContentLength(v []byte) (int64, bool) {
	var first int64 = -1
	for len(v) > 0 {
		var elem []byte
		if c := bytes.IndexByte(v, ','); c >= 0 {
			elem, v = trimOWS(v[:c]), v[c+1:]
		} else {
			elem, v = trimOWS(v), nil
		}
		if len(elem) == 0 || len(elem) > 18 {
			return 0, false
		}
		var n int64
		for _, c := range elem {
			if !isDigit(c) {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		}
		if first >= 0 && n != first {
			return 0, false
		}
		first = n
	}
	return first, first >= 0
}
