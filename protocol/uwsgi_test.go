package protocol_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/blastbeat/blastbeat/protocol"
)

type kv struct{ K, V string }

// uwsgiVars decodes pkt with RangeUwsgi.
func uwsgiVars(tb testing.TB, pkt []byte) []kv {
	tb.Helper()
	var vars []kv
	if err := protocol.RangeUwsgi(pkt, func(k, v []byte) bool {
		vars = append(vars, kv{string(k), string(v)})
		return true
	}); err != nil {
		tb.Fatalf("RangeUwsgi: %v", err)
	}
	return vars
}

// pyUwsgiToDict is the original BlastBeat README's Python decoder,
// statement for statement:
//
//	def uwsgi_to_dict(msg):
//	    (ulen, ) = struct.unpack('<H', msg[1:3])
//	    pos = 4
//	    env = {}
//	    while pos < ulen:
//	        (klen,) = struct.unpack('<H', msg[pos:pos+2])
//	        k = msg[pos+2:pos+2+klen]
//	        pos += 2+klen
//	        (vlen,) = struct.unpack('<H', msg[pos:pos+2])
//	        v = msg[pos+2:pos+2+vlen]
//	        pos += 2+vlen
//	        env[k] = v
//	    return env
//
// Python slices clamp at the end; struct.unpack raises on a short slice,
// which is returned as an error here.
func pyUwsgiToDict(msg []byte) (map[string]string, error) {
	slice := func(lo, hi int) []byte {
		lo, hi = min(lo, len(msg)), min(hi, len(msg))
		if lo > hi {
			return nil
		}
		return msg[lo:hi]
	}
	unpack := func(b []byte) (int, error) {
		if len(b) != 2 {
			return 0, errors.New("struct.error: unpack requires a buffer of 2 bytes")
		}
		return int(binary.LittleEndian.Uint16(b)), nil
	}
	ulen, err := unpack(slice(1, 3))
	if err != nil {
		return nil, err
	}
	pos := 4
	env := map[string]string{}
	for pos < ulen {
		klen, err := unpack(slice(pos, pos+2))
		if err != nil {
			return nil, err
		}
		k := slice(pos+2, pos+2+klen)
		pos += 2 + klen
		vlen, err := unpack(slice(pos, pos+2))
		if err != nil {
			return nil, err
		}
		v := slice(pos+2, pos+2+vlen)
		pos += 2 + vlen
		env[string(k)] = string(v)
	}
	return env, nil
}

func TestUwsgiGolden(t *testing.T) {
	dst := []byte("prefix")
	dst, start := protocol.BeginUwsgi(dst)
	if start != 6 {
		t.Fatalf("start %d", start)
	}
	dst = protocol.AppendUwsgiString(dst, "A", "bc")
	dst = protocol.AppendUwsgiVar(dst, []byte("KEY"), nil)
	dst, err := protocol.FinishUwsgi(dst, start)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("prefix" +
		"\x00\x0e\x00\x00" + // modifier1, datasize 14 (vars only), modifier2
		"\x01\x00A\x02\x00bc" +
		"\x03\x00KEY\x00\x00")
	if !bytes.Equal(dst, want) {
		t.Fatalf("got  %q\nwant %q", dst, want)
	}
	if got := uwsgiVars(t, dst[start:]); !reflect.DeepEqual(got, []kv{{"A", "bc"}, {"KEY", ""}}) {
		t.Fatalf("decoded %v", got)
	}
}

