package protocol_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/blastbeat/blastbeat/protocol"
)

const (
	simpleGET  = "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n"
	simplePOST = "POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n" +
		"Content-Length: 11\r\n\r\nhello world"
	chunkedPOST = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;name=val\r\nhello\r\n6; x = \"q\" ;y\r\n world\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n"
)

func TestRequestValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		lim  protocol.Limits
		want []parsedReq
	}{
		{
			name: "GET",
			in:   simpleGET,
			want: []parsedReq{{
				Method: "GET", URI: "/index.html?x=1", Path: "/index.html", Query: "x=1",
				Host: "example.com", Minor: 1, ContentLength: -1, KeepAlive: true,
				Headers: []string{"Host: example.com", "User-Agent: t"},
				HeadLen: len(simpleGET), Ended: true,
			}},
		},
		{
			name: "POST with Content-Length",
			in:   simplePOST,
			want: []parsedReq{{
				Method: "POST", URI: "/submit", Path: "/submit", Host: "example.com", Minor: 1,
				ContentLength: 11, KeepAlive: true,
				Headers: []string{"Host: example.com", "Content-Type: text/plain", "Content-Length: 11"},
				HeadLen: len(simplePOST) - 11, Body: "hello world", Ended: true,
			}},
		},
		{
			name: "POST with Content-Length 0",
			in:   "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
			want: []parsedReq{{
				Method: "POST", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: 0,
				KeepAlive: true, Headers: []string{"Host: a", "Content-Length: 0"}, HeadLen: 47, Ended: true,
			}},
		},
		{
			name: "HTTP/1.0 without Host closes",
			in:   "GET / HTTP/1.0\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/", Path: "/", Minor: 0, ContentLength: -1, HeadLen: 18, Ended: true,
			}},
		},
		{
			name: "HTTP/1.0 keep-alive",
			in:   "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: a\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/", Path: "/", Host: "a", Minor: 0, ContentLength: -1, KeepAlive: true,
				Headers: []string{"Connection: Keep-Alive", "Host: a"}, HeadLen: 51, Ended: true,
			}},
		},
		{
			name: "HTTP/1.0 keep-alive then close",
			in:   "GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/", Path: "/", Minor: 0, ContentLength: -1,
				Headers: []string{"Connection: close, keep-alive"}, HeadLen: 49, Ended: true,
			}},
		},
		{
			// RFC 9112 §2.3: a higher minor version of a major version the
			// server implements is served as the highest it implements.
			name: "HTTP/1.2 is served as HTTP/1.1",
			in:   "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: -1, KeepAlive: true,
				Headers: []string{"Host: a"}, HeadLen: 27, Ended: true,
			}},
		},
		{
			name: "Connection: close",
			in:   "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: -1,
				Headers: []string{"Host: a", "Connection: close"}, HeadLen: 46, Ended: true,
			}},
		},
		{
			name: "close wins over a later keep-alive",
			in:   "GET / HTTP/1.1\r\nConnection: CLOSE\r\nConnection: keep-alive\r\nHost: a\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: -1,
				Headers: []string{"Connection: CLOSE", "Connection: keep-alive", "Host: a"}, HeadLen: 70, Ended: true,
			}},
		},
		{
			name: "pipelined",
			in:   simpleGET + simplePOST + "GET /last HTTP/1.1\r\nHost: b\r\n\r\n",
			want: []parsedReq{
				{
					Method: "GET", URI: "/index.html?x=1", Path: "/index.html", Query: "x=1",
					Host: "example.com", Minor: 1, ContentLength: -1, KeepAlive: true,
					Headers: []string{"Host: example.com", "User-Agent: t"},
					HeadLen: len(simpleGET), Ended: true,
				},
				{
					Method: "POST", URI: "/submit", Path: "/submit", Host: "example.com", Minor: 1,
					ContentLength: 11, KeepAlive: true,
					Headers: []string{"Host: example.com", "Content-Type: text/plain", "Content-Length: 11"},
					HeadLen: len(simplePOST) - 11, Body: "hello world", Ended: true,
				},
				{
					Method: "GET", URI: "/last", Path: "/last", Host: "b", Minor: 1, ContentLength: -1,
					KeepAlive: true, Headers: []string{"Host: b"}, HeadLen: 31, Ended: true,
				},
			},
		},
		{
			name: "pipelined after a chunked body, with an empty line between",
			in:   chunkedPOST + "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
			want: []parsedReq{
				{
					Method: "POST", URI: "/up", Path: "/up", Host: "a", Minor: 1, ContentLength: -1,
					Chunked: true, KeepAlive: true, Headers: []string{"Host: a", "Transfer-Encoding: chunked"},
					HeadLen: 58, Body: "hello world", Ended: true,
				},
				{
					Method: "GET", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: -1,
					KeepAlive: true, Headers: []string{"Host: a"}, HeadLen: 29, Ended: true,
				},
			},
		},
		{
			name: "chunked with extensions and trailers",
			in:   chunkedPOST,
			want: []parsedReq{{
				Method: "POST", URI: "/up", Path: "/up", Host: "a", Minor: 1, ContentLength: -1,
				Chunked: true, KeepAlive: true, Headers: []string{"Host: a", "Transfer-Encoding: chunked"},
				HeadLen: 58, Body: "hello world", Ended: true,
			}},
		},
		{
			name: "chunked, upper-case hex, leading zeros, Chunked in any case",
			in: "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n" +
				"00A\r\n0123456789\r\n1\r\n!\r\n000\r\n\r\n",
			want: []parsedReq{{
				Method: "PUT", URI: "/x", Path: "/x", Host: "a", Minor: 1, ContentLength: -1,
				Chunked: true, KeepAlive: true, Headers: []string{"Host: a", "Transfer-Encoding: Chunked"},
				HeadLen: 56, Body: "0123456789!", Ended: true,
			}},
		},
		{
			name: "chunked with an empty body",
			in:   "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			want: []parsedReq{{
				Method: "POST", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: -1,
				Chunked: true, KeepAlive: true, Headers: []string{"Host: a", "Transfer-Encoding: chunked"},
				HeadLen: 56, Ended: true,
			}},
		},
		{
			name: "Expect: 100-continue",
			in:   "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nhi",
			want: []parsedReq{{
				Method: "PUT", URI: "/f", Path: "/f", Host: "a", Minor: 1, ContentLength: 2,
				KeepAlive: true, Expect100: true,
				Headers: []string{"Host: a", "Expect: 100-Continue", "Content-Length: 2"},
				HeadLen: 69, Body: "hi", Ended: true,
			}},
		},
		{
			name: "Expect: 100-continue is ignored in HTTP/1.0",
			in:   "PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
			want: []parsedReq{{
				Method: "PUT", URI: "/f", Path: "/f", Minor: 0, ContentLength: 2,
				Headers: []string{"Expect: 100-continue", "Content-Length: 2"},
				HeadLen: 60, Body: "hi", Ended: true,
			}},
		},
		{
			name: "absolute-form",
			in:   "GET http://example.com/p/q?r=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "http://example.com/p/q?r=1", Path: "http://example.com/p/q", Query: "r=1",
				Host: "example.com", Minor: 1, ContentLength: -1, KeepAlive: true,
				Headers: []string{"Host: example.com"}, HeadLen: 62, Ended: true,
			}},
		},
		{
			name: "absolute-form https with port, Host differs only in case",
			in:   "GET HTTPS://Example.com:8443 HTTP/1.1\r\nHost: example.COM:8443\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "HTTPS://Example.com:8443", Path: "HTTPS://Example.com:8443",
				Host: "Example.com:8443", Minor: 1, ContentLength: -1, KeepAlive: true,
				Headers: []string{"Host: example.COM:8443"}, HeadLen: 65, Ended: true,
			}},
		},
		{
			name: "absolute-form with an IPv6 literal",
			in:   "GET http://[2001:db8::1]:8080?x HTTP/1.1\r\nHost: [2001:DB8::1]:8080\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "http://[2001:db8::1]:8080?x", Path: "http://[2001:db8::1]:8080", Query: "x",
				Host: "[2001:db8::1]:8080", Minor: 1, ContentLength: -1, KeepAlive: true,
				Headers: []string{"Host: [2001:DB8::1]:8080"}, HeadLen: 70, Ended: true,
			}},
		},
		{
			name: "absolute-form gives HTTP/1.0 its Host",
			in:   "GET http://example.com/ HTTP/1.0\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "http://example.com/", Path: "http://example.com/",
				Host: "example.com", Minor: 0, ContentLength: -1, HeadLen: 36, Ended: true,
			}},
		},
		{
			name: "OPTIONS *",
			in:   "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
			want: []parsedReq{{
				Method: "OPTIONS", URI: "*", Path: "*", Host: "a", Minor: 1, ContentLength: -1,
				KeepAlive: true, Headers: []string{"Host: a"}, HeadLen: 31, Ended: true,
			}},
		},
		{
			name: "leading empty lines",
			in:   "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: -1,
				KeepAlive: true, Headers: []string{"Host: a"}, HeadLen: 31, Ended: true,
			}},
		},
		{
			name: "field values: OWS trimmed, inner spaces kept, empty, obs-text",
			in:   "GET / HTTP/1.1\r\nHost:a\r\nX-A: \t v  w \t\r\nX-Empty:\r\nX-Blank:   \r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: -1, KeepAlive: true,
				Headers: []string{"Host: a", "X-A: v  w", "X-Empty: ", "X-Blank: ", "X-Utf8: caf\xc3\xa9"},
				HeadLen: 79, Ended: true,
			}},
		},
		{
			name: "Upgrade is reported when Connection lists it",
			in:   "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/ws", Path: "/ws", Host: "a", Minor: 1, ContentLength: -1, KeepAlive: true,
				Upgrade: "websocket",
				Headers: []string{"Host: a", "Upgrade: websocket", "Connection: keep-alive, Upgrade"},
				HeadLen: 82, Ended: true,
			}},
		},
		{
			name: "Upgrade without Connection: upgrade is not an upgrade",
			in:   "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/ws", Path: "/ws", Host: "a", Minor: 1, ContentLength: -1, KeepAlive: true,
				Headers: []string{"Host: a", "Upgrade: websocket"}, HeadLen: 49, Ended: true,
			}},
		},
		{
			name: "Upgrade in HTTP/1.0 is ignored (RFC 9110 §7.8)",
			in:   "GET /ws HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/ws", Path: "/ws", Host: "a", Minor: 0, ContentLength: -1, KeepAlive: false,
				Headers: []string{"Host: a", "Upgrade: websocket", "Connection: Upgrade"}, HeadLen: 70, Ended: true,
			}},
		},
		{
			name: "identical Content-Lengths, as fields and as a list",
			in:   "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3 , 3\r\n\r\nabc",
			want: []parsedReq{{
				Method: "POST", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: 3, KeepAlive: true,
				Headers: []string{"Host: a", "Content-Length: 3", "content-length: 3 , 3"},
				HeadLen: 70, Body: "abc", Ended: true,
			}},
		},
		{
			name: "extension method, IPv6 Host",
			in:   "PROPFIND /dav HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
			want: []parsedReq{{
				Method: "PROPFIND", URI: "/dav", Path: "/dav", Host: "[::1]:8080", Minor: 1, ContentLength: -1,
				KeepAlive: true, Headers: []string{"Host: [::1]:8080"}, HeadLen: 44, Ended: true,
			}},
		},
		{
			name: "URI of exactly MaxURIBytes",
			in:   "GET /" + strings.Repeat("u", 15) + " HTTP/1.1\r\nHost: a\r\n\r\n",
			lim:  protocol.Limits{MaxURIBytes: 16},
			want: []parsedReq{{
				Method: "GET", URI: "/" + strings.Repeat("u", 15), Path: "/" + strings.Repeat("u", 15),
				Host: "a", Minor: 1, ContentLength: -1, KeepAlive: true, Headers: []string{"Host: a"},
				HeadLen: 42, Ended: true,
			}},
		},
		{
			name: "head of exactly MaxHeadBytes, MaxHeaders fields",
			in:   "GET / HTTP/1.1\r\nHost: a\r\nX: 12345\r\n\r\n",
			lim:  protocol.Limits{MaxHeadBytes: 37, MaxHeaders: 2},
			want: []parsedReq{{
				Method: "GET", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: -1, KeepAlive: true,
				Headers: []string{"Host: a", "X: 12345"}, HeadLen: 37, Ended: true,
			}},
		},
		{
			name: "body of exactly MaxBodyBytes, chunked",
			in:   "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
			lim:  protocol.Limits{MaxBodyBytes: 5},
			want: []parsedReq{{
				Method: "POST", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: -1, Chunked: true,
				KeepAlive: true, Headers: []string{"Host: a", "Transfer-Encoding: chunked"},
				HeadLen: 56, Body: "abcde", Ended: true,
			}},
		},
		{
			// RFC 9110 §9.1: methods are case-sensitive; "get" is an
			// extension method, passed on as it is, never read as GET.
			name: "lower-case get is an extension method",
			in:   "get / HTTP/1.1\r\nHost: a\r\n\r\n",
			want: []parsedReq{{
				Method: "get", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: -1,
				KeepAlive: true, Headers: []string{"Host: a"}, HeadLen: 27, Ended: true,
			}},
		},
		{
			name: "get with an absolute-form target",
			in:   "get http://a/x HTTP/1.1\r\nHost: a\r\n\r\n",
			want: []parsedReq{{
				Method: "get", URI: "http://a/x", Path: "http://a/x", Host: "a", Minor: 1, ContentLength: -1,
				KeepAlive: true, Headers: []string{"Host: a"}, HeadLen: 36, Ended: true,
			}},
		},
		{
			// CONNECT with absolute-form is refused (see TestRequestErrors);
			// "connect" is not CONNECT, and absolute-form suits any method.
			name: "connect is not CONNECT",
			in:   "connect http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
			want: []parsedReq{{
				Method: "connect", URI: "http://a/", Path: "http://a/", Host: "a", Minor: 1, ContentLength: -1,
				KeepAlive: true, Headers: []string{"Host: a"}, HeadLen: 39, Ended: true,
			}},
		},
		{
			name: "head with a body is not HEAD: the body is framed",
			in:   "head / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
			want: []parsedReq{{
				Method: "head", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: 2, KeepAlive: true,
				Headers: []string{"Host: a", "Content-Length: 2"}, HeadLen: 47, Body: "hi", Ended: true,
			}},
		},
		{
			// The query string is not decoded by the proxy (QUERY_STRING
			// stays encoded), so its escapes are forwarded as they are.
			name: "escapes of NUL, CR and LF in the query",
			in:   "GET /p?a=%00&b=%0d%0A HTTP/1.1\r\nHost: a\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/p?a=%00&b=%0d%0A", Path: "/p", Query: "a=%00&b=%0d%0A", Host: "a", Minor: 1,
				ContentLength: -1, KeepAlive: true, Headers: []string{"Host: a"}, HeadLen: 43, Ended: true,
			}},
		},
		{
			name: "escapes of other control bytes and a double-encoded NUL in the path",
			in:   "GET /%01%09%7f%2500%0 HTTP/1.1\r\nHost: a\r\n\r\n",
			want: []parsedReq{{
				Method: "GET", URI: "/%01%09%7f%2500%0", Path: "/%01%09%7f%2500%0", Host: "a", Minor: 1,
				ContentLength: -1, KeepAlive: true, Headers: []string{"Host: a"}, HeadLen: 43, Ended: true,
			}},
		},
		{
			// RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ).
			name: "chunk extensions: name, token value, quoted value, BWS after ';' and around '='",
			in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"1;name\r\na\r\n1;name=value\r\nb\r\n1;name=\"quoted value\"\r\nc\r\n" +
				"1;\ta = b\t;c= \"\" ; d\r\nd\r\n1;q=\"\\\"\\\\;\xff\\\xfe\\\t\" ;z\r\ne\r\n0;last\r\n\r\n",
			want: []parsedReq{{
				Method: "POST", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: -1, Chunked: true,
				KeepAlive: true, Headers: []string{"Host: a", "Transfer-Encoding: chunked"},
				HeadLen: 56, Body: "abcde", Ended: true,
			}},
		},
		{
			name: "body of exactly MaxBodyBytes, Content-Length",
			in:   "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde",
			lim:  protocol.Limits{MaxBodyBytes: 5},
			want: []parsedReq{{
				Method: "POST", URI: "/", Path: "/", Host: "a", Minor: 1, ContentLength: 5, KeepAlive: true,
				Headers: []string{"Host: a", "Content-Length: 5"}, HeadLen: 47, Body: "abcde", Ended: true,
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := driveString(t, tt.lim, tt.in)
			want := driveResult{Reqs: tt.want}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got:\n%v\nwant:\n%v", got, want)
			}
			checkSplits(t, tt.lim, tt.in)
			checkPrefixes(t, tt.lim, tt.in)
		})
	}
}

