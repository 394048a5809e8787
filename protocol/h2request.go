package protocol

// h2request.go turns the decoded field section of an HTTP/2 request
// (RFC 9113 §8.3) into a Request, the same one the HTTP/1.1 parser makes,
// so that AppendEnviron writes the same uwsgi environ for both.

// HTTP/2 request errors. Two kinds, by what the server may do:
//
//   - *H2StreamError (PROTOCOL_ERROR): the request is malformed (RFC 9113
//     §8.1.1). The server resets the stream (RST_STREAM PROTOCOL_ERROR);
//     §8.1.1 lets it send a 400 response first. The connection stays.
//   - *Error (431, 414, 413, 417, 400, 501): the request is well formed but
//     over a limit or refused by policy. On HTTP/2 such an *Error breaks only
//     its stream: the server may answer Status on the stream (RFC 9113
//     §10.5.1 suggests 431 for a field section it will not process) or
//     reset it. The connection stays either way.
//
// Stream errors come back with the builder's stream ID set; errors.Is
// matches them against these sentinels.
var (
	ErrH2BadFieldName       = &H2StreamError{0, H2ProtocolError, "field name empty, not a token or not lower-case", "h2_bad_field_name"}
	ErrH2BadFieldValue      = &H2StreamError{0, H2ProtocolError, "field value with a control byte or surrounding whitespace", "h2_bad_field_value"}
	ErrH2ConnectionHeader   = &H2StreamError{0, H2ProtocolError, "connection-specific field", "h2_connection_header"}
	ErrH2BadTE              = &H2StreamError{0, H2ProtocolError, "te field other than trailers", "h2_bad_te"}
	ErrH2UnknownPseudo      = &H2StreamError{0, H2ProtocolError, "unknown or response pseudo-header field", "h2_unknown_pseudo"}
	ErrH2DupPseudo          = &H2StreamError{0, H2ProtocolError, "repeated pseudo-header field", "h2_dup_pseudo"}
	ErrH2PseudoAfterRegular = &H2StreamError{0, H2ProtocolError, "pseudo-header field after a regular field", "h2_pseudo_after_regular"}
	ErrH2MissingPseudo      = &H2StreamError{0, H2ProtocolError, "missing :method, :scheme, :path or :authority", "h2_missing_pseudo"}
	ErrH2BadMethod          = &H2StreamError{0, H2ProtocolError, ":method is not a token", "h2_bad_method"}
	ErrH2BadScheme          = &H2StreamError{0, H2ProtocolError, ":scheme is not a URI scheme", "h2_bad_scheme"}
	ErrH2BadPath            = &H2StreamError{0, H2ProtocolError, ":path empty, not origin-form or with a control byte", "h2_bad_path"}
	ErrH2BadAuthority       = &H2StreamError{0, H2ProtocolError, "invalid :authority or host", "h2_bad_authority"}
	ErrH2MissingAuthority   = &H2StreamError{0, H2ProtocolError, "neither :authority nor host", "h2_missing_authority"}
	ErrH2HostMismatch       = &H2StreamError{0, H2ProtocolError, "host differs from :authority", "h2_host_mismatch"}
	ErrH2DupHost            = &H2StreamError{0, H2ProtocolError, "more than one host field", "h2_dup_host"}
	ErrH2BadConnect         = &H2StreamError{0, H2ProtocolError, "CONNECT with :scheme or :path, or :protocol without CONNECT", "h2_bad_connect"}
	ErrH2BadContentLength   = &H2StreamError{0, H2ProtocolError, "invalid content-length", "h2_bad_content_length"}
	ErrH2DupContentLength   = &H2StreamError{0, H2ProtocolError, "conflicting content-length fields", "h2_dup_content_length"}
	// ErrH2ContentLengthMismatch is CheckH2ContentLength's: the DATA
	// frames do not add up to content-length.
	ErrH2ContentLengthMismatch = &H2StreamError{0, H2ProtocolError, "DATA length differs from content-length", "h2_content_length_mismatch"}

	ErrH2HeaderListTooLarge = &Error{431, "request header list too large", "h2_header_list_too_large"}
	ErrH2TooManyHeaders     = &Error{431, "too many header fields", "h2_too_many_headers"}
	ErrH2URITooLong         = &Error{414, "URI too long", "h2_uri_too_long"}
	ErrH2BodyTooLarge       = &Error{413, "request body too large", "h2_body_too_large"}
	ErrH2Expectation        = &Error{417, "unsupported expectation", "h2_bad_expect"}
	ErrH2BadPathEscape      = &Error{400, "percent-encoded NUL, CR or LF in the path", "h2_bad_path_escape"}
	ErrH2ConnectUnsupported = &Error{501, "CONNECT is not proxied", "h2_connect"}
)