func TestUwsgiRoundTrip(t *testing.T) {
	vars := []kv{
		{"", ""},
		{"k", strings.Repeat("v", 300)}, // a length above 255 tests the byte order
		{strings.Repeat("K", 256), "\x00\xff\r\n"},
		{"dup", "1"},
		{"dup", "2"},
	}
	dst, start := protocol.BeginUwsgi(nil)
	for _, v := range vars {
		dst = protocol.AppendUwsgiVar(dst, []byte(v.K), []byte(v.V))
	}
	dst, err := protocol.FinishUwsgi(dst, start)
	if err != nil {
		t.Fatal(err)
	}
	if size := int(binary.LittleEndian.Uint16(dst[1:3])); size != len(dst)-4 {
		t.Fatalf("datasize %d, vars are %d bytes", size, len(dst)-4)
	}
	if got := uwsgiVars(t, dst); !reflect.DeepEqual(got, vars) {
		t.Fatalf("got %v", got)
	}
	// Stopping early.
	n := 0
	if err := protocol.RangeUwsgi(dst, func(k, v []byte) bool { n++; return n < 2 }); err != nil || n != 2 {
		t.Fatalf("early stop: n=%d err=%v", n, err)
	}
}

func TestUwsgiMalformed(t *testing.T) {
	tests := []struct {
		name string
		pkt  string
	}{
		{name: "empty", pkt: ""},
		{name: "short header", pkt: "\x00\x00\x00"},
		{name: "datasize beyond the packet", pkt: "\x00\x05\x00\x00\x01\x00a\x00"},
		{name: "one byte of a key length", pkt: "\x00\x01\x00\x00\x01"},
		{name: "key longer than the vars", pkt: "\x00\x04\x00\x00\x05\x00ab"},
		{name: "missing value length", pkt: "\x00\x03\x00\x00\x01\x00a"},
		{name: "value longer than the vars", pkt: "\x00\x06\x00\x00\x01\x00a\x02\x00b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := protocol.RangeUwsgi([]byte(tt.pkt), func(k, v []byte) bool { return true })
			if !errors.Is(err, protocol.ErrUwsgiMalformed) {
				t.Fatalf("err %v", err)
			}
		})
	}
	// Bytes after datasize belong to the next packet, not to this one.
	pkt := []byte("\x00\x04\x00\x00\x00\x00\x00\x00trailing")
	if got := uwsgiVars(t, pkt); !reflect.DeepEqual(got, []kv{{"", ""}}) {
		t.Fatalf("got %v", got)
	}
}

func TestUwsgiTooLarge(t *testing.T) {
	dst := []byte("keep")
	dst, start := protocol.BeginUwsgi(dst)
	dst = protocol.AppendUwsgiString(dst, "K", strings.Repeat("v", 65535-5)) // 2+1+2 bytes of lengths and key
	if got, err := protocol.FinishUwsgi(dst, start); err != nil || len(got) != 4+4+65535 {
		t.Fatalf("65535 bytes of vars: len %d err %v", len(got), err)
	}
	dst = append(dst, 'x') // one byte over
	got, err := protocol.FinishUwsgi(dst, start)
	if err != protocol.ErrUwsgiTooLarge || string(got) != "keep" {
		t.Fatalf("65536 bytes of vars: %q... err %v", got[:min(len(got), 8)], err)
	}
	// A single value over 65535 bytes cannot be encoded at all.
	dst, start = protocol.BeginUwsgi(nil)
	dst = protocol.AppendUwsgiString(dst, "K", strings.Repeat("v", 70000))
	if _, err := protocol.FinishUwsgi(dst, start); err != protocol.ErrUwsgiTooLarge {
		t.Fatalf("70000-byte value: err %v", err)
	}
}

// parseHead parses one request head with generous limits.
func parseHead(tb testing.TB, raw string) *protocol.Request {
	tb.Helper()
	p := protocol.NewRequestParser(protocol.Limits{MaxHeadBytes: 1 << 20, MaxURIBytes: 1 << 20})
	_, ev, _, err := p.Feed([]byte(raw))
	if ev != protocol.EvHead || err != nil {
		tb.Fatalf("%q: ev=%d err=%v", raw, ev, err)
	}
	return p.Request()
}

var plainConn = &protocol.ConnInfo{ServerPort: "8080", RemoteAddr: "192.0.2.7", RemotePort: "54321"}

