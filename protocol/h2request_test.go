package protocol_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/protocol"
)

// h2GET is a minimal valid request's field section, then extra fields.
func h2GET(extra ...kv) []kv {
	return append([]kv{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "/"}}, extra...)
}

// h2With is h2GET with the pseudo-header field named k given value v, or
// left out when v is "\x00omit".
func h2With(k, v string, extra ...kv) []kv {
	var out []kv
	for _, f := range h2GET() {
		if f.K == k {
			if v != omit {
				out = append(out, kv{k, v})
			}
			continue
		}
		out = append(out, f)
	}
	return append(out, extra...)
}

const omit = "\x00omit"

// buildH2 feeds fields to b for stream id and finishes. It checks that
// Add's first error is Finish's.
func buildH2(tb testing.TB, b *protocol.H2RequestBuilder, id uint32, fields []kv) (*protocol.Request, error) {
	tb.Helper()
	b.Reset(id)
	var first error
	for _, f := range fields {
		if err := b.Add(f.K, f.V); err != nil && first == nil {
			first = err
		}
	}
	r, err := b.Finish()
	if first != nil && err != first {
		tb.Fatalf("Add failed with %v, Finish with %v", first, err)
	}
	if (r == nil) == (err == nil) {
		tb.Fatalf("Finish: request %v with error %v", r, err)
	}
	return r, err
}

// h2Want is the comparable part of a Request.
type h2Want struct {
	Method, URI, Path, Query, Host string
	ContentLength                  int64
	Expect100                      bool
	Upgrade                        string
	Headers                        []kv
}

func h2Got(r *protocol.Request) h2Want {
	w := h2Want{
		Method: string(r.Method), URI: string(r.URI), Path: string(r.Path), Query: string(r.Query),
		Host: string(r.Host), ContentLength: r.ContentLength, Expect100: r.Expect100, Upgrade: string(r.Upgrade),
	}
	for _, h := range r.Headers {
		w.Headers = append(w.Headers, kv{string(h.Name), string(h.Value)})
	}
	return w
}