// h2FieldOverhead is what RFC 9113 §6.5.2 (after RFC 7541 §4.1) adds to a
// field's name and value lengths when it sizes a header list: it stands
// for the per-field bookkeeping of a decoder.
const h2FieldOverhead = 32

// Request pseudo-header fields (RFC 9113 §8.3.1; RFC 8441 §4 for
// :protocol), as indexes into H2RequestBuilder.pseudo.
const (
	h2Method = iota
	h2Scheme
	h2Authority
	h2Path
	h2Protocol
	h2PseudoCount
)

// h2Val is a value in the builder's arena.
type h2Val struct {
	off, n int32
	set    bool
}

// h2Field is a regular field in the builder's arena: the name at off,
// the value right after it.
type h2Field struct{ off, nameLen, valLen int32 }

// H2RequestBuilder turns one HTTP/2 request's decoded field section into a
// Request (RFC 9113 §8.2, §8.3). The caller decodes the HEADERS and
// CONTINUATION block with an hpack.Decoder whose emit function calls Add,
// then calls Finish:
//
//	b.Reset(streamID)
//	dec.SetEmitFunc(func(f hpack.HeaderField) { b.Add(f.Name, f.Value) })
//	dec.Write(block) ... dec.Close()
//	req, err := b.Finish()
//
// After its first error the builder ignores further fields, but the caller
// MUST still decode the whole block: the HPACK dynamic table is shared by
// the connection (RFC 9113 §4.3, §10.5.1).
//
// Add copies every field into an arena owned by the builder, bounded by
// Limits.MaxHeadBytes (the header list size, counted as §6.5.2 counts it),
// so a reused builder allocates nothing once its arena has grown. The
// server should advertise that limit as SETTINGS_MAX_HEADER_LIST_SIZE.
//
// An H2RequestBuilder is owned by one goroutine (the connection's event
// loop); one builder serves one field section at a time.
type H2RequestBuilder struct {
	// Immutable after Init.
	limits          Limits
	connectProtocol bool // SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 was sent

	// Owned by the event loop; Reset per request.
	stream  uint32
	err     error // first error; sticky until Reset
	size    int   // header list size so far (§6.5.2)
	regular bool  // a regular field has been added
	pseudo  [h2PseudoCount]h2Val
	arena   []byte    // "host", then every field's bytes: at most 4 + MaxHeadBytes
	fields  []h2Field // regular fields in order; at most MaxHeaders
	req     Request
}

// NewH2RequestBuilder returns a builder enforcing lim; see Init.
func NewH2RequestBuilder(lim Limits, connectProtocol bool) *H2RequestBuilder {
	b := &H2RequestBuilder{}
	b.Init(lim, connectProtocol)
	return b
}

// Init (re)initialises b with lim (zero fields take the HTTP/1 defaults)
// and connectProtocol, which the caller sets when its SETTINGS carried
// SETTINGS_ENABLE_CONNECT_PROTOCOL = 1: only then is the :protocol
// pseudo-header (extended CONNECT, RFC 8441) accepted. It keeps the
// arena's and tables' capacity, and leaves b ready for stream 0; call
// Reset with the stream's ID.
func (b *H2RequestBuilder) Init(lim Limits, connectProtocol bool) {
	if lim.MaxHeadBytes <= 0 {
		lim.MaxHeadBytes = DefaultMaxHeadBytes
	}
	if lim.MaxURIBytes <= 0 {
		lim.MaxURIBytes = DefaultMaxURIBytes
	}
	if lim.MaxHeaders <= 0 {
		lim.MaxHeaders = DefaultMaxHeaders
	}
	arena, fields, hdrs := b.arena[:0], b.fields[:0], b.req.Headers[:0]
	*b = H2RequestBuilder{limits: lim, connectProtocol: connectProtocol, arena: arena, fields: fields}
	b.req.Headers = hdrs
	b.Reset(0)
}

// Reset starts a new field section for stream id. The Request of the last
// Finish is invalid from here on.
func (b *H2RequestBuilder) Reset(id uint32) {
	b.stream, b.err, b.size, b.regular = id, nil, 0, false
	b.pseudo = [h2PseudoCount]h2Val{}
	// The arena starts with the name of the host field that :authority
	// may stand in for (Finish), so it is never nil either: an empty
	// pseudo-header value in it is an empty slice, not nil (absent).
	b.arena, b.fields = append(b.arena[:0], "host"...), b.fields[:0]
}