func environ(tb testing.TB, raw string, ci *protocol.ConnInfo) []kv {
	tb.Helper()
	pkt, err := protocol.AppendEnviron(nil, parseHead(tb, raw), ci)
	if err != nil {
		tb.Fatal(err)
	}
	return uwsgiVars(tb, pkt)
}

func TestAppendEnviron(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		ci   *protocol.ConnInfo
		want []kv
	}{
		{
			name: "PROTOCOL.md order, joins, no HTTP_CONTENT_*",
			raw: "POST /a%20b/c%2Fd?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\n" +
				"Content-Length: 3\r\nContent-Type: text/plain\r\nAccept: a\r\nCookie: a=1\r\n" +
				"X-Forwarded-For: 1.2.3.4\r\naccept: b\r\nCOOKIE: b=2\r\n\r\n",
			ci: plainConn,
			want: []kv{
				{"REQUEST_METHOD", "POST"},
				{"REQUEST_URI", "/a%20b/c%2Fd?x=1&y=%20"},
				{"PATH_INFO", "/a b/c/d"},
				{"QUERY_STRING", "x=1&y=%20"},
				{"SERVER_PROTOCOL", "HTTP/1.1"},
				{"SCRIPT_NAME", ""},
				{"SERVER_NAME", "example.com"},
				{"SERVER_PORT", "8080"},
				{"REMOTE_ADDR", "192.0.2.7"},
				{"REMOTE_PORT", "54321"},
				{"UWSGI_SCHEME", "http"},
				{"CONTENT_TYPE", "text/plain"},
				{"CONTENT_LENGTH", "3"},
				{"HTTP_HOST", "example.com:8080"},
				{"HTTP_ACCEPT", "a, b"},
				{"HTTP_COOKIE", "a=1; b=2"},
				{"HTTP_X_FORWARDED_FOR", "1.2.3.4"},
			},
		},
		{
			name: "TLS, HTTP/2, no body headers",
			raw:  "GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\nuser-agent: x\r\nX-Custom-Name.v2: y\r\n\r\n",
			ci:   &protocol.ConnInfo{ServerPort: "443", RemoteAddr: "2001:db8::2", RemotePort: "1", TLS: true, Proto: "HTTP/2"},
			want: []kv{
				{"REQUEST_METHOD", "GET"},
				{"REQUEST_URI", "/"},
				{"PATH_INFO", "/"},
				{"QUERY_STRING", ""},
				{"SERVER_PROTOCOL", "HTTP/2"},
				{"SCRIPT_NAME", ""},
				{"SERVER_NAME", "[2001:db8::1]"},
				{"SERVER_PORT", "443"},
				{"REMOTE_ADDR", "2001:db8::2"},
				{"REMOTE_PORT", "1"},
				{"HTTPS", "on"},
				{"UWSGI_SCHEME", "https"},
				{"HTTP_HOST", "[2001:db8::1]:443"},
				{"HTTP_USER_AGENT", "x"},
				{"HTTP_X_CUSTOM_NAME.V2", "y"},
			},
		},
		{
			name: "HTTP/1.0, no Host, repeated Content-Type, identical Content-Lengths",
			raw: "PUT /up HTTP/1.0\r\nContent-Type: a\r\nContent-Length: 2, 2\r\n" +
				"Content-Type: b\r\ncontent-length: 2\r\n\r\n",
			ci: plainConn,
			want: []kv{
				{"REQUEST_METHOD", "PUT"},
				{"REQUEST_URI", "/up"},
				{"PATH_INFO", "/up"},
				{"QUERY_STRING", ""},
				{"SERVER_PROTOCOL", "HTTP/1.0"},
				{"SCRIPT_NAME", ""},
				{"SERVER_NAME", ""},
				{"SERVER_PORT", "8080"},
				{"REMOTE_ADDR", "192.0.2.7"},
				{"REMOTE_PORT", "54321"},
				{"UWSGI_SCHEME", "http"},
				{"CONTENT_TYPE", "a, b"},
				{"CONTENT_LENGTH", "2"},
			},
		},
		{
			name: "chunked request has no CONTENT_LENGTH",
			raw:  "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: h\r\n\r\n",
			ci:   plainConn,
			want: []kv{
				{"REQUEST_METHOD", "POST"},
				{"REQUEST_URI", "/"},
				{"PATH_INFO", "/"},
				{"QUERY_STRING", ""},
				{"SERVER_PROTOCOL", "HTTP/1.1"},
				{"SCRIPT_NAME", ""},
				{"SERVER_NAME", "h"},
				{"SERVER_PORT", "8080"},
				{"REMOTE_ADDR", "192.0.2.7"},
				{"REMOTE_PORT", "54321"},
				{"UWSGI_SCHEME", "http"},
				{"HTTP_TRANSFER_ENCODING", "chunked"},
				{"HTTP_HOST", "h"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := environ(t, tt.raw, tt.ci)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got:\n%v\nwant:\n%v", got, tt.want)
			}
		})
	}
}