func TestH2RequestValid(t *testing.T) {
	hostOnly := []kv{{"host", "example.com"}}
	tests := []struct {
		name    string
		fields  []kv
		connect bool // SETTINGS_ENABLE_CONNECT_PROTOCOL sent
		want    h2Want
	}{
		{
			name:   "minimal GET: host from :authority, put first",
			fields: h2GET(kv{"accept", "*/*"}),
			want: h2Want{Method: "GET", URI: "/", Path: "/", Host: "example.com", ContentLength: -1,
				Headers: []kv{{"host", "example.com"}, {"accept", "*/*"}}},
		},
		{
			name:   "path and query split at the first ?",
			fields: h2With(":path", "/a%20b/c?x=1&y=?z"),
			want: h2Want{Method: "GET", URI: "/a%20b/c?x=1&y=?z", Path: "/a%20b/c", Query: "x=1&y=?z",
				Host: "example.com", ContentLength: -1, Headers: hostOnly},
		},
		{
			name:   "escaped NUL in the query is the application's",
			fields: h2With(":path", "/?a=%00"),
			want: h2Want{Method: "GET", URI: "/?a=%00", Path: "/", Query: "a=%00", Host: "example.com",
				ContentLength: -1, Headers: hostOnly},
		},
		{
			name:   "host field without :authority",
			fields: h2With(":authority", omit, kv{"host", "h.example:8080"}),
			want: h2Want{Method: "GET", URI: "/", Path: "/", Host: "h.example:8080", ContentLength: -1,
				Headers: []kv{{"host", "h.example:8080"}}},
		},
		{
			name:   "host equal to :authority after normalisation: host kept, none added",
			fields: h2With(":authority", "Example.COM", kv{"accept", "a"}, kv{"host", "example.com:443"}),
			want: h2Want{Method: "GET", URI: "/", Path: "/", Host: "example.com:443", ContentLength: -1,
				Headers: []kv{{"accept", "a"}, {"host", "example.com:443"}}},
		},
		{
			name:   "empty port is the default port",
			fields: h2With(":authority", "example.com:", kv{"host", "example.com"}),
			want: h2Want{Method: "GET", URI: "/", Path: "/", Host: "example.com", ContentLength: -1,
				Headers: hostOnly},
		},
		{
			name:   "IPv6 :authority",
			fields: h2With(":authority", "[2001:db8::1]:8443"),
			want: h2Want{Method: "GET", URI: "/", Path: "/", Host: "[2001:db8::1]:8443", ContentLength: -1,
				Headers: []kv{{"host", "[2001:db8::1]:8443"}}},
		},
		{
			name:   "POST with content-length",
			fields: h2With(":method", "POST", kv{"content-type", "text/plain"}, kv{"content-length", "42"}),
			want: h2Want{Method: "POST", URI: "/", Path: "/", Host: "example.com", ContentLength: 42,
				Headers: []kv{{"host", "example.com"}, {"content-type", "text/plain"}, {"content-length", "42"}}},
		},
		{
			name:   "identical content-length values are one length (RFC 9110 §8.6)",
			fields: h2With(":method", "PUT", kv{"content-length", "5, 5"}, kv{"content-length", "05"}),
			want: h2Want{Method: "PUT", URI: "/", Path: "/", Host: "example.com", ContentLength: 5,
				Headers: []kv{{"host", "example.com"}, {"content-length", "5, 5"}, {"content-length", "05"}}},
		},
		{
			name:   "cookie crumbs stay apart (AppendEnviron joins them)",
			fields: h2GET(kv{"cookie", "a=1"}, kv{"accept", "x"}, kv{"cookie", "b=2"}),
			want: h2Want{Method: "GET", URI: "/", Path: "/", Host: "example.com", ContentLength: -1,
				Headers: []kv{{"host", "example.com"}, {"cookie", "a=1"}, {"accept", "x"}, {"cookie", "b=2"}}},
		},
		{
			name:   "te: trailers",
			fields: h2GET(kv{"te", "trailers"}, kv{"te", "Trailers"}),
			want: h2Want{Method: "GET", URI: "/", Path: "/", Host: "example.com", ContentLength: -1,
				Headers: []kv{{"host", "example.com"}, {"te", "trailers"}, {"te", "Trailers"}}},
		},
		{
			name:   "expect: 100-continue",
			fields: h2With(":method", "POST", kv{"expect", "100-Continue"}),
			want: h2Want{Method: "POST", URI: "/", Path: "/", Host: "example.com", ContentLength: -1, Expect100: true,
				Headers: []kv{{"host", "example.com"}, {"expect", "100-Continue"}}},
		},
		{
			name:   "OPTIONS *",
			fields: []kv{{":method", "OPTIONS"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", "*"}},
			want: h2Want{Method: "OPTIONS", URI: "*", Path: "*", Host: "example.com", ContentLength: -1,
				Headers: hostOnly},
		},
		{
			name:    "extended CONNECT for a WebSocket (RFC 8441)",
			fields:  h2With(":method", "CONNECT", kv{":protocol", "websocket"}, kv{"sec-websocket-version", "13"}),
			connect: true,
			want: h2Want{Method: "CONNECT", URI: "/", Path: "/", Host: "example.com", ContentLength: -1, Upgrade: "websocket",
				Headers: []kv{{"host", "example.com"}, {"sec-websocket-version", "13"}}},
		},
		{
			name:   "pseudo-header fields in any order",
			fields: []kv{{":path", "/p"}, {":authority", "a"}, {":scheme", "http"}, {":method", "DELETE"}},
			want: h2Want{Method: "DELETE", URI: "/p", Path: "/p", Host: "a", ContentLength: -1,
				Headers: []kv{{"host", "a"}}},
		},
		{
			name:   "a scheme without mandatory authority needs none",
			fields: []kv{{":method", "GET"}, {":scheme", "x-my.scheme+1"}, {":path", "/"}},
			want:   h2Want{Method: "GET", URI: "/", Path: "/", ContentLength: -1},
		},
		{
			name:   "values: empty, inner HTAB and SP, obs-text",
			fields: h2GET(kv{"x-empty", ""}, kv{"x-ws", "a\tb c"}, kv{"x-obs", "caf\xc3\xa9"}),
			want: h2Want{Method: "GET", URI: "/", Path: "/", Host: "example.com", ContentLength: -1,
				Headers: []kv{{"host", "example.com"}, {"x-empty", ""}, {"x-ws", "a\tb c"}, {"x-obs", "caf\xc3\xa9"}}},
		},
		{
			name:   "every tchar in a name",
			fields: h2GET(kv{"!#$%&'*+-.^_`|~09az", "v"}),
			want: h2Want{Method: "GET", URI: "/", Path: "/", Host: "example.com", ContentLength: -1,
				Headers: []kv{{"host", "example.com"}, {"!#$%&'*+-.^_`|~09az", "v"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := protocol.NewH2RequestBuilder(protocol.Limits{}, tt.connect)
			r, err := buildH2(t, b, 1, tt.fields)
			if err != nil {
				t.Fatal(err)
			}
			if got := h2Got(r); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			if r.Minor != 1 || r.Chunked || r.HeadLen != 0 || !r.KeepAlive {
				t.Fatalf("HTTP/1-only fields: %+v", r)
			}
			if string(b.Scheme()) != fieldValue(tt.fields, ":scheme") {
				t.Fatalf("Scheme %q", b.Scheme())
			}
		})
	}
}

func fieldValue(fields []kv, name string) string {
	for _, f := range fields {
		if f.K == name {
			return f.V
		}
	}
	return ""
}

func TestH2RequestErrors(t *testing.T) {
	tests := []struct {
		name    string
		fields  []kv
		connect bool
		err     error
	}{
		// RFC 9113 §8.2.1: names.
		{name: "upper-case name", fields: h2GET(kv{"Accept", "x"}), err: protocol.ErrH2BadFieldName},
		{name: "empty name", fields: h2GET(kv{"", "x"}), err: protocol.ErrH2BadFieldName},
		{name: "space in a name", fields: h2GET(kv{"a b", "x"}), err: protocol.ErrH2BadFieldName},
		{name: "colon inside a name", fields: h2GET(kv{"a:b", "x"}), err: protocol.ErrH2BadFieldName},
		{name: "non-ASCII name", fields: h2GET(kv{"caf\xc3\xa9", "x"}), err: protocol.ErrH2BadFieldName},
		// RFC 9113 §8.2.1: values.
		{name: "NUL in a value", fields: h2GET(kv{"x", "a\x00b"}), err: protocol.ErrH2BadFieldValue},
		{name: "CR in a value", fields: h2GET(kv{"x", "a\rb"}), err: protocol.ErrH2BadFieldValue},
		{name: "LF in a value", fields: h2GET(kv{"x", "a\nb"}), err: protocol.ErrH2BadFieldValue},
		{name: "other control byte in a value", fields: h2GET(kv{"x", "a\x01b"}), err: protocol.ErrH2BadFieldValue},
		{name: "DEL in a value", fields: h2GET(kv{"x", "a\x7f"}), err: protocol.ErrH2BadFieldValue},
		{name: "leading SP", fields: h2GET(kv{"x", " a"}), err: protocol.ErrH2BadFieldValue},
		{name: "trailing HTAB", fields: h2GET(kv{"x", "a\t"}), err: protocol.ErrH2BadFieldValue},
		{name: "whitespace-only value", fields: h2GET(kv{"x", " "}), err: protocol.ErrH2BadFieldValue},
		{name: "LF in :path", fields: h2With(":path", "/a\nb"), err: protocol.ErrH2BadFieldValue},
		{name: "trailing SP in :authority", fields: h2With(":authority", "a "), err: protocol.ErrH2BadFieldValue},
		// RFC 9113 §8.2.2: connection-specific fields.
		{name: "connection", fields: h2GET(kv{"connection", "keep-alive"}), err: protocol.ErrH2ConnectionHeader},
		{name: "keep-alive", fields: h2GET(kv{"keep-alive", "timeout=5"}), err: protocol.ErrH2ConnectionHeader},
		{name: "proxy-connection", fields: h2GET(kv{"proxy-connection", "close"}), err: protocol.ErrH2ConnectionHeader},
		{name: "transfer-encoding", fields: h2GET(kv{"transfer-encoding", "chunked"}), err: protocol.ErrH2ConnectionHeader},
		{name: "upgrade", fields: h2GET(kv{"upgrade", "websocket"}), err: protocol.ErrH2ConnectionHeader},
		{name: "te: gzip", fields: h2GET(kv{"te", "gzip"}), err: protocol.ErrH2BadTE},
		{name: "te: trailers, gzip", fields: h2GET(kv{"te", "trailers, gzip"}), err: protocol.ErrH2BadTE},
		{name: "te: long s folded", fields: h2GET(kv{"te", "trailer\u017f"}), err: protocol.ErrH2BadTE},
		// RFC 9113 §8.3: pseudo-header fields.
		{name: ":status in a request", fields: h2GET(kv{":status", "200"}), err: protocol.ErrH2UnknownPseudo},
		{name: "unknown pseudo", fields: append([]kv{{":foo", "x"}}, h2GET()...), err: protocol.ErrH2UnknownPseudo},
		{name: "bare colon", fields: append([]kv{{":", "x"}}, h2GET()...), err: protocol.ErrH2UnknownPseudo},
		{name: "upper-case pseudo", fields: h2With(":method", omit, kv{":Method", "GET"}), err: protocol.ErrH2UnknownPseudo},
		{name: ":protocol not enabled", fields: h2With(":method", "CONNECT", kv{":protocol", "websocket"}), err: protocol.ErrH2UnknownPseudo},
		{name: "repeated :path", fields: h2GET(kv{":path", "/"}), err: protocol.ErrH2DupPseudo},
		{name: "repeated :method", fields: append([]kv{{":method", "GET"}}, h2GET()...), err: protocol.ErrH2DupPseudo},
		{name: "pseudo after regular", fields: h2With(":path", omit, kv{"accept", "x"}, kv{":path", "/"}), err: protocol.ErrH2PseudoAfterRegular},
		{name: "no :method", fields: h2With(":method", omit), err: protocol.ErrH2MissingPseudo},
		{name: "no :scheme", fields: h2With(":scheme", omit), err: protocol.ErrH2MissingPseudo},
		{name: "no :path", fields: h2With(":path", omit), err: protocol.ErrH2MissingPseudo},
		{name: "no fields at all", fields: nil, err: protocol.ErrH2MissingPseudo},
		{name: "empty :method", fields: h2With(":method", ""), err: protocol.ErrH2BadMethod},
		{name: "empty :method alone is present, not absent", fields: []kv{{":method", ""}}, err: protocol.ErrH2BadMethod},
		{name: "method not a token", fields: h2With(":method", "G(T"), err: protocol.ErrH2BadMethod},
		{name: "empty :scheme", fields: h2With(":scheme", ""), err: protocol.ErrH2BadScheme},
		{name: ":scheme starts with a digit", fields: h2With(":scheme", "1http"), err: protocol.ErrH2BadScheme},
		{name: ":scheme with a slash", fields: h2With(":scheme", "ht/tp"), err: protocol.ErrH2BadScheme},
		// RFC 9113 §8.3.1: :path.
		{name: "empty :path", fields: h2With(":path", ""), err: protocol.ErrH2BadPath},
		{name: "relative :path", fields: h2With(":path", "a/b"), err: protocol.ErrH2BadPath},
		{name: "absolute-form :path", fields: h2With(":path", "http://a/"), err: protocol.ErrH2BadPath},
		{name: "* for GET", fields: h2With(":path", "*"), err: protocol.ErrH2BadPath},
		{name: "SP in :path", fields: h2With(":path", "/a b"), err: protocol.ErrH2BadPath},
		{name: "HTAB in :path", fields: h2With(":path", "/a\tb"), err: protocol.ErrH2BadPath},
		{name: "DEL in :path is a value error first", fields: h2With(":path", "/\x7f"), err: protocol.ErrH2BadFieldValue},
		// RFC 9113 §8.3.1: :authority and host.
		{name: "empty :authority", fields: h2With(":authority", ""), err: protocol.ErrH2BadAuthority},
		{name: "userinfo in :authority", fields: h2With(":authority", "u@example.com"), err: protocol.ErrH2BadAuthority},
		{name: "bad port in :authority", fields: h2With(":authority", "example.com:x"), err: protocol.ErrH2BadAuthority},
		{name: "unbracketed IPv6 host", fields: h2With(":authority", "[::1"), err: protocol.ErrH2BadAuthority},
		{name: "empty host", fields: h2With(":authority", omit, kv{"host", ""}), err: protocol.ErrH2BadAuthority},
		{name: "host with a slash", fields: h2With(":authority", omit, kv{"host", "a/b"}), err: protocol.ErrH2BadAuthority},
		{name: "https without authority", fields: h2With(":authority", omit), err: protocol.ErrH2MissingAuthority},
		{name: "http without authority", fields: []kv{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}}, err: protocol.ErrH2MissingAuthority},
		{name: "host differs", fields: h2GET(kv{"host", "other.example"}), err: protocol.ErrH2HostMismatch},
		{name: "host differs in port", fields: h2GET(kv{"host", "example.com:8443"}), err: protocol.ErrH2HostMismatch},
		{name: "443 is not http's default", fields: h2With(":scheme", "http", kv{"host", "example.com:443"}), err: protocol.ErrH2HostMismatch},
		{name: "two host fields", fields: h2With(":authority", omit, kv{"host", "a"}, kv{"host", "a"}), err: protocol.ErrH2DupHost},
		// RFC 9113 §8.5, RFC 8441 §4: CONNECT.
		{name: "CONNECT with :path", fields: []kv{{":method", "CONNECT"}, {":authority", "a:443"}, {":path", "/"}}, err: protocol.ErrH2BadConnect},
		{name: "CONNECT with :scheme", fields: []kv{{":method", "CONNECT"}, {":authority", "a:443"}, {":scheme", "https"}}, err: protocol.ErrH2BadConnect},
		{name: "CONNECT without :authority", fields: []kv{{":method", "CONNECT"}}, err: protocol.ErrH2MissingPseudo},
		{name: "CONNECT without a port", fields: []kv{{":method", "CONNECT"}, {":authority", "a"}}, err: protocol.ErrH2BadAuthority},
		{name: "CONNECT is not proxied", fields: []kv{{":method", "CONNECT"}, {":authority", "a:443"}}, err: protocol.ErrH2ConnectUnsupported},
		{name: ":protocol on GET", fields: h2GET(kv{":protocol", "websocket"}), connect: true, err: protocol.ErrH2BadConnect},
		{name: "extended CONNECT without :path", fields: []kv{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"}, {":authority", "a"}}, connect: true, err: protocol.ErrH2MissingPseudo},
		{name: "extended CONNECT without :authority", fields: []kv{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "https"}, {":path", "/"}}, connect: true, err: protocol.ErrH2MissingPseudo},
		// Regular fields with a meaning.
		{name: "content-length not a number", fields: h2GET(kv{"content-length", "x"}), err: protocol.ErrH2BadContentLength},
		{name: "empty content-length", fields: h2GET(kv{"content-length", ""}), err: protocol.ErrH2BadContentLength},
		{name: "negative content-length", fields: h2GET(kv{"content-length", "-1"}), err: protocol.ErrH2BadContentLength},
		{name: "content-length list of different values", fields: h2GET(kv{"content-length", "1, 2"}), err: protocol.ErrH2BadContentLength},
		{name: "content-length overflow", fields: h2GET(kv{"content-length", "9999999999999999999"}), err: protocol.ErrH2BadContentLength},
		{name: "differing content-length fields", fields: h2GET(kv{"content-length", "1"}, kv{"content-length", "2"}), err: protocol.ErrH2DupContentLength},
		{name: "unknown expectation", fields: h2GET(kv{"expect", "x"}), err: protocol.ErrH2Expectation},
		// As the HTTP/1 parser: escapes the path cannot decode.
		{name: "escaped NUL in the path", fields: h2With(":path", "/%00"), err: protocol.ErrH2BadPathEscape},
		{name: "escaped CR in the path", fields: h2With(":path", "/a%0d"), err: protocol.ErrH2BadPathEscape},
		{name: "escaped LF in the path", fields: h2With(":path", "/a%0A?x"), err: protocol.ErrH2BadPathEscape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := protocol.NewH2RequestBuilder(protocol.Limits{}, tt.connect)
			_, err := buildH2(t, b, 7, tt.fields)
			checkH2Err(t, err, tt.err, 7)
		})
	}
}

// checkH2Err checks that err is want: a stream error for stream id with
// PROTOCOL_ERROR, or the *Error sentinel itself.
func checkH2Err(t *testing.T, err, want error, id uint32) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
	switch w := want.(type) {
	case *protocol.H2StreamError:
		var se *protocol.H2StreamError
		if !errors.As(err, &se) || se.StreamID != id || se.Code != protocol.H2ProtocolError || se == w {
			t.Fatalf("got %#v, want a copy of %v on stream %d", err, w, id)
		}
	case *protocol.Error:
		if err != want {
			t.Fatalf("got %#v, want the sentinel", err)
		}
	}
}

func TestH2RequestLimits(t *testing.T) {
	base := h2GET(kv{"x-a", "12345"}, kv{"x-b", "678"})
	size := 0 // RFC 9113 §6.5.2
	for _, f := range base {
		size += len(f.K) + len(f.V) + 32
	}
	tests := []struct {
		name   string
		lim    protocol.Limits
		fields []kv
		err    error
	}{
		{name: "header list at the limit", lim: protocol.Limits{MaxHeadBytes: size}, fields: base},
		{name: "header list one over", lim: protocol.Limits{MaxHeadBytes: size - 1}, fields: base, err: protocol.ErrH2HeaderListTooLarge},
		{name: "pseudo-header fields count", lim: protocol.Limits{MaxHeadBytes: size - 32 - 3 - 3}, fields: base, err: protocol.ErrH2HeaderListTooLarge},
		{name: "huge value", lim: protocol.Limits{}, fields: h2GET(kv{"x", strings.Repeat("v", protocol.DefaultMaxHeadBytes)}), err: protocol.ErrH2HeaderListTooLarge},
		{name: "too large beats malformed later", lim: protocol.Limits{MaxHeadBytes: size - 1}, fields: append(base, kv{"Bad", "x"}), err: protocol.ErrH2HeaderListTooLarge},
		{name: "malformed first beats too large", lim: protocol.Limits{MaxHeadBytes: size}, fields: append(h2GET(kv{"Bad", "x"}), base[4:]...), err: protocol.ErrH2BadFieldName},
		{name: "header count at the limit", lim: protocol.Limits{MaxHeaders: 2}, fields: base},
		{name: "header count one over", lim: protocol.Limits{MaxHeaders: 1}, fields: base, err: protocol.ErrH2TooManyHeaders},
		{name: "host counts as a field", lim: protocol.Limits{MaxHeaders: 1}, fields: h2With(":authority", omit, kv{"host", "a"}, kv{"x", "y"}), err: protocol.ErrH2TooManyHeaders},
		{name: "path at the limit", lim: protocol.Limits{MaxURIBytes: 4}, fields: h2With(":path", "/a?b")},
		{name: "path one over", lim: protocol.Limits{MaxURIBytes: 3}, fields: h2With(":path", "/a?b"), err: protocol.ErrH2URITooLong},
		{name: "body at the limit", lim: protocol.Limits{MaxBodyBytes: 10}, fields: h2GET(kv{"content-length", "10"})},
		{name: "body one over", lim: protocol.Limits{MaxBodyBytes: 10}, fields: h2GET(kv{"content-length", "11"}), err: protocol.ErrH2BodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := protocol.NewH2RequestBuilder(tt.lim, false)
			_, err := buildH2(t, b, 3, tt.fields)
			if tt.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkH2Err(t, err, tt.err, 3)
			if e, ok := tt.err.(*protocol.Error); ok && protocol.StatusText(e.Status) == "Error" {
				t.Fatalf("status %d has no reason phrase", e.Status)
			}
		})
	}
}

// TestH2RequestSticky checks that the first error sticks until Reset, and
// that a builder is reusable after it and after a larger request.
func TestH2RequestSticky(t *testing.T) {
	b := protocol.NewH2RequestBuilder(protocol.Limits{}, false)
	b.Reset(5)
	b.Add(":method", "GET")
	err := b.Add("Bad", "x")
	checkH2Err(t, err, protocol.ErrH2BadFieldName, 5)
	if err2 := b.Add(":path", "/"); err2 != err {
		t.Fatalf("later Add: %v", err2)
	}
	if _, err3 := b.Finish(); err3 != err {
		t.Fatalf("Finish: %v", err3)
	}
	big := h2GET()
	for i := range 20 {
		big = append(big, kv{fmt.Sprintf("x-%d", i), strings.Repeat("v", i)})
	}
	if _, err := buildH2(t, b, 9, big); err != nil {
		t.Fatal(err)
	}
	r, err := buildH2(t, b, 11, h2With(":path", "/small", kv{"a", "b"}))
	if err != nil {
		t.Fatal(err)
	}
	want := h2Want{Method: "GET", URI: "/small", Path: "/small", Host: "example.com", ContentLength: -1,
		Headers: []kv{{"host", "example.com"}, {"a", "b"}}}
	if got := h2Got(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("reused: %+v", got)
	}
	// Init keeps nothing of the old limits or setting.
	b.Init(protocol.Limits{MaxHeaders: 1}, true)
	_, err = buildH2(t, b, 13, h2GET(kv{"a", "b"}, kv{"c", "d"}))
	checkH2Err(t, err, protocol.ErrH2TooManyHeaders, 13)
}

// TestH2RequestHPACK feeds the builder from a real hpack.Decoder, one byte
// of the block at a time, and checks that after a refused field section
// the connection's decoder stays in step: the next request refers to the
// dynamic table entries the refused one added.
func TestH2RequestHPACK(t *testing.T) {
	var blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	encode := func(fields []kv) []byte {
		blk.Reset()
		for _, f := range fields {
			if err := enc.WriteField(hpack.HeaderField{Name: f.K, Value: f.V}); err != nil {
				t.Fatal(err)
			}
		}
		return bytes.Clone(blk.Bytes())
	}
	b := protocol.NewH2RequestBuilder(protocol.Limits{MaxHeadBytes: 600}, false)
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) { b.Add(f.Name, f.Value) })
	decode := func(id uint32, block []byte) (*protocol.Request, error) {
		b.Reset(id)
		for i := range block {
			if _, err := dec.Write(block[i : i+1]); err != nil {
				t.Fatalf("hpack: %v", err)
			}
		}
		if err := dec.Close(); err != nil {
			t.Fatalf("hpack: %v", err)
		}
		return b.Finish()
	}
	fields := h2GET(kv{"cookie", "a=1"}, kv{"x-big", strings.Repeat("b", 300)}, kv{"cookie", "b=2"})
	_, err := decode(1, encode(append(fields, kv{"x-more", strings.Repeat("m", 300)})))
	checkH2Err(t, err, protocol.ErrH2HeaderListTooLarge, 1)
	second := encode(fields)
	if len(second) > 12 {
		t.Fatalf("second block %d bytes: not from the dynamic table", len(second))
	}
	r, err := decode(3, second)
	if err != nil {
		t.Fatal(err)
	}
	want := h2Want{Method: "GET", URI: "/", Path: "/", Host: "example.com", ContentLength: -1,
		Headers: []kv{{"host", "example.com"}, {"cookie", "a=1"}, {"x-big", strings.Repeat("b", 300)}, {"cookie", "b=2"}}}
	if got := h2Got(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	pkt, err := protocol.AppendEnviron(nil, r, &protocol.ConnInfo{Proto: "HTTP/2", TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	if v := envVar(uwsgiVars(t, pkt), "HTTP_COOKIE"); v != "a=1; b=2" {
		t.Fatalf("HTTP_COOKIE %q", v)
	}
}

func envVar(vars []kv, k string) string {
	for _, v := range vars {
		if v.K == k {
			return v.V
		}
	}
	return "\x00absent"
}

// TestH2RequestEnvironMatchesHTTP1 checks that a request sent over HTTP/2
// and the same request over HTTP/1.1 give the node the same environ, but
// for SERVER_PROTOCOL.
func TestH2RequestEnvironMatchesHTTP1(t *testing.T) {
	tests := []struct {
		name string
		h1   string
		h2   []kv
	}{
		{
			name: "browser GET",
			h1: "GET /articles/2024/x?page=2 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0\r\n" +
				"Accept: text/html\r\nAccept-Encoding: gzip, br\r\nCookie: sid=3f; theme=dark\r\n\r\n",
			h2: []kv{{":method", "GET"}, {":scheme", "https"}, {":authority", "www.example.com"},
				{":path", "/articles/2024/x?page=2"}, {"user-agent", "Mozilla/5.0"}, {"accept", "text/html"},
				{"accept-encoding", "gzip, br"}, {"cookie", "sid=3f"}, {"cookie", "theme=dark"}},
		},
		{
			name: "POST: CONTENT_TYPE and CONTENT_LENGTH, percent-decoded PATH_INFO, joined fields",
			h1: "POST /a%20b/c%2Fd?x=1 HTTP/1.1\r\nHost: example.com:8443\r\nContent-Length: 3\r\n" +
				"Content-Type: text/plain\r\nAccept: a\r\nX-Forwarded-For: 1.2.3.4\r\naccept: b\r\n" +
				"Expect: 100-continue\r\nTE: trailers\r\n\r\n",
			h2: []kv{{":method", "POST"}, {":scheme", "https"}, {":authority", "example.com:8443"},
				{":path", "/a%20b/c%2Fd?x=1"}, {"content-length", "3"}, {"content-type", "text/plain"},
				{"accept", "a"}, {"x-forwarded-for", "1.2.3.4"}, {"accept", "b"}, {"expect", "100-continue"},
				{"te", "trailers"}},
		},
		{
			name: "host field instead of :authority",
			h1:   "DELETE /r HTTP/1.1\r\nHost: h.example\r\nX-Y: z\r\n\r\n",
			h2:   []kv{{":method", "DELETE"}, {":scheme", "https"}, {":path", "/r"}, {"host", "h.example"}, {"x-y", "z"}},
		},
		{
			name: "OPTIONS *",
			h1:   "OPTIONS * HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
			h2:   []kv{{":method", "OPTIONS"}, {":scheme", "https"}, {":authority", "[2001:db8::1]:443"}, {":path", "*"}},
		},
		{
			name: "spoofable names dropped alike",
			h1:   "GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: evil\r\nProxy: http://evil\r\nX-Ok: 1\r\n\r\n",
			h2: []kv{{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"},
				{"x_forwarded_for", "evil"}, {"proxy", "http://evil"}, {"x-ok", "1"}},
		},
	}
	ci1 := &protocol.ConnInfo{ServerPort: "443", RemoteAddr: "192.0.2.7", RemotePort: "54321", TLS: true}
	ci2 := *ci1
	ci2.Proto = "HTTP/2"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := environ(t, tt.h1, ci1)
			r, err := buildH2(t, protocol.NewH2RequestBuilder(protocol.Limits{}, false), 1, tt.h2)
			if err != nil {
				t.Fatal(err)
			}
			pkt, err := protocol.AppendEnviron(nil, r, &ci2)
			if err != nil {
				t.Fatal(err)
			}
			got := uwsgiVars(t, pkt)
			if v := envVar(got, "SERVER_PROTOCOL"); v != "HTTP/2" {
				t.Fatalf("SERVER_PROTOCOL %q", v)
			}
			if !reflect.DeepEqual(withoutProto(got), withoutProto(want)) {
				t.Fatalf("h2:\n%v\nh1:\n%v", got, want)
			}
		})
	}
}