// fail records err, with the stream's ID when it is a stream error, as the
// builder's first error and returns it.
func (b *H2RequestBuilder) fail(err error) error {
	if se, ok := err.(*H2StreamError); ok {
		err = se.withStream(b.stream)
	}
	b.err = err
	return err
}

// Add adds one decoded field, in the order of the field section. The
// strings are copied; nothing refers to them after the call. It returns
// the builder's first error, which is also Finish's; after one, fields
// are ignored.
func (b *H2RequestBuilder) Add(name, value string) error {
	if b.err != nil {
		return b.err
	}
	// RFC 9113 §6.5.2: the header list size is the sum of name, value and
	// 32 for every field, pseudo-header fields included. Checked before
	// anything is copied, so the arena never outgrows the limit.
	b.size += len(name) + len(value) + h2FieldOverhead
	if b.size > b.limits.MaxHeadBytes {
		return b.fail(ErrH2HeaderListTooLarge)
	}
	// RFC 9113 §8.2.1: no NUL, CR or LF, and no leading or trailing SP or
	// HTAB. Stricter, like the HTTP/1 parser (RFC 9110 §5.5): no other
	// control byte either but HTAB inside.
	if !validH2Value(value) {
		return b.fail(ErrH2BadFieldValue)
	}
	if len(name) > 0 && name[0] == ':' {
		return b.addPseudo(name, value)
	}
	b.regular = true
	// RFC 9113 §8.2.1: a field name MUST NOT contain upper-case letters,
	// and here (as in HTTP/1, RFC 9110 §5.1) it must be a token.
	if len(name) == 0 {
		return b.fail(ErrH2BadFieldName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isTchar(c) || (c >= 'A' && c <= 'Z') {
			return b.fail(ErrH2BadFieldName)
		}
	}
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		// RFC 9113 §8.2.2: connection-specific fields make the message
		// malformed.
		return b.fail(ErrH2ConnectionHeader)
	case "te":
		// RFC 9113 §8.2.2: te MAY appear, with no value but "trailers".
		if !equalFoldString(value, "trailers") {
			return b.fail(ErrH2BadTE)
		}
	}
	if len(b.fields) >= b.limits.MaxHeaders {
		return b.fail(ErrH2TooManyHeaders)
	}
	off := len(b.arena)
	b.arena = append(b.arena, name...)
	b.arena = append(b.arena, value...)
	b.fields = append(b.fields, h2Field{int32(off), int32(len(name)), int32(len(value))})
	return nil
}

func (b *H2RequestBuilder) addPseudo(name, value string) error {
	// RFC 9113 §8.3: all pseudo-header fields MUST come before the
	// regular ones.
	if b.regular {
		return b.fail(ErrH2PseudoAfterRegular)
	}
	var i int
	switch name {
	case ":method":
		i = h2Method
	case ":scheme":
		i = h2Scheme
	case ":authority":
		i = h2Authority
	case ":path":
		i = h2Path
	case ":protocol":
		// RFC 8441 §3, §4: only where the server enabled it; otherwise it
		// is an unknown pseudo-header field.
		if !b.connectProtocol {
			return b.fail(ErrH2UnknownPseudo)
		}
		i = h2Protocol
	default:
		// RFC 9113 §8.3: no pseudo-header fields but the defined ones, and
		// no response ones (:status) in a request.
		return b.fail(ErrH2UnknownPseudo)
	}
	// RFC 9113 §8.3.1: each at most once.
	if b.pseudo[i].set {
		return b.fail(ErrH2DupPseudo)
	}
	b.pseudo[i] = h2Val{off: int32(len(b.arena)), n: int32(len(value)), set: true}
	b.arena = append(b.arena, value...)
	return nil
}

// val returns pseudo-header field i, nil when absent.
func (b *H2RequestBuilder) val(i int) []byte {
	v := b.pseudo[i]
	if !v.set {
		return nil
	}
	return b.arena[v.off : v.off+v.n : v.off+v.n]
}

// Scheme returns the request's :scheme (nil when absent), valid as the
// Request of the last Finish is. UWSGI_SCHEME comes from the connection,
// not from here; a server may compare the two.
func (b *H2RequestBuilder) Scheme() []byte { return b.val(h2Scheme) }

