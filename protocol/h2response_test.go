package protocol_test

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/protocol"
)

// decodeH2Block decodes one field block with dec.
func decodeH2Block(tb testing.TB, dec *hpack.Decoder, block []byte) []kv {
	tb.Helper()
	fields, err := dec.DecodeFull(block)
	if err != nil {
		tb.Fatalf("hpack: %v in %x", err, block)
	}
	var out []kv
	for _, f := range fields {
		out = append(out, kv{f.Name, f.Value})
	}
	return out
}

// h2Date is the date the server passes.
var h2Date = []byte(testDate)

var h2ResponseTests = []struct {
	name string
	raw  string
	head bool   // the request was HEAD
	date []byte // passed as date
	want []kv
	info protocol.H2ResponseHead
}{
	{
		name: "status only",
		raw:  "HTTP/1.1 200 OK\r\n\r\n",
		want: []kv{{":status", "200"}},
		info: protocol.H2ResponseHead{Status: 200, HasBody: true, ContentLength: -1},
	},
	{
		name: "names lower-cased, values trimmed, date added last",
		raw:  "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length:   12  \r\nX-Custom-THING: a\tb c\r\n\r\n",
		date: h2Date,
		want: []kv{{":status", "200"}, {"content-type", "text/html"}, {"content-length", "12"},
			{"x-custom-thing", "a\tb c"}, {"date", testDate}},
		info: protocol.H2ResponseHead{Status: 200, HasBody: true, ContentLength: 12},
	},
	{
		// nghttp2 refuses a second content-length, even an equal one.
		name: "repeated content-length sent once",
		raw:  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
		want: []kv{{":status", "200"}, {"content-length", "5"}},
		info: protocol.H2ResponseHead{Status: 200, HasBody: true, ContentLength: 5},
	},
	{
		name: "the node's date is kept",
		raw:  "HTTP/1.1 200 OK\r\nDATE: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 1\r\n\r\n",
		date: h2Date,
		want: []kv{{":status", "200"}, {"date", "Mon, 01 Jan 2024 00:00:00 GMT"}, {"content-length", "1"}},
		info: protocol.H2ResponseHead{Status: 200, HasBody: true, ContentLength: 1},
	},
	{
		name: "bare LF, a status line without reason, HTTP/1.0",
		raw:  "HTTP/1.0 404\nServer: node\nContent-Length: 0\n\n",
		want: []kv{{":status", "404"}, {"server", "node"}, {"content-length", "0"}},
		info: protocol.H2ResponseHead{Status: 404, ContentLength: 0},
	},
	{
		name: "connection-specific fields and te left out",
		raw: "HTTP/1.1 200 OK\r\nConnection: close\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n" +
			"Upgrade: h2c\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\nVary: accept\r\n\r\n",
		want: []kv{{":status", "200"}, {"vary", "accept"}},
		info: protocol.H2ResponseHead{Status: 200, HasBody: true, ContentLength: -1, Chunked: true},
	},
	{
		name: "fields named by connection left out, in any case, from every connection field",
		raw: "HTTP/1.1 200 OK\r\nX-Secret: 1\r\nConnection: x-secret , Close\r\nX-Keep: 2\r\nx-other: 3\r\n" +
			"connection: X-OTHER\r\nContent-Length: 2\r\n\r\n",
		want: []kv{{":status", "200"}, {"x-keep", "2"}, {"content-length", "2"}},
		info: protocol.H2ResponseHead{Status: 200, HasBody: true, ContentLength: 2},
	},
	{
		name: "HEAD: no body, content-length kept",
		raw:  "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
		head: true,
		want: []kv{{":status", "200"}, {"content-length", "1234"}},
		info: protocol.H2ResponseHead{Status: 200, ContentLength: 1234},
	},
	{
		name: "HEAD of a chunked response",
		raw:  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		head: true,
		want: []kv{{":status", "200"}},
		info: protocol.H2ResponseHead{Status: 200, ContentLength: -1, Chunked: true},
	},
	{
		name: "204: no body, content-length left out",
		raw:  "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nETag: \"x\"\r\n\r\n",
		want: []kv{{":status", "204"}, {"etag", "\"x\""}},
		info: protocol.H2ResponseHead{Status: 204, ContentLength: 0},
	},
	{
		name: "304: no body, content-length kept",
		raw:  "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
		want: []kv{{":status", "304"}, {"content-length", "99"}},
		info: protocol.H2ResponseHead{Status: 304, ContentLength: 99},
	},
	{
		name: "100 Continue is interim",
		raw:  "HTTP/1.1 100 Continue\r\n\r\n",
		want: []kv{{":status", "100"}},
		info: protocol.H2ResponseHead{Status: 100, Interim: true, ContentLength: -1},
	},
	{
		name: "103 Early Hints: interim, fields kept, content-length left out, no date",
		raw:  "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>; rel=preload\r\nContent-Length: 5\r\n\r\n",
		date: h2Date,
		want: []kv{{":status", "103"}, {"link", "</a.css>; rel=preload"}, {"link", "</b.js>; rel=preload"},
			{"date", testDate}},
		info: protocol.H2ResponseHead{Status: 103, Interim: true, ContentLength: -1},
	},
	{
		name: "set-cookie fields stay apart and in order",
		raw:  "HTTP/1.1 302 Found\r\nSet-Cookie: a=1\r\nLocation: /x\r\nSet-Cookie: b=2; Path=/\r\nContent-Length: 0\r\n\r\n",
		want: []kv{{":status", "302"}, {"set-cookie", "a=1"}, {"location", "/x"}, {"set-cookie", "b=2; Path=/"},
			{"content-length", "0"}},
		info: protocol.H2ResponseHead{Status: 302, ContentLength: 0},
	},
	{
		name: "uncommon status, a name longer than the stack buffer, obs-text",
		raw:  "HTTP/1.1 418 I'm a teapot\r\nX-" + strings.Repeat("Long", 20) + ": caf\xc3\xa9\r\n\r\n",
		want: []kv{{":status", "418"}, {"x-" + strings.Repeat("long", 20), "caf\xc3\xa9"}},
		info: protocol.H2ResponseHead{Status: 418, HasBody: true, ContentLength: -1},
	},
	{
		name: "body bytes after the head are not read",
		raw:  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nX-Not: a field",
		want: []kv{{":status", "200"}, {"content-length", "5"}},
		info: protocol.H2ResponseHead{Status: 200, HasBody: true, ContentLength: 5},
	},
	{
		name: "a frame that ends after a field's line is a whole head",
		raw:  "HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\n",
		want: []kv{{":status", "500"}, {"content-type", "text/plain"}},
		info: protocol.H2ResponseHead{Status: 500, HasBody: true, ContentLength: -1},
	},
}