func withoutProto(vars []kv) []kv {
	var out []kv
	for _, v := range vars {
		if v.K != "SERVER_PROTOCOL" {
			out = append(out, v)
		}
	}
	return out
}

func TestCheckH2ContentLength(t *testing.T) {
	tests := []struct {
		name               string
		declared, received int64
		end, bad           bool
	}{
		{name: "no content-length", declared: -1, received: 1 << 40, end: true},
		{name: "under, more to come", declared: 10, received: 4},
		{name: "exact at the end", declared: 10, received: 10, end: true},
		{name: "over", declared: 10, received: 11, bad: true},
		{name: "short at the end", declared: 10, received: 9, end: true, bad: true},
		{name: "END_STREAM on HEADERS with a length", declared: 5, received: 0, end: true, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := protocol.CheckH2ContentLength(9, tt.declared, tt.received, tt.end)
			if !tt.bad {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkH2Err(t, err, protocol.ErrH2ContentLengthMismatch, 9)
		})
	}
}

var h2RequestStreamErrors = []*protocol.H2StreamError{
	protocol.ErrH2BadFieldName, protocol.ErrH2BadFieldValue, protocol.ErrH2ConnectionHeader, protocol.ErrH2BadTE,
	protocol.ErrH2UnknownPseudo, protocol.ErrH2DupPseudo, protocol.ErrH2PseudoAfterRegular,
	protocol.ErrH2MissingPseudo, protocol.ErrH2BadMethod, protocol.ErrH2BadScheme, protocol.ErrH2BadPath,
	protocol.ErrH2BadAuthority, protocol.ErrH2MissingAuthority, protocol.ErrH2HostMismatch, protocol.ErrH2DupHost,
	protocol.ErrH2BadConnect, protocol.ErrH2BadContentLength, protocol.ErrH2DupContentLength,
	protocol.ErrH2ContentLengthMismatch,
}