// Finish checks the field section as a whole and returns the request.
//
// The Request is what the HTTP/1.1 parser would make of the same request:
// Method from :method; URI from :path, split into Path and Query; Host from
// host if present, else :authority; Headers the regular fields in order,
// with a "host" field from :authority put first when the request has none
// (as RFC 9113 §8.3.1 has an intermediary do for HTTP/1.1), and cookie
// fields left apart (AppendEnviron joins them with "; ", RFC 9113 §8.2.3);
// ContentLength from content-length, -1 when absent; Expect100 from
// expect; Upgrade the :protocol of an extended CONNECT (RFC 8441), nil
// otherwise; Minor 1, KeepAlive set, Chunked false and HeadLen 0, which
// mean nothing in HTTP/2. Pass ConnInfo.Proto "HTTP/2" to AppendEnviron.
//
// The caller still owns the body's framing: when the HEADERS frame
// carried END_STREAM it sets ContentLength to 0 if it is -1 (and resets the
// stream if it is above 0, see CheckH2ContentLength).
//
// The Request and its slices point into the builder and are valid until
// the next Reset, Init or Add. Finish returns the first error of Add, or
// an error of the section as a whole (see the sentinels above); call it
// once per Reset.
func (b *H2RequestBuilder) Finish() (*Request, error) {
	if b.err != nil {
		return nil, b.err
	}
	if err := b.finish(); err != nil {
		return nil, b.fail(err)
	}
	return &b.req, nil
}

func (b *H2RequestBuilder) finish() error {
	method, scheme, path := b.val(h2Method), b.val(h2Scheme), b.val(h2Path)
	authority, proto := b.val(h2Authority), b.val(h2Protocol)
	// RFC 9113 §8.3.1: every request has a :method, a token (RFC 9110 §9.1).
	if method == nil {
		return ErrH2MissingPseudo
	}
	if !validToken(method) {
		return ErrH2BadMethod
	}
	connect := string(method) == "CONNECT"
	switch {
	case proto != nil:
		// RFC 8441 §4: :protocol only on CONNECT, which then has :scheme,
		// :path and :authority like any other request.
		if !connect {
			return ErrH2BadConnect
		}
		if scheme == nil || path == nil || authority == nil {
			return ErrH2MissingPseudo
		}
	case connect:
		// RFC 9113 §8.5: CONNECT has no :scheme and no :path, and its
		// :authority is the host and port to connect to. It is checked,
		// then refused: a tunnel is not proxied (as HTTP/1's
		// authority-form is not).
		if scheme != nil || path != nil {
			return ErrH2BadConnect
		}
		if authority == nil {
			return ErrH2MissingPseudo
		}
		if _, port := SplitHostPort(authority); !validAuthority(authority) || len(port) == 0 {
			return ErrH2BadAuthority
		}
		return ErrH2ConnectUnsupported
	default:
		// RFC 9113 §8.3.1: all requests but CONNECT have :method, :scheme
		// and :path.
		if scheme == nil || path == nil {
			return ErrH2MissingPseudo
		}
	}
	if !validScheme(scheme) {
		return ErrH2BadScheme
	}
	// Checked in the HTTP/1 parser's order: the length before the form.
	if len(path) > b.limits.MaxURIBytes {
		return ErrH2URITooLong
	}
	// RFC 9113 §8.3.1: :path MUST NOT be empty; it is origin-form (the
	// path and query of the URI), or "*" for a server-wide OPTIONS. As in
	// HTTP/1 (RFC 9112 §3.2), the target holds no whitespace or control
	// byte (RFC 3986 has none).
	if !validH2Path(method, path) {
		return ErrH2BadPath
	}
	// RFC 9113 §8.3.1: :authority, when present, is not empty and has no
	// userinfo; host [":" port] as in HTTP/1's absolute-form.
	if authority != nil && !validAuthority(authority) {
		return ErrH2BadAuthority
	}
	r := &b.req
	hdrs := r.Headers[:0]
	*r = Request{ContentLength: -1, Minor: 1, KeepAlive: true, Headers: hdrs}
	var host []byte
	sawHost := false
	for _, f := range b.fields {
		name := b.arena[f.off : f.off+f.nameLen]
		val := b.arena[f.off+f.nameLen : f.off+f.nameLen+f.valLen]
		switch string(name) {
		case "content-length":
			cl, ok := parseContentLength(val)
			if !ok {
				return ErrH2BadContentLength
			}
			if r.ContentLength >= 0 && r.ContentLength != cl {
				return ErrH2DupContentLength
			}
			r.ContentLength = cl
		case "host":
			if sawHost {
				return ErrH2DupHost
			}
			if !validHost(val) {
				return ErrH2BadAuthority
			}
			host, sawHost = val, true
		case "expect":
			// As the HTTP/1 parser: only 100-continue (RFC 9110 §10.1.1).
			if !equalFold(val, "100-continue") {
				return ErrH2Expectation
			}
			r.Expect100 = true
		}
	}
	switch {
	case authority != nil && host != nil:
		// RFC 9113 §8.3.1: a host that identifies another entity than
		// :authority makes the request malformed; the two are compared
		// after scheme-based normalisation (RFC 3986 §6.2.3: case, the
		// default port).
		if !sameAuthority(authority, host, scheme) {
			return ErrH2HostMismatch
		}
	case authority == nil && host == nil:
		// RFC 9113 §8.3.1: http and https have a mandatory authority, so
		// one of the two MUST be there.
		if equalFold(scheme, "http") || equalFold(scheme, "https") {
			return ErrH2MissingAuthority
		}
	}
	// As the HTTP/1 parser: the path is decoded into PATH_INFO, so an
	// escaped NUL, CR or LF in it is refused (the query stays encoded).
	r.URI, r.Path = path, path
	for i, c := range path {
		if c == '?' {
			r.Path, r.Query = path[:i], path[i+1:]
			break
		}
	}
	if escapesControl(r.Path) {
		return ErrH2BadPathEscape
	}
	if lim := b.limits.MaxBodyBytes; lim > 0 && r.ContentLength > lim {
		return ErrH2BodyTooLarge
	}
	r.Method = method
	if host != nil {
		r.Host = host
	} else if authority != nil {
		// The host field the HTTP/1 request would have had, first.
		r.Host = authority
		hdrs = append(hdrs, Header{Name: b.arena[0:4:4], Value: authority})
	}
	if proto != nil {
		r.Upgrade = proto
	}
	for _, f := range b.fields {
		n := f.off + f.nameLen
		hdrs = append(hdrs, Header{Name: b.arena[f.off:n:n], Value: b.arena[n : n+f.valLen : n+f.valLen]})
	}
	r.Headers = hdrs
	return nil
}