func TestAppendEnvironPathInfo(t *testing.T) {
	tests := []struct {
		name, target, want string
	}{
		{name: "plain", target: "/a/b", want: "/a/b"},
		{name: "escaped space", target: "/a%20b", want: "/a b"},
		{name: "escaped slash", target: "/a%2fb%2F", want: "/a/b/"},
		{name: "upper and lower hex", target: "/%41%6a", want: "/Aj"},
		{name: "UTF-8", target: "/caf%C3%A9", want: "/caf\xc3\xa9"},
		{name: "query not decoded into the path", target: "/p%20?q=%20", want: "/p "},
		{name: "invalid escape kept", target: "/%zz%4", want: "/%zz%4"},
		{name: "percent at the end", target: "/a%", want: "/a%"},
		{name: "one hex digit before the end", target: "/a%2", want: "/a%2"},
		{name: "escape at the very end", target: "/a%2F", want: "/a/"},
		{name: "escaped percent", target: "/%2541", want: "/%41"},
		{name: "absolute-form", target: "http://h/x%2Fy", want: "/x/y"},
		{name: "absolute-form https with port", target: "HTTPS://h:1/p", want: "/p"},
		{name: "absolute-form without path", target: "http://h", want: "/"},
		{name: "absolute-form with only a query", target: "http://h?q", want: "/"},
		{name: "asterisk", target: "*", want: "*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, host := "GET", "h"
			if tt.target == "*" {
				method = "OPTIONS"
			}
			if strings.Contains(tt.target, "h:1") {
				host = "h:1"
			}
			vars := environ(t, method+" "+tt.target+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n", plainConn)
			if vars[2].K != "PATH_INFO" || vars[2].V != tt.want {
				t.Fatalf("%v, want PATH_INFO %q", vars[2], tt.want)
			}
			if vars[1].V != tt.target {
				t.Fatalf("REQUEST_URI %q, want the raw target", vars[1].V)
			}
		})
	}
}

// TestAppendEnvironPathInfoNoControl checks the defence in depth behind
// ErrBadPathEscape: given a Request the parser would have refused,
// PATH_INFO keeps escapes of NUL, CR and LF as they are and never holds
// those bytes.
func TestAppendEnvironPathInfoNoControl(t *testing.T) {
	tests := []struct {
		name, path, want string
	}{
		{name: "NUL", path: "/a%00b", want: "/a%00b"},
		{name: "CR LF in both cases", path: "/%0d%0A%0D%0a", want: "/%0d%0A%0D%0a"},
		{name: "other escapes still decoded", path: "/%41%0d%20", want: "/A%0d "},
		{name: "after an invalid escape", path: "/%%0a", want: "/%%0a"},
		{name: "absolute-form", path: "http://h/x%00", want: "/x%00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &protocol.Request{Method: []byte("GET"), URI: []byte(tt.path), Path: []byte(tt.path),
				Host: []byte("h"), Minor: 1, ContentLength: -1}
			pkt, err := protocol.AppendEnviron(nil, r, plainConn)
			if err != nil {
				t.Fatal(err)
			}
			vars := uwsgiVars(t, pkt)
			if vars[2].K != "PATH_INFO" || vars[2].V != tt.want {
				t.Fatalf("%v, want PATH_INFO %q", vars[2], tt.want)
			}
			if strings.ContainsAny(vars[2].V, "\x00\r\n") {
				t.Fatalf("PATH_INFO %q holds NUL, CR or LF", vars[2].V)
			}
		})
	}
}