var h2RequestRefusals = []*protocol.Error{
	protocol.ErrH2HeaderListTooLarge, protocol.ErrH2TooManyHeaders, protocol.ErrH2URITooLong,
	protocol.ErrH2BodyTooLarge, protocol.ErrH2Expectation, protocol.ErrH2BadPathEscape,
	protocol.ErrH2ConnectUnsupported, protocol.ErrH2Response101,
}

// TestH2RequestSentinels checks the new sentinels as TestH2ErrorSentinels
// and TestErrorSentinels check theirs, with metric names unique across
// all HTTP/2 errors.
func TestH2RequestSentinels(t *testing.T) {
	metrics := map[string]bool{}
	for _, e := range h2ConnErrors {
		metrics[e.Metric] = true
	}
	for _, e := range h2StreamErrors {
		metrics[e.Metric] = true
	}
	unique := func(m string) {
		t.Helper()
		if !strings.HasPrefix(m, "h2_") || metrics[m] {
			t.Errorf("metric %q: not h2_ or used twice", m)
		}
		metrics[m] = true
	}
	for _, e := range h2RequestStreamErrors {
		if e.StreamID != 0 || e.Code != protocol.H2ProtocolError || e.Reason == "" ||
			!strings.HasPrefix(e.Error(), "protocol: http2: ") {
			t.Errorf("%#v: bad sentinel", e)
		}
		unique(e.Metric)
	}
	for _, e := range h2RequestRefusals {
		if !strings.HasPrefix(e.Error(), "protocol: ") || e.Msg == "" || protocol.StatusText(e.Status) == "Error" {
			t.Errorf("%#v: bad sentinel", e)
		}
		if !errors.Is(fmt.Errorf("wrapped: %w", e), e) {
			t.Errorf("%v: errors.Is fails through wrapping", e)
		}
		unique(e.Metric)
	}
}