// CheckH2ContentLength enforces RFC 9113 §8.1.1 on a request body: a
// request whose DATA payloads (padding excluded) add up to other than its
// content-length is malformed. declared is Request.ContentLength (-1:
// none), received the payload bytes so far and end whether END_STREAM has
// been seen. It returns a stream error for stream id, or nil.
func CheckH2ContentLength(id uint32, declared, received int64, end bool) error {
	if declared >= 0 && (received > declared || (end && received != declared)) {
		return ErrH2ContentLengthMismatch.withStream(id)
	}
	return nil
}

// validH2Value reports whether v is a field value HTTP/2 may carry and the
// HTTP/1 parser would accept: no control byte but an inner HTAB, no
// leading or trailing SP or HTAB (RFC 9113 §8.2.1).
func validH2Value(v string) bool {
	if len(v) > 0 && (isOWS(v[0]) || isOWS(v[len(v)-1])) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func validToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

// validScheme checks RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func validScheme(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for i, c := range s {
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alpha && (i == 0 || !isDigit(c) && c != '+' && c != '-' && c != '.') {
			return false
		}
	}
	return true
}

// validH2Path checks :path (RFC 9113 §8.3.1): "/"-rooted, or "*" for
// OPTIONS (compared case-sensitively, RFC 9110 §9.1), without whitespace or
// control bytes.
func validH2Path(method, path []byte) bool {
	if len(path) == 0 {
		return false
	}
	for _, c := range path {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return path[0] == '/' || (len(path) == 1 && path[0] == '*' && string(method) == "OPTIONS")
}

// sameAuthority compares two authorities as RFC 3986 §6.2.3 has a server
// normalise them for scheme: host case-insensitively, and an empty port or
// the scheme's default port (80 for http, 443 for https) as no port.
func sameAuthority(a, b, scheme []byte) bool {
	return sameName(stripDefaultPort(a, scheme), stripDefaultPort(b, scheme))
}

func stripDefaultPort(a, scheme []byte) []byte {
	host, port := SplitHostPort(a)
	if len(host) == len(a) {
		return a // no port
	}
	switch {
	case len(port) == 0,
		string(port) == "80" && equalFold(scheme, "http"),
		string(port) == "443" && equalFold(scheme, "https"):
		return host
	}
	return a
}

// equalFoldString compares s with the lower-case ASCII string low,
// ignoring ASCII case only (strings.EqualFold would also fold "ſ" to "s").
func equalFoldString(s, low string) bool {
	if len(s) != len(low) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != low[i] {
			return false
		}
	}
	return true
}