// TestAppendEnvironUpgrade checks that Upgrade, a hop-by-hop field (RFC
// 9110 §7.8), reaches the environ only when Connection lists "upgrade",
// and that HTTP_CONNECTION is passed on as it is either way.
func TestAppendEnvironUpgrade(t *testing.T) {
	tests := []struct {
		name       string
		fields     string
		upgrade    string // "" means no HTTP_UPGRADE
		connection string // "" means no HTTP_CONNECTION
	}{
		{name: "Upgrade without Connection", fields: "Upgrade: websocket\r\n"},
		{name: "Connection without the token", fields: "Upgrade: websocket\r\nConnection: keep-alive\r\n", connection: "keep-alive"},
		{name: "Connection token that only starts with upgrade", fields: "Connection: upgraded\r\nUpgrade: h2c\r\n", connection: "upgraded"},
		{name: "Connection: Upgrade", fields: "Upgrade: websocket\r\nConnection: Upgrade\r\n", upgrade: "websocket", connection: "Upgrade"},
		{name: "token in a list, any case, Upgrade fields joined", fields: "Connection: keep-alive, UPGRADE\r\nUpgrade: foo/1\r\nupgrade: websocket\r\n",
			upgrade: "foo/1, websocket", connection: "keep-alive, UPGRADE"},
		{name: "token in a second Connection field", fields: "Connection: keep-alive\r\nUpgrade: websocket\r\nConnection: upgrade\r\n",
			upgrade: "websocket", connection: "keep-alive, upgrade"},
		{name: "Connection: upgrade without Upgrade", fields: "Connection: upgrade\r\n", connection: "upgrade"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for _, v := range environ(t, "GET / HTTP/1.1\r\nHost: h\r\n"+tt.fields+"\r\n", plainConn) {
				env[v.K] = v.V
			}
			if got, ok := env["HTTP_UPGRADE"]; got != tt.upgrade || ok != (tt.upgrade != "") {
				t.Fatalf("HTTP_UPGRADE %q (present %v), want %q", got, ok, tt.upgrade)
			}
			if got, ok := env["HTTP_CONNECTION"]; got != tt.connection || ok != (tt.connection != "") {
				t.Fatalf("HTTP_CONNECTION %q (present %v), want %q", got, ok, tt.connection)
			}
		})
	}
}

// TestAppendEnvironUpgradeHTTP10: an HTTP/1.0 request's Upgrade is
// ignored (RFC 9110 §7.8) whatever Connection says: no HTTP_UPGRADE, so
// a node does not take the plain request it is for a WebSocket.
func TestAppendEnvironUpgradeHTTP10(t *testing.T) {
	env := map[string]string{}
	for _, v := range environ(t, "GET / HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", plainConn) {
		env[v.K] = v.V
	}
	if got, ok := env["HTTP_UPGRADE"]; ok {
		t.Fatalf("HTTP_UPGRADE %q in an HTTP/1.0 request's environ", got)
	}
	if env["HTTP_CONNECTION"] != "Upgrade" || env["SERVER_PROTOCOL"] != "HTTP/1.0" {
		t.Fatalf("environ %v", env)
	}
}