// raceEnabled reports whether the test binary was built with -race, which
// makes allocation counts meaningless.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// h2BrowserGET is browserGET's field section.
var h2BrowserGET = []kv{
	{":method", "GET"}, {":scheme", "https"}, {":authority", "www.example.com"},
	{":path", "/articles/2024/blastbeat-benchmarks?page=2"},
	{"user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
	{"accept", "text/html,application/xhtml+xml"}, {"accept-language", "en-US,en;q=0.5"},
	{"accept-encoding", "gzip, deflate, br"}, {"cookie", "sid=3f2a9c"}, {"cookie", "theme=dark"},
}

// TestH2RequestAllocs enforces the zero-allocation hot path: a reused
// builder copies fields into its arena and builds the Request without
// allocating once the arena has grown.
func TestH2RequestAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("the race detector allocates")
	}
	b := protocol.NewH2RequestBuilder(protocol.Limits{}, false)
	build := func() {
		b.Reset(1)
		for _, f := range h2BrowserGET {
			b.Add(f.K, f.V)
		}
		if _, err := b.Finish(); err != nil {
			t.Fatal(err)
		}
	}
	if allocs := testing.AllocsPerRun(100, build); allocs != 0 {
		t.Fatalf("%v allocations per request", allocs)
	}
}

func BenchmarkH2RequestBuild(b *testing.B) {
	n := 0
	for _, f := range h2BrowserGET {
		n += len(f.K) + len(f.V)
	}
	bld := protocol.NewH2RequestBuilder(protocol.Limits{}, false)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		bld.Reset(1)
		for _, f := range h2BrowserGET {
			bld.Add(f.K, f.V)
		}
		if _, err := bld.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkH2RequestEnviron is the whole request path but HPACK: build the
// request, then its environ.
func BenchmarkH2RequestEnviron(b *testing.B) {
	bld := protocol.NewH2RequestBuilder(protocol.Limits{}, false)
	ci := &protocol.ConnInfo{ServerPort: "443", RemoteAddr: "192.0.2.7", RemotePort: "54321", TLS: true, Proto: "HTTP/2"}
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		bld.Reset(1)
		for _, f := range h2BrowserGET {
			bld.Add(f.K, f.V)
		}
		r, err := bld.Finish()
		if err != nil {
			b.Fatal(err)
		}
		if dst, err = protocol.AppendEnviron(dst[:0], r, ci); err != nil {
			b.Fatal(err)
		}
	}
}