// h1HeadLen is the length of the head at the start of raw: up to the
// first empty line, or all of raw.
func h1HeadLen(raw string) int {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\n' {
			continue
		}
		if strings.HasPrefix(raw[i+1:], "\n") {
			return i + 2
		}
		if strings.HasPrefix(raw[i+1:], "\r\n") {
			return i + 3
		}
	}
	return len(raw)
}

// TestEncodeH2ResponseHead encodes each head and decodes the block with
// hpack.Decoder: on a fresh encoder per head, and then all heads in turn
// on one encoder and decoder, as one connection's would be, so the later
// blocks refer to the dynamic table.
func TestEncodeH2ResponseHead(t *testing.T) {
	var conn bytes.Buffer
	connEnc := hpack.NewEncoder(&conn)
	connDec := hpack.NewDecoder(4096, nil)
	for _, tt := range h2ResponseTests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			info, err := protocol.EncodeH2ResponseHead(hpack.NewEncoder(&buf), []byte(tt.raw), tt.head, tt.date)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.info
			want.HeadLen = h1HeadLen(tt.raw)
			if info != want {
				t.Fatalf("info %+v\nwant %+v", info, want)
			}
			if got := decodeH2Block(t, hpack.NewDecoder(4096, nil), buf.Bytes()); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("fields %q\nwant   %q", got, tt.want)
			}
			conn.Reset()
			if _, err := protocol.EncodeH2ResponseHead(connEnc, []byte(tt.raw), tt.head, tt.date); err != nil {
				t.Fatal(err)
			}
			if got := decodeH2Block(t, connDec, conn.Bytes()); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("on a shared encoder: fields %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestEncodeH2ResponseHeadErrors(t *testing.T) {
	tests := []struct {
		name, raw string
		err       error
	}{
		{name: "101 has no place in HTTP/2", raw: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", err: protocol.ErrH2Response101},
		{name: "not a status line", raw: "HTTP/3 200 OK\r\n\r\n", err: protocol.ErrBadResponse},
		{name: "status out of range", raw: "HTTP/1.1 600 X\r\n\r\n", err: protocol.ErrBadResponse},
		{name: "name not a token", raw: "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", err: protocol.ErrBadResponse},
		{name: "control byte in a value", raw: "HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", err: protocol.ErrBadResponse},
		{name: "content-length and chunked", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", err: protocol.ErrBadResponse},
		{name: "differing content-length fields", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", err: protocol.ErrBadResponse},
		{name: "no line end", raw: "HTTP/1.1 200 OK", err: protocol.ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf, fresh bytes.Buffer
			enc := hpack.NewEncoder(&buf)
			if _, err := protocol.EncodeH2ResponseHead(enc, []byte(tt.raw), false, h2Date); err != tt.err {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
			if buf.Len() != 0 {
				t.Fatalf("wrote %x on an error", buf.Bytes())
			}
			// The encoder's dynamic table is untouched: it encodes the next
			// head as a fresh one does.
			ok := []byte("HTTP/1.1 200 OK\r\nX-A: 1\r\nConnection: x-b\r\n\r\n")
			protocol.EncodeH2ResponseHead(enc, ok, false, h2Date)
			protocol.EncodeH2ResponseHead(hpack.NewEncoder(&fresh), ok, false, h2Date)
			if !bytes.Equal(buf.Bytes(), fresh.Bytes()) {
				t.Fatalf("after the error %x, fresh %x", buf.Bytes(), fresh.Bytes())
			}
		})
	}
}

// TestEncodeH2ResponseHeadGolden pins the wire bytes of heads that the
// static table covers (RFC 7541 Appendix A): one indexed byte per field.
func TestEncodeH2ResponseHeadGolden(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{name: "200", raw: "HTTP/1.1 200 OK\r\n\r\n", want: "88"},
		{name: "204", raw: "HTTP/1.1 204 No Content\r\n\r\n", want: "89"},
		{name: "304", raw: "HTTP/1.1 304 Not Modified\r\n\r\n", want: "8b"},
		{name: "404 bare LF", raw: "HTTP/1.0 404 Not Found\n\n", want: "8d"},
		{name: "500, connection dropped", raw: "HTTP/1.1 500 Oops\r\nConnection: close\r\n\r\n", want: "8e"},
		// :status 302 and 307 are not in the table: a literal with
		// incremental indexing, the name from index 14, the value Huffman
		// coded where that is shorter ("302": 2 bytes), else raw ("307").
		{name: "302", raw: "HTTP/1.1 302 Found\r\n\r\n", want: "4e826402"},
		{name: "307", raw: "HTTP/1.1 307 Temporary Redirect\r\n\r\n", want: "4e03333037"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if _, err := protocol.EncodeH2ResponseHead(hpack.NewEncoder(&buf), []byte(tt.raw), false, nil); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(buf.Bytes()); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestEncodeH2ResponseHeadRFC7541 encodes the responses of RFC 7541 C.6
// one after the other on one encoder with the RFC's 256-byte dynamic
// table, and decodes them on one decoder beside the RFC's own blocks on
// another: the fields must be the RFC's, and each block no longer than the
// RFC's (the encoder picks other but equivalent representations: the name
// of :status from index 14, not 8; "307" raw, not Huffman).
func TestEncodeH2ResponseHeadRFC7541(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.SetMaxDynamicTableSize(256)
	ours, theirs := hpack.NewDecoder(256, nil), hpack.NewDecoder(256, nil)
	tests := []struct{ name, raw, rfc string }{
		{
			name: "C.6.1",
			raw: "HTTP/1.1 302 Found\r\nCache-Control: private\r\nDate: Mon, 21 Oct 2013 20:13:21 GMT\r\n" +
				"Location: https://www.example.com\r\n\r\n",
			rfc: "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
		},
		{
			name: "C.6.2",
			raw: "HTTP/1.1 307 Temporary Redirect\r\nCache-Control: private\r\nDate: Mon, 21 Oct 2013 20:13:21 GMT\r\n" +
				"Location: https://www.example.com\r\n\r\n",
			rfc: "4883640effc1c0bf",
		},
		{
			name: "C.6.3",
			raw: "HTTP/1.1 200 OK\r\nCache-Control: private\r\nDate: Mon, 21 Oct 2013 20:13:22 GMT\r\n" +
				"Location: https://www.example.com\r\nContent-Encoding: gzip\r\n" +
				"Set-Cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1\r\n\r\n",
			rfc: "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			// Date is in the head: the passed one is not added.
			if _, err := protocol.EncodeH2ResponseHead(enc, []byte(tt.raw), false, h2Date); err != nil {
				t.Fatal(err)
			}
			block := buf.Bytes()
			if i == 0 {
				// RFC 7541 §6.3: the size update SetMaxDynamicTableSize announces.
				if !bytes.HasPrefix(block, []byte{0x3f, 0xe1, 0x01}) {
					t.Fatalf("no table size update: %x", block)
				}
				block = block[3:]
			}
			rfc, _ := hex.DecodeString(tt.rfc)
			got, want := decodeH2Block(t, ours, buf.Bytes()), decodeH2Block(t, theirs, rfc)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("fields %q\nRFC's  %q", got, want)
			}
			if len(block) > len(rfc) {
				t.Fatalf("%d bytes, the RFC's %d: %x", len(block), len(rfc), block)
			}
		})
	}
}

// TestEncodeH2ResponseHeadError checks that the proxy's own error answers
// (AppendErrorDate) go through the same encoder: head encoded, body after
// HeadLen.
func TestEncodeH2ResponseHeadError(t *testing.T) {
	raw := protocol.AppendErrorDate(nil, 431, "request header list too large", true, h2Date)
	var buf bytes.Buffer
	info, err := protocol.EncodeH2ResponseHead(hpack.NewEncoder(&buf), raw, false, h2Date)
	if err != nil {
		t.Fatal(err)
	}
	want := []kv{{":status", "431"}, {"date", testDate}, {"content-type", "text/plain; charset=utf-8"},
		{"content-length", "30"}}
	if got := decodeH2Block(t, hpack.NewDecoder(4096, nil), buf.Bytes()); !reflect.DeepEqual(got, want) {
		t.Fatalf("fields %q", got)
	}
	if !info.HasBody || info.ContentLength != 30 || string(raw[info.HeadLen:]) != "request header list too large\n" {
		t.Fatalf("info %+v, body %q", info, raw[info.HeadLen:])
	}
}

// h2ResponseHead is a typical response head from a node.
const h2ResponseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 5120\r\n" +
	"Cache-Control: max-age=60\r\nVary: Accept-Encoding\r\nSet-Cookie: sid=3f2a9c; Path=/; HttpOnly\r\n" +
	"Connection: keep-alive\r\n\r\n"

func BenchmarkEncodeH2ResponseHead(b *testing.B) {
	raw := []byte(h2ResponseHead)
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	date := []byte("Sun, 06 Nov 1994 08:49:37 GMT")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if _, err := protocol.EncodeH2ResponseHead(enc, raw, false, date); err != nil {
			b.Fatal(err)
		}
	}
}

// Nodes written for the original echo SERVER_PROTOCOL ("HTTP/2") in their
// status line; the version is dropped on HTTP/2, and HeadLen still
// indexes the node's own bytes.
func TestEncodeH2ResponseHeadHTTP2StatusLine(t *testing.T) {
	for _, version := range []string{"HTTP/2", "HTTP/2.0", "HTTP/1.1"} {
		head := version + " 200 OK\r\nContent-Type: text/html\r\n\r\n"
		raw := []byte(head + "<h1>body</h1>")
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		hr, err := protocol.EncodeH2ResponseHead(enc, raw, false, nil)
		if err != nil {
			t.Fatalf("%s: %v", version, err)
		}
		if hr.HeadLen != len(head) || hr.Status != 200 {
			t.Errorf("%s: HeadLen %d status %d, want %d 200", version, hr.HeadLen, hr.Status, len(head))
		}
		got := decodeH2Block(t, hpack.NewDecoder(4096, nil), buf.Bytes())
		if want := []kv{{":status", "200"}, {"content-type", "text/html"}}; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", version, got, want)
		}
	}
	// Only the head is copied to be read as HTTP/1.1; the body stays put.
	raw := []byte("HTTP/2 200 OK\r\nContent-Length: 4\r\n\r\nbody")
	h11, shift := protocol.H2StatusLineAsHTTP11(raw)
	if string(h11) != "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" || shift != 2 {
		t.Errorf("H2StatusLineAsHTTP11: %q, shift %d", h11, shift)
	}
	if h11, shift := protocol.H2StatusLineAsHTTP11([]byte("HTTP/1.0 200 OK\r\n\r\n")); string(h11) != "HTTP/1.0 200 OK\r\n\r\n" || shift != 0 {
		t.Errorf("H2StatusLineAsHTTP11 of HTTP/1.0: %q, shift %d", h11, shift)
	}
	if _, err := protocol.EncodeH2ResponseHead(hpack.NewEncoder(&bytes.Buffer{}), []byte("HTTP/3 200 OK\r\n\r\n"), false, nil); err == nil {
		t.Errorf("HTTP/3 status line accepted")
	}
}
