package protocol

// Error is a protocol violation together with the HTTP status the proxy
// answers it with. Every Error ends the connection after the answer: the
// stream can no longer be trusted to be framed correctly.
type Error struct {
	Status int    // HTTP status to answer with (400, 413, 414, 431, 501, 502)
	Msg    string // short reason, also the text/plain body
	Metric string // stable counter name for this rejection
}

func (e *Error) Error() string { return "protocol: " + e.Msg }

// Sentinels for every rejection. They are compared by identity.
var (
	ErrBadRequestLine   = &Error{400, "malformed request line", "bad_request_line"}
	ErrBadHeader        = &Error{400, "malformed header field", "bad_header"}
	ErrBareLF           = &Error{400, "bare LF in request head", "bare_lf"}
	ErrObsFold          = &Error{400, "obsolete line folding", "obs_fold"}
	ErrSpaceBeforeColon = &Error{400, "whitespace before colon", "space_before_colon"}
	ErrCLAndTE          = &Error{400, "both Content-Length and Transfer-Encoding", "cl_and_te"}
	ErrBadContentLength = &Error{400, "invalid Content-Length", "bad_content_length"}
	ErrDupContentLength = &Error{400, "conflicting Content-Length", "dup_content_length"}
	ErrBadTE            = &Error{400, "invalid Transfer-Encoding", "bad_transfer_encoding"}
	ErrUnknownTE        = &Error{501, "unsupported Transfer-Encoding", "unknown_transfer_encoding"}
	ErrMissingHost      = &Error{400, "missing Host header", "missing_host"}
	ErrDupHost          = &Error{400, "more than one Host header", "dup_host"}
	ErrBadHost          = &Error{400, "invalid Host header", "bad_host"}
	ErrBadVersion       = &Error{505, "HTTP version not supported", "bad_version"}
	// ErrNotHTTP is a request line whose third token is no HTTP-version:
	// the peer speaks something else (an invalid HTTP/2 preface, RFC 9113
	// §3.4, is one), so it gets no HTTP answer: Status 0 closes at once.
	ErrNotHTTP        = &Error{0, "not an HTTP/1.x request line", "not_http"}
	ErrBadChunk       = &Error{400, "malformed chunked body", "bad_chunk"}
	ErrBadPathEscape  = &Error{400, "percent-encoded NUL, CR or LF in the path", "bad_path_escape"}
	ErrExpectation    = &Error{417, "unsupported expectation", "bad_expect"}
	ErrURITooLong     = &Error{414, "URI too long", "uri_too_long"}
	ErrHeadTooLarge   = &Error{431, "request head too large", "head_too_large"}
	ErrTooManyHeaders = &Error{431, "too many header fields", "too_many_headers"}
	ErrBodyTooLarge   = &Error{413, "request body too large", "body_too_large"}
	ErrUwsgiTooLarge  = &Error{431, "request head too large for a uwsgi packet", "uwsgi_too_large"}

	ErrBadResponse = &Error{502, "malformed response head from backend", "bad_response"}
)