// h2FuzzNames are the names that mean something to the builder; the fuzz
// input names them with one byte.
var h2FuzzNames = []string{
	":method", ":scheme", ":authority", ":path", ":protocol", ":status", "host", "content-length",
	"cookie", "te", "expect", "connection", "transfer-encoding", "content-type", "x_under", "proxy",
}

// h2FuzzDict is the first length byte that stands for h2FuzzNames[b-h2FuzzDict].
const h2FuzzDict = 0xf0

// h2FuzzFields decodes fuzz input: a flags byte (bit 0: the builder
// accepts :protocol), then fields as a length byte and name (a length byte
// of h2FuzzDict or more stands for a name of h2FuzzNames instead), a length
// byte and value, the last cut short where data ends.
func h2FuzzFields(data []byte) (connect bool, fields []kv) {
	if len(data) == 0 {
		return false, nil
	}
	connect, data = data[0]&1 != 0, data[1:]
	take := func(dict bool) string {
		if len(data) == 0 {
			return ""
		}
		if dict && data[0] >= h2FuzzDict {
			s := h2FuzzNames[int(data[0]-h2FuzzDict)%len(h2FuzzNames)]
			data = data[1:]
			return s
		}
		n := min(int(data[0]), len(data)-1)
		s := string(data[1 : 1+n])
		data = data[1+n:]
		return s
	}
	for len(data) > 0 {
		fields = append(fields, kv{take(true), take(false)})
	}
	return connect, fields
}