// TestAppendEnvironHopByHop: Keep-Alive, TE, Proxy-Connection and the
// fields Connection names are not forwarded (RFC 9110 §7.6.1), but for
// those the environ needs; Connection itself goes on as it always did.
func TestAppendEnvironHopByHop(t *testing.T) {
	env := map[string]string{}
	head := "POST / HTTP/1.1\r\nHost: h\r\nConnection: X-Secret, keep-alive, Host, Transfer-Encoding, X-Forwarded-For\r\n" +
		"X-Secret: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: x\r\nX-Other: y\r\nTransfer-Encoding: chunked\r\n" +
		"X-Forwarded-For: 10.0.0.1\r\n\r\n"
	for _, v := range environ(t, head, plainConn) {
		env[v.K] = v.V
	}
	for _, k := range []string{"HTTP_X_SECRET", "HTTP_KEEP_ALIVE", "HTTP_TE", "HTTP_PROXY_CONNECTION"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s = %q forwarded", k, v)
		}
	}
	for k, want := range map[string]string{"HTTP_X_OTHER": "y", "HTTP_HOST": "h", "HTTP_TRANSFER_ENCODING": "chunked",
		"HTTP_CONNECTION": "X-Secret, keep-alive, Host, Transfer-Encoding, X-Forwarded-For", "HTTP_X_FORWARDED_FOR": "10.0.0.1"} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
}

func TestAppendEnvironTooLarge(t *testing.T) {
	build := func(n int) string {
		return "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("v", n) + "\r\n\r\n"
	}
	empty, err := protocol.AppendEnviron(nil, parseHead(t, build(0)), plainConn)
	if err != nil {
		t.Fatal(err)
	}
	fit := 65535 - (len(empty) - 4) // value bytes that fill datasize exactly
	pkt, err := protocol.AppendEnviron([]byte("pre"), parseHead(t, build(fit)), plainConn)
	if err != nil || len(pkt) != 3+4+65535 || binary.LittleEndian.Uint16(pkt[4:6]) != 65535 {
		t.Fatalf("exactly 65535 bytes of vars: len %d err %v", len(pkt), err)
	}
	uwsgiVars(t, pkt[3:])
	for _, n := range []int{fit + 1, 70000} {
		dst := []byte("pre")
		got, err := protocol.AppendEnviron(dst, parseHead(t, build(n)), plainConn)
		if err != protocol.ErrUwsgiTooLarge || string(got) != "pre" {
			t.Fatalf("value of %d bytes: len %d err %v", n, len(got), err)
		}
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Status != 431 {
			t.Fatalf("status %v", err)
		}
	}
}

// TestUwsgiOriginalDecoder decodes AppendEnviron's packets with the
// original README's Python algorithm, which loops while pos < datasize
// from pos 4: it must still see every var (PROTOCOL.md promises that the
// old backends keep working).
func TestUwsgiOriginalDecoder(t *testing.T) {
	for _, raw := range []string{
		browserGET,
		"GET / HTTP/1.0\r\n\r\n",
		"POST /f?x HTTP/1.1\r\nHost: a:1\r\nContent-Type: t\r\nContent-Length: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n", // the last var is HTTP_X with an empty value
	} {
		for _, ci := range []*protocol.ConnInfo{plainConn, {TLS: true}} {
			pkt, err := protocol.AppendEnviron(nil, parseHead(t, raw), ci)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			for _, v := range uwsgiVars(t, pkt) {
				want[v.K] = v.V
			}
			got, err := pyUwsgiToDict(pkt)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: python decoder got %v (err %v)\nwant %v", raw, got, err, want)
			}
		}
	}
}

func TestSplitHostPort(t *testing.T) {
	tests := []struct{ in, host, port string }{
		{"example.com", "example.com", ""},
		{"example.com:8080", "example.com", "8080"},
		{"example.com:", "example.com", ""},
		{"[::1]", "[::1]", ""},
		{"[::1]:443", "[::1]", "443"},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			h, p := protocol.SplitHostPort([]byte(tt.in))
			if string(h) != tt.host || string(p) != tt.port {
				t.Fatalf("got %q %q", h, p)
			}
		})
	}
}