func TestRequestErrors(t *testing.T) {
	long := strings.Repeat("a", 100)
	tests := []struct {
		name   string
		in     string
		lim    protocol.Limits
		err    *protocol.Error
		status int
		// heads counts the requests whose head was delivered before the
		// error (pipelined or body errors); a malformed head is never
		// delivered.
		heads int
	}{
		// Smuggling shapes (PROTOCOL.md: refused with 400).
		{name: "CL then TE", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", err: protocol.ErrCLAndTE, status: 400},
		{name: "TE then CL", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", err: protocol.ErrCLAndTE, status: 400},
		{name: "two different CLs", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", err: protocol.ErrDupContentLength, status: 400},
		{name: "CL list of different values", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", err: protocol.ErrBadContentLength, status: 400},
		{name: "obs-fold", in: "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", err: protocol.ErrObsFold, status: 400},
		{name: "obs-fold with tab", in: "GET / HTTP/1.1\r\nX: a\r\n\tb\r\nHost: a\r\n\r\n", err: protocol.ErrObsFold, status: 400},
		{name: "obs-fold on the first field line", in: "GET / HTTP/1.1\r\n Host: a\r\n\r\n", err: protocol.ErrObsFold, status: 400},
		{name: "bare LF before the request line", in: "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBareLF, status: 400},
		{name: "bare LF ending the request line", in: "GET / HTTP/1.1\nHost: a\r\n\r\n", err: protocol.ErrBareLF, status: 400},
		{name: "bare LF ending a field", in: "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", err: protocol.ErrBareLF, status: 400},
		{name: "bare LF ending the head", in: "GET / HTTP/1.1\r\nHost: a\r\n\n", err: protocol.ErrBareLF, status: 400},
		{name: "bare LF as the whole final line", in: "GET / HTTP/1.1\r\nHost: a\n\n", err: protocol.ErrBareLF, status: 400},
		{name: "space before colon", in: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nabc", err: protocol.ErrSpaceBeforeColon, status: 400},
		{name: "tab before colon", in: "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", err: protocol.ErrSpaceBeforeColon, status: 400},
		{name: "TE in HTTP/1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", err: protocol.ErrCLAndTE, status: 400},
		{name: "TE chunked, identity", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", err: protocol.ErrBadTE, status: 400},
		{name: "TE gzip, chunked", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err: protocol.ErrBadTE, status: 400},
		{name: "TE chunked twice", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", err: protocol.ErrBadTE, status: 400},
		{name: "TE xchunked", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", err: protocol.ErrBadTE, status: 400},
		{name: "TE identity", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", err: protocol.ErrUnknownTE, status: 501},
		{name: "CL with a sign", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", err: protocol.ErrBadContentLength, status: 400},
		{name: "CL negative", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", err: protocol.ErrBadContentLength, status: 400},
		{name: "CL empty", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", err: protocol.ErrBadContentLength, status: 400},
		{name: "CL hex", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\n", err: protocol.ErrBadContentLength, status: 400},
		{name: "CL huge", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", err: protocol.ErrBadContentLength, status: 400},
		{name: "CL with a no-break space", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\xc2\xa0\r\n\r\nabc", err: protocol.ErrBadContentLength, status: 400},
		{name: "CL after a NEL", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \xc2\x853\r\n\r\nabc", err: protocol.ErrBadContentLength, status: 400},

		// Limits.
		{name: "413 CL over MaxBodyBytes", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabcdef", lim: protocol.Limits{MaxBodyBytes: 5}, err: protocol.ErrBodyTooLarge, status: 413},
		{name: "413 chunked total over MaxBodyBytes", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", lim: protocol.Limits{MaxBodyBytes: 5}, err: protocol.ErrBodyTooLarge, status: 413, heads: 1},
		{name: "414 URI too long", in: "GET /" + long + " HTTP/1.1\r\nHost: a\r\n\r\n", lim: protocol.Limits{MaxURIBytes: 64}, err: protocol.ErrURITooLong, status: 414},
		{name: "414 URI longer than the head limit", in: "GET /" + long + long, lim: protocol.Limits{MaxHeadBytes: 64, MaxURIBytes: 1000}, err: protocol.ErrURITooLong, status: 414},
		{name: "431 head over MaxHeadBytes", in: "GET / HTTP/1.1\r\nHost: a\r\nX: " + long + "\r\n\r\n", lim: protocol.Limits{MaxHeadBytes: 64}, err: protocol.ErrHeadTooLarge, status: 431},
		{name: "431 head one byte over", in: "GET / HTTP/1.1\r\nHost: a\r\nX: 123456\r\n\r\n", lim: protocol.Limits{MaxHeadBytes: 37}, err: protocol.ErrHeadTooLarge, status: 431},
		{name: "431 endless empty lines", in: strings.Repeat("\r\n", 40), lim: protocol.Limits{MaxHeadBytes: 64}, err: protocol.ErrHeadTooLarge, status: 431},
		{name: "431 too many headers", in: "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", lim: protocol.Limits{MaxHeaders: 3}, err: protocol.ErrTooManyHeaders, status: 431},
		{name: "431 trailers too large", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + long + "\r\n\r\n", lim: protocol.Limits{MaxHeadBytes: 64}, err: protocol.ErrHeadTooLarge, status: 431, heads: 1},

		// Request line.
		{name: "505 HTTP/2.0", in: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", err: protocol.ErrBadVersion, status: 505},
		{name: "505 HTTP/0.9", in: "GET / HTTP/0.9\r\n\r\n", err: protocol.ErrBadVersion, status: 505},
		{name: "lower-case version", in: "GET / http/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "not HTTP (h2spec's invalid preface)", in: "INVALID CONNECTION PREFACE\r\n\r\n", err: protocol.ErrNotHTTP, status: 0},
		{name: "not HTTP: RTSP", in: "OPTIONS * RTSP/1.0\r\n\r\n", err: protocol.ErrNotHTTP, status: 0},
		{name: "HTTP/1.1 with a trailing space", in: "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "no version", in: "GET /\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "two spaces after the method", in: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "method with a non-token byte", in: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "request line starts with a space", in: " GET / HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "NUL in the target", in: "GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "DEL in the target", in: "GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "tab in the target", in: "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "asterisk-form for GET", in: "GET * HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "authority-form", in: "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "relative target", in: "GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "asterisk-form for lower-case options", in: "options * HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "asterisk-form for get", in: "get * HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "CONNECT with absolute-form", in: "CONNECT http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "CONNECT with origin-form", in: "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "authority-form for lower-case connect", in: "connect a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "bare CR before the request line", in: "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "bare CR among empty lines", in: "\r\n\r\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "CR not followed by LF after the request line", in: "GET / HTTP/1.1\rHost: a\r\n\r\n", err: protocol.ErrBadHeader, status: 400},

		// Percent-escapes that decode to NUL, CR or LF in the path.
		{name: "%00 in the path", in: "GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadPathEscape, status: 400},
		{name: "%0d in the path", in: "GET /a%0d HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadPathEscape, status: 400},
		{name: "%0D in the path", in: "GET /%0D/b HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadPathEscape, status: 400},
		{name: "%0a in the path", in: "GET /%0a HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadPathEscape, status: 400},
		{name: "%0A in the path, before a query", in: "GET /%0A?x HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadPathEscape, status: 400},
		{name: "header injection through %0d%0a", in: "GET /a%0d%0aSet-Cookie:x HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadPathEscape, status: 400},
		{name: "%00 after an invalid escape", in: "GET /%%00 HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadPathEscape, status: 400},
		{name: "%0a in an absolute-form path", in: "GET http://a/x%0a HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadPathEscape, status: 400},
		{name: "%00 in an HTTP/1.0 path", in: "GET /%00 HTTP/1.0\r\n\r\n", err: protocol.ErrBadPathEscape, status: 400},

		// Fields.
		{name: "417 unknown expectation", in: "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", err: protocol.ErrExpectation, status: 417},
		{name: "missing Host in HTTP/1.1", in: "GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", err: protocol.ErrMissingHost, status: 400},
		{name: "duplicate Host", in: "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", err: protocol.ErrDupHost, status: 400},
		{name: "duplicate Host in HTTP/1.0", in: "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", err: protocol.ErrDupHost, status: 400},
		{name: "empty Host", in: "GET / HTTP/1.1\r\nHost:\r\n\r\n", err: protocol.ErrBadHost, status: 400},
		{name: "Host with a space", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", err: protocol.ErrBadHost, status: 400},
		{name: "Host with userinfo", in: "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", err: protocol.ErrBadHost, status: 400},
		{name: "Host with a path", in: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", err: protocol.ErrBadHost, status: 400},
		{name: "Host list", in: "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", err: protocol.ErrBadHost, status: 400},
		// RFC 9112 §3.2: a Host that is no authority gets 400 (before,
		// these were routed by what came before their last ':').
		{name: "Host with markup after a colon", in: "GET / HTTP/1.1\r\nHost: app.example:<b>x\"\r\n\r\n", err: protocol.ErrBadHost, status: 400},
		{name: "Host with a name for a port", in: "GET / HTTP/1.1\r\nHost: app.example:evil.test\r\n\r\n", err: protocol.ErrBadHost, status: 400},
		{name: "Host with an unclosed IPv6 literal", in: "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", err: protocol.ErrBadHost, status: 400},
		{name: "absolute-form with another Host", in: "GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", err: protocol.ErrBadHost, status: 400},
		{name: "absolute-form without authority", in: "GET http:///x HTTP/1.1\r\nHost: b\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "absolute-form with userinfo", in: "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "absolute-form with a bad port", in: "GET http://a:b/ HTTP/1.1\r\nHost: a:b\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "absolute-form with junk after an IPv6 literal", in: "GET http://[::1]x/ HTTP/1.1\r\nHost: [::1]x\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "absolute-form with a bad IPv6 literal", in: "GET http://[zz]/ HTTP/1.1\r\nHost: [zz]\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "absolute-form with two ports", in: "GET http://a:8:9/ HTTP/1.1\r\nHost: a:8:9\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "absolute-form with a bracket in a name", in: "GET http://a]/ HTTP/1.1\r\nHost: a]\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "absolute-form with percent-encoding in the host", in: "GET http://%61/ HTTP/1.1\r\nHost: %61\r\n\r\n", err: protocol.ErrBadRequestLine, status: 400},
		{name: "empty field name", in: "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", err: protocol.ErrBadHeader, status: 400},
		{name: "non-token field name", in: "GET / HTTP/1.1\r\nHost: a\r\nX(Y): x\r\n\r\n", err: protocol.ErrBadHeader, status: 400},
		{name: "field line without colon", in: "GET / HTTP/1.1\r\nHost: a\r\nXY\r\n\r\n", err: protocol.ErrBadHeader, status: 400},
		{name: "NUL in a value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", err: protocol.ErrBadHeader, status: 400},
		{name: "bare CR in a value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", err: protocol.ErrBadHeader, status: 400},
		{name: "CR CR LF ending the head", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", err: protocol.ErrBareLF, status: 400},

		// Chunked bodies.
		{name: "chunk size not hex", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk size missing", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk size overflows", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk size with bare LF", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk extension with bare LF", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;a\nabc\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: bare ';' without a name", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: ';' then BWS without a name", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5; \r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: two ';' in a row", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;;a\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: trailing ';' after an extension", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a;\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: extension value without a name", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;=v\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: extension name not a token", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a(b)\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: extension name with a slash", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a/b=c\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: '=' without a value", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: '=' and BWS without a value", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a= \r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: two names without ';'", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a b\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: extension value not a token", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b/c\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: extension value with a second '='", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b=c\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: two values without ';'", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b c\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: extension value with DEL", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\x7f\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: unterminated quoted value", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"x\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: quoted value followed by a token", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: control byte in a quoted value", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: quoted-pair of a control byte", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: quoted-pair of CR", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"\\\r\n\"\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: space after the chunk size", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: tab after the chunk size", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\t\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: space between the chunk size and ';'", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: space after the last chunk's size", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0 \r\n\r\n\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: whitespace after an extension name, before CR", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a \r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: whitespace after a token value, before CR", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\t\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: whitespace after a quoted value, before CR", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"b\" \r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk-ext: NUL in an extension", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x00\r\nhello\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk data longer than its size", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk data ending in bare LF", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "chunk size line of endless zeros", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("0", 5000), err: protocol.ErrBadChunk, status: 400, heads: 1},
		{name: "trailer with bare LF", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n", err: protocol.ErrBareLF, status: 400, heads: 1},
		{name: "last chunk ending in bare LF", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n", err: protocol.ErrBadChunk, status: 400, heads: 1},

		// Pipelining: the first request is delivered, the second refused.
		{name: "pipelined smuggling after a good request", in: simpleGET + "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", err: protocol.ErrDupContentLength, status: 400, heads: 1},
		{name: "pipelined bare LF after a body", in: simplePOST + "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", err: protocol.ErrBareLF, status: 400, heads: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := driveString(t, tt.lim, tt.in)
			if got.Err != tt.err || !errors.Is(got.Err, tt.err) {
				t.Fatalf("error %v, want %v\n%v", got.Err, tt.err, got)
			}
			var pe *protocol.Error
			if !errors.As(got.Err, &pe) || pe.Status != tt.status {
				t.Fatalf("status %d, want %d", pe.Status, tt.status)
			}
			if len(got.Reqs) != tt.heads {
				t.Fatalf("%d heads delivered before the error, want %d\n%v", len(got.Reqs), tt.heads, got)
			}
			checkSplits(t, tt.lim, tt.in)
			// Every truncated prefix either waits for more or already
			// fails with the same error: errors are found in scan order.
			for i := 0; i < len(tt.in); i++ {
				pre := driveString(t, tt.lim, tt.in[:i])
				if pre.Err != nil && pre.Err != tt.err {
					t.Fatalf("prefix %q: %v, want nil or %v", tt.in[:i], pre.Err, tt.err)
				}
			}
		})
	}
}

// validHeads are well-formed requests the mutation tests start from.
var validHeads = []string{
	simpleGET,
	"POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
}

// TestRequestBareLFAnywhere inserts a bare LF, and separately replaces each
// CRLF by a bare LF, at every position of a valid head: all are 400s.
func TestRequestBareLFAnywhere(t *testing.T) {
	for _, head := range validHeads {
		for i := 0; i <= len(head); i++ {
			if i > 0 && head[i-1] == '\r' {
				continue // that would complete a CRLF
			}
			in := head[:i] + "\n" + head[i:]
			if i == len(head) {
				in += head // the LF starts the next request
			}
			expectStatus(t, in, 400)
		}
		for i := 0; i+1 < len(head); i++ {
			if head[i:i+2] == "\r\n" {
				expectStatus(t, head[:i]+head[i+1:], 400)
			}
		}
	}
}

// TestRequestBareCRAnywhere inserts a CR not followed by LF at every
// position of a valid head (RFC 9112 §2.2: a bare CR is invalid).
func TestRequestBareCRAnywhere(t *testing.T) {
	for _, head := range validHeads {
		for i := 0; i < len(head); i++ {
			if head[i] == '\n' {
				continue // that would complete a CRLF
			}
			expectStatus(t, head[:i]+"\r"+head[i:], 400)
		}
	}
}

func expectStatus(t *testing.T, in string, status int) {
	t.Helper()
	got := driveString(t, protocol.Limits{}, in)
	var pe *protocol.Error
	if !errors.As(got.Err, &pe) || pe.Status != status {
		t.Fatalf("%q: %v, want a %d\n%v", in, got.Err, status, got)
	}
}

// TestRequestBodySplitAcrossFeeds checks that a large Content-Length body
// is handed out as it arrives, never buffered, and that the next request
// starts right after it.
func TestRequestBodySplitAcrossFeeds(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1000)
	head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", len(body))
	p := protocol.NewRequestParser(protocol.Limits{})
	n, ev, _, err := p.Feed([]byte(head))
	if err != nil || ev != protocol.EvHead || n != len(head) {
		t.Fatalf("head: n=%d ev=%d err=%v", n, ev, err)
	}
	var got []byte
	for off := 0; off < len(body); off += 777 {
		piece := body[off:min(off+777, len(body))]
		n, ev, data, err := p.Feed(piece)
		if err != nil || ev != protocol.EvBody || n != len(piece) || !bytes.Equal(data, piece) {
			t.Fatalf("at %d: n=%d ev=%d err=%v", off, n, ev, err)
		}
		got = append(got, data...)
	}
	if !bytes.Equal(got, body) {
		t.Fatal("body differs")
	}
	if _, ev, _, _ := p.Feed(nil); ev != protocol.EvEnd {
		t.Fatalf("after the body: ev=%d, want EvEnd", ev)
	}
	if !p.Idle() || !p.InHead() {
		t.Fatal("parser is not idle after EvEnd")
	}
}

// TestRequestPending checks the head bookkeeping the server relies on.
func TestRequestPending(t *testing.T) {
	p := protocol.NewRequestParser(protocol.Limits{})
	if !p.Idle() || p.Pending() != 0 {
		t.Fatal("new parser not idle")
	}
	in := []byte(simplePOST)
	if n, ev, _, err := p.Feed(in[:10]); n != 0 || ev != protocol.EvNeedMore || err != nil {
		t.Fatalf("partial head: n=%d ev=%d err=%v", n, ev, err)
	}
	if p.Idle() || p.Pending() != 10 || !p.InHead() {
		t.Fatalf("partial head: idle=%v pending=%d", p.Idle(), p.Pending())
	}
	n, ev, _, err := p.Feed(in)
	if ev != protocol.EvHead || err != nil {
		t.Fatalf("head: ev=%d err=%v", ev, err)
	}
	if p.InHead() || p.Pending() != 0 || !p.Request().HasBody() {
		t.Fatal("after the head: still in head, or no body")
	}
	if _, ev, data, _ := p.Feed(in[n:]); ev != protocol.EvBody || string(data) != "hello world" {
		t.Fatalf("body: ev=%d data=%q", ev, data)
	}
	// Init resets a parser in the middle of a request.
	p.Init(protocol.Limits{})
	if !p.Idle() {
		t.Fatal("Init did not reset")
	}
	if _, ev, _, err := p.Feed([]byte(simpleGET)); ev != protocol.EvHead || err != nil || p.Request().HasBody() {
		t.Fatalf("after Init: ev=%d err=%v", ev, err)
	}
}

// TestRequestReuse parses many requests with one parser and checks that
// the header table of a long head does not leak into a shorter one.
func TestRequestReuse(t *testing.T) {
	p := protocol.NewRequestParser(protocol.Limits{})
	long := "GET /a HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
	short := "GET /b HTTP/1.1\r\nHost: b\r\n\r\n"
	got := drive(t, p, []byte(long+short+chunkedPOST+short))
	if got.Err != nil || len(got.Reqs) != 4 {
		t.Fatalf("got %v", got)
	}
	if len(got.Reqs[1].Headers) != 1 || len(got.Reqs[3].Headers) != 1 || got.Reqs[2].Body != "hello world" {
		t.Fatalf("got %v", got)
	}
}

func TestErrorSentinels(t *testing.T) {
	for _, e := range []*protocol.Error{
		protocol.ErrBadRequestLine, protocol.ErrBadHeader, protocol.ErrBareLF, protocol.ErrObsFold,
		protocol.ErrSpaceBeforeColon, protocol.ErrCLAndTE, protocol.ErrBadContentLength,
		protocol.ErrDupContentLength, protocol.ErrBadTE, protocol.ErrUnknownTE, protocol.ErrMissingHost,
		protocol.ErrDupHost, protocol.ErrBadHost, protocol.ErrBadVersion, protocol.ErrBadChunk,
		protocol.ErrBadPathEscape, protocol.ErrExpectation, protocol.ErrURITooLong, protocol.ErrHeadTooLarge,
		protocol.ErrTooManyHeaders, protocol.ErrBodyTooLarge, protocol.ErrUwsgiTooLarge, protocol.ErrBadResponse,
	} {
		if !strings.HasPrefix(e.Error(), "protocol: ") || e.Msg == "" || e.Metric == "" {
			t.Errorf("%#v: bad text", e)
		}
		if e.Status < 400 || e.Status > 599 || protocol.StatusText(e.Status) == "Error" {
			t.Errorf("%#v: status %d has no reason phrase", e, e.Status)
		}
		if !errors.Is(fmt.Errorf("wrapped: %w", e), e) {
			t.Errorf("%v: errors.Is fails through wrapping", e)
		}
	}
}

// browserGET is a typical ~300-byte browser request.
const browserGET = "GET /articles/2024/blastbeat-benchmarks?page=2 HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: sid=3f2a9c\r\n" +
	"\r\n"

func BenchmarkRequestParse(b *testing.B) {
	in := []byte(browserGET)
	p := protocol.NewRequestParser(protocol.Limits{})
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		n, ev, _, err := p.Feed(in)
		if ev != protocol.EvHead || err != nil || n != len(in) {
			b.Fatalf("ev=%d err=%v", ev, err)
		}
		if _, ev, _, _ = p.Feed(in[n:]); ev != protocol.EvEnd {
			b.Fatal("no EvEnd")
		}
	}
}

func BenchmarkRequestParseChunked(b *testing.B) {
	in := []byte(chunkedPOST)
	p := protocol.NewRequestParser(protocol.Limits{})
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		buf := in
		for {
			n, ev, _, err := p.Feed(buf)
			if err != nil {
				b.Fatal(err)
			}
			buf = buf[n:]
			if ev == protocol.EvEnd {
				break
			}
		}
	}
}

// TestBodyLeft: what is left of a Content-Length body or of a chunk's
// data, and 0 in a head or on a chunk-size line.
func TestBodyLeft(t *testing.T) {
	p := protocol.NewRequestParser(protocol.Limits{})
	feed := func(s string) {
		t.Helper()
		buf := []byte(s)
		for len(buf) > 0 {
			n, _, _, err := p.Feed(buf)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatalf("Feed took nothing of %q", buf)
			}
			buf = buf[n:]
		}
	}
	left := func(want int64, when string) {
		t.Helper()
		if got := p.BodyLeft(); got != want {
			t.Fatalf("%s: BodyLeft %d, want %d", when, got, want)
		}
	}
	left(0, "before a head")
	feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
	left(10, "after the head")
	feed("abcd")
	left(6, "after 4 bytes")
	feed("efghij")
	p.Feed(nil) // EvEnd
	feed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	left(0, "before the chunk size")
	feed("1a\r\n")
	left(0x1a, "after the chunk size")
	feed("0123456789")
	left(16, "10 bytes into the chunk")
}