// h2FuzzInput encodes fields as h2FuzzFields decodes them, names of
// h2FuzzNames by their index. Names and values are at most 239 bytes.
func h2FuzzInput(connect bool, fields ...kv) []byte {
	var b []byte
	if connect {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	for _, f := range fields {
		if i := slices.Index(h2FuzzNames, f.K); i >= 0 {
			b = append(b, byte(h2FuzzDict+i))
		} else {
			b = append(b, byte(len(f.K)))
			b = append(b, f.K...)
		}
		b = append(b, byte(len(f.V)))
		b = append(b, f.V...)
	}
	return b
}

// FuzzH2Request builds a request from a fuzzed field list, directly and
// through HPACK (the block cut at a fuzzed point), which must agree. An
// accepted request must carry only fields HTTP/2 and HTTP/1 both allow,
// make a valid uwsgi packet, and make the same environ (but for
// SERVER_PROTOCOL) as the HTTP/1.1 request written from it, parsed by
// RequestParser. A refusal must be one of the sentinels.
func FuzzH2Request(f *testing.F) {
	f.Add(h2FuzzInput(false, h2BrowserGET...), uint16(7))
	f.Add(h2FuzzInput(false, h2GET(kv{"content-length", "5, 5"}, kv{"expect", "100-continue"})...), uint16(0))
	f.Add(h2FuzzInput(false, kv{":method", "OPTIONS"}, kv{":scheme", "http"}, kv{":path", "*"}, kv{"host", "a:80"}), uint16(3))
	f.Add(h2FuzzInput(true, h2With(":method", "CONNECT", kv{":protocol", "websocket"})...), uint16(20))
	f.Add(h2FuzzInput(false, kv{":method", "CONNECT"}, kv{":authority", "a:443"}), uint16(1))
	f.Add(h2FuzzInput(false, h2GET(kv{"Te", "x"}, kv{":path", "/%00"})...), uint16(9))
	ci := &protocol.ConnInfo{ServerPort: "443", RemoteAddr: "192.0.2.7", RemotePort: "1", TLS: true, Proto: "HTTP/2"}
	ci1 := *ci
	ci1.Proto = ""
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		connect, fields := h2FuzzFields(data)
		b := protocol.NewH2RequestBuilder(fuzzLimits, connect)
		r, err := buildH2(t, b, 1, fields)
		got := ""
		if err == nil {
			got = fmt.Sprintf("%+v", h2Got(r))
		}

		// The same fields through HPACK, the block cut at split.
		var blk bytes.Buffer
		enc := hpack.NewEncoder(&blk)
		for _, f := range fields {
			enc.WriteField(hpack.HeaderField{Name: f.K, Value: f.V})
		}
		b2 := protocol.NewH2RequestBuilder(fuzzLimits, connect)
		b2.Reset(1)
		dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) { b2.Add(f.Name, f.Value) })
		block := blk.Bytes()
		k := int(split) % (len(block) + 1)
		if _, err := dec.Write(block[:k]); err != nil {
			t.Fatal(err)
		}
		if _, err := dec.Write(block[k:]); err != nil {
			t.Fatal(err)
		}
		if err := dec.Close(); err != nil {
			t.Fatal(err)
		}
		r2, err2 := b2.Finish()
		if fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("direct: %v, through HPACK: %v", err, err2)
		}
		if err2 == nil && fmt.Sprintf("%+v", h2Got(r2)) != got {
			t.Fatalf("direct: %s\nthrough HPACK: %+v", got, h2Got(r2))
		}

		if err != nil {
			known := false
			for _, e := range h2RequestStreamErrors {
				known = known || errors.Is(err, e)
			}
			for _, e := range h2RequestRefusals {
				known = known || err == e
			}
			if !known {
				t.Fatalf("unknown error %#v", err)
			}
			return
		}
		for _, h := range r.Headers {
			for _, c := range h.Name {
				if c >= 'A' && c <= 'Z' || c <= ' ' || c == ':' || c >= 0x7f {
					t.Fatalf("accepted name %q", h.Name)
				}
			}
			if bytes.ContainsAny(h.Value, "\x00\r\n") || len(bytes.Trim(h.Value, " \t")) != len(h.Value) {
				t.Fatalf("accepted value %q", h.Value)
			}
		}
		pkt, err := protocol.AppendEnviron(nil, r, ci)
		if err == protocol.ErrUwsgiTooLarge {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		vars := uwsgiVars(t, pkt)

		if string(r.Method) == "CONNECT" {
			// RFC 8441's extended CONNECT has no HTTP/1.1 form (there a
			// CONNECT is authority-form, which is not proxied: 400).
			return
		}
		// The HTTP/1.1 request written from r (HTTP/1.0 when it has no
		// host, which HTTP/1.1 requires).
		var h1 bytes.Buffer
		version := " HTTP/1.1\r\n"
		if len(r.Host) == 0 {
			version = " HTTP/1.0\r\n"
		}
		h1.WriteString(string(r.Method) + " " + string(r.URI) + version)
		for _, h := range r.Headers {
			h1.WriteString(string(h.Name) + ": " + string(h.Value) + "\r\n")
		}
		h1.WriteString("\r\n")
		p := protocol.NewRequestParser(protocol.Limits{MaxHeadBytes: 1 << 20, MaxURIBytes: 1 << 20, MaxHeaders: 1000})
		_, ev, _, err := p.Feed(h1.Bytes())
		if ev != protocol.EvHead || err != nil {
			t.Fatalf("HTTP/1.1 refuses %q: %v", h1.Bytes(), err)
		}
		pkt1, err := protocol.AppendEnviron(nil, p.Request(), &ci1)
		if err != nil {
			t.Fatal(err)
		}
		if want := uwsgiVars(t, pkt1); !reflect.DeepEqual(withoutProto(vars), withoutProto(want)) {
			t.Fatalf("h2:\n%v\nh1 %q:\n%v", vars, h1.Bytes(), want)
		}
	})
}