func BenchmarkAppendEnviron(b *testing.B) {
	r := parseHead(b, browserGET)
	dst, err := protocol.AppendEnviron(nil, r, plainConn)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(dst)))
	b.ReportAllocs()
	for b.Loop() {
		dst, err = protocol.AppendEnviron(dst[:0], r, plainConn)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleAppendEnviron() {
	p := protocol.NewRequestParser(protocol.Limits{})
	p.Feed([]byte("GET /a%20b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	pkt, _ := protocol.AppendEnviron(nil, p.Request(), &protocol.ConnInfo{ServerPort: "80", RemoteAddr: "10.0.0.1", RemotePort: "4242"})
	protocol.RangeUwsgi(pkt, func(k, v []byte) bool {
		fmt.Printf("%s=%s\n", k, v)
		return true
	})
	// Output:
	// REQUEST_METHOD=GET
	// REQUEST_URI=/a%20b?c=d
	// PATH_INFO=/a b
	// QUERY_STRING=c=d
	// SERVER_PROTOCOL=HTTP/1.1
	// SCRIPT_NAME=
	// SERVER_NAME=example.com
	// SERVER_PORT=80
	// REMOTE_ADDR=10.0.0.1
	// REMOTE_PORT=4242
	// UWSGI_SCHEME=http
	// HTTP_HOST=example.com
}

func TestAppendEnvironDropsSpoofableHeaders(t *testing.T) {
	raw := "GET / HTTP/1.1\r\nHost: a\r\nX-Real-IP: 1.1.1.1\r\nX_Real_IP: 6.6.6.6\r\nProxy: http://evil\r\n\r\n"
	p := protocol.NewRequestParser(protocol.Limits{})
	if _, ev, _, err := p.Feed([]byte(raw)); ev != protocol.EvHead || err != nil {
		t.Fatalf("Feed: %v %v", ev, err)
	}
	pkt, err := protocol.AppendEnviron(nil, p.Request(), &protocol.ConnInfo{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	protocol.RangeUwsgi(pkt, func(k, v []byte) bool { env[string(k)] = string(v); return true })
	if env["HTTP_X_REAL_IP"] != "1.1.1.1" {
		t.Fatalf("HTTP_X_REAL_IP = %q, want the dash spelling's value only", env["HTTP_X_REAL_IP"])
	}
	if _, ok := env["HTTP_PROXY"]; ok {
		t.Fatal("Proxy header reached the environ as HTTP_PROXY")
	}
}

// TestEnvironConnValues: a ConnInfo given as values (LocalPort, Remote)
// makes the same environ as one given as strings, IPv4 addresses seen
// through an IPv6 socket and zoned IPv6 addresses included; RemoteIP
// agrees.
func TestEnvironConnValues(t *testing.T) {
	p := protocol.NewRequestParser(protocol.Limits{})
	p.Feed([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	for _, tt := range []struct {
		remote netip.AddrPort
		ip     string
	}{
		{netip.MustParseAddrPort("192.0.2.7:54321"), "192.0.2.7"},
		{netip.MustParseAddrPort("[::ffff:192.0.2.7]:1"), "192.0.2.7"},
		{netip.MustParseAddrPort("[2001:db8::2]:65535"), "2001:db8::2"},
		{netip.AddrPortFrom(netip.MustParseAddr("fe80::1%eth0"), 80), "fe80::1"},
	} {
		port := fmt.Sprint(tt.remote.Port())
		want, err := protocol.AppendEnviron(nil, p.Request(), &protocol.ConnInfo{ServerPort: "8443", RemoteAddr: tt.ip, RemotePort: port, TLS: true})
		if err != nil {
			t.Fatal(err)
		}
		ci := &protocol.ConnInfo{LocalPort: 8443, Remote: tt.remote, TLS: true}
		got, err := protocol.AppendEnviron(nil, p.Request(), ci)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%v: the environ from values differs:\n got %q\nwant %q", tt.remote, got, want)
		}
		if ci.RemoteIP() != tt.ip {
			t.Errorf("%v: RemoteIP %q, want %q", tt.remote, ci.RemoteIP(), tt.ip)
		}
	}
}
