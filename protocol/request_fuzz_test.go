package protocol_test

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/blastbeat/blastbeat/protocol"
)

// fuzzLimits are small enough for the fuzzer to reach every limit.
var fuzzLimits = protocol.Limits{MaxHeadBytes: 2048, MaxURIBytes: 512, MaxHeaders: 16, MaxBodyBytes: 1 << 16}

// FuzzRequest parses the input whole and cut at a fuzzed point, which must
// agree, and compares the first request with net/http's ReadRequest.
//
// We may refuse what net/http accepts (we are stricter: CL with TE, TE in
// HTTP/1.0, missing Host, a bare CR, ...). Refusing a head ends the
// comparison (there is no request of ours to compare). The stricter rules
// that net/http does not share:
//
//   - A path whose percent-escapes decode to NUL, CR or LF (ErrBadPathEscape):
//     the proxy decodes the path into PATH_INFO, net/http never decodes
//     RequestURI, so it has no reason to refuse.
//   - "options *", "get *", "connect a:443": methods are case-sensitive
//     (RFC 9110 §9.1), so these are extension methods with a target form
//     that only OPTIONS (asterisk) or CONNECT (authority) may use; net/http
//     accepts any target for any method but CONNECT.
//   - In a chunked body, whitespace right after the chunk size ("5 \r\n",
//     "5\t;a"), a ';' without a name, an extension name that is not a
//     token, a value that is neither token nor quoted-string, and
//     whitespace before the CR (RFC 9112 §7.1.1's grammar; nginx refuses
//     whitespace after the size too). net/http trims trailing whitespace
//     and ignores everything after ';'. The refusal comes mid-body: the
//     request has not ended, and compareNetHTTP compares no body for it.
//
// Where we accept what net/http refuses, the input must fall under one of
// these documented leniencies:
//
//   - Empty lines (CRLF) before the request line are skipped (RFC 9112
//     §2.2); net/http's server does this too, ReadRequest does not, so
//     net/http is given the input after them.
//   - Invalid percent-encoding in the path ("/%zz") is forwarded as it is
//     (REQUEST_URI raw, PATH_INFO keeps the bad escape); it frames nothing.
//   - A Content-Length list of identical values ("5, 5") and repeated
//     Content-Length fields that are equal as numbers ("5" and "05") are
//     one length (RFC 9110 §8.6); the backend gets the number.
//   - In a chunked body, a size may have more than 16 leading zeros, and
//     trailer lines are skipped unparsed (bounded by MaxHeadBytes, bare LF
//     refused): neither is forwarded. For the same reason the Trailer
//     field is not checked (net/http refuses one that names
//     Content-Length, Transfer-Encoding or Trailer).
//
// A leniency never excuses a framing difference: where net/http refuses,
// the lenient part is undone (the head rebuilt with the path's bad '%'
// escaped and one Content-Length; the chunked body re-encoded without
// extensions, leading zeros and trailers) and net/http must then accept
// and agree on method, URI, Host, Content-Length, chunked-ness, every
// other field and the body.
//
// Independently of net/http, an accepted head must hold no bare LF, no
// bare CR and no obs-fold.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		simpleGET,
		simplePOST,
		chunkedPOST,
		browserGET,
		simpleGET + simplePOST,
		"\r\nGET / HTTP/1.0\r\n\r\n",
		"GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1, 1\r\n\r\nx",
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		whole := drive(t, protocol.NewRequestParser(fuzzLimits), in)
		k := int(split) % (len(in) + 1)
		cut := drive(t, protocol.NewRequestParser(fuzzLimits), in[:k], in[k:])
		if !reflect.DeepEqual(whole, cut) {
			t.Fatalf("cut at %d:\n%v\nwhole:\n%v", k, cut, whole)
		}
		if len(whole.Reqs) == 0 {
			return
		}
		ours := whole.Reqs[0]
		checkHeadShape(t, in[:ours.HeadLen])
		compareNetHTTP(t, ours, in)
	})
}

// compareNetHTTP compares the first request we parsed from in with what
// net/http reads. Where net/http refuses, the documented leniency is
// undone and net/http must then accept and agree, so that a leniency
// never hides a framing difference.
func compareNetHTTP(t *testing.T, ours parsedReq, in []byte) {
	t.Helper()
	lead := 0
	for lead < ours.HeadLen && (in[lead] == '\r' || in[lead] == '\n') {
		lead++
	}
	head, rest := in[lead:ours.HeadLen], in[ours.HeadLen:]
	theirs, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in[lead:])))
	if err != nil {
		fixed, why := undoHeadLeniency(ours)
		if why == "" {
			t.Fatalf("we accept, net/http refuses: %v\nhead %q\nours %+v", err, head, ours)
		}
		theirs, err = http.ReadRequest(bufio.NewReader(bytes.NewReader(append(fixed, rest...))))
		if err != nil {
			t.Fatalf("we accept, net/http refuses even without the %s: %v\nhead %q\nrewritten %q", why, err, head, fixed)
		}
		head = fixed
	}
	theirChunked := len(theirs.TransferEncoding) > 0 && theirs.TransferEncoding[0] == "chunked"
	switch {
	case theirs.Method != ours.Method:
		t.Fatalf("method %q, net/http %q", ours.Method, theirs.Method)
	case theirs.RequestURI != ours.URI && !badEscape(ours.Path):
		t.Fatalf("URI %q, net/http %q", ours.URI, theirs.RequestURI)
	case theirs.Host != ours.Host:
		t.Fatalf("Host %q, net/http %q\nhead %q", ours.Host, theirs.Host, head)
	case ours.ContentLength >= 0 && theirs.ContentLength != ours.ContentLength:
		t.Fatalf("Content-Length %d, net/http %d", ours.ContentLength, theirs.ContentLength)
	case theirChunked != ours.Chunked:
		t.Fatalf("chunked %v, net/http %v", ours.Chunked, theirChunked)
	case theirs.ProtoMinor != ours.Minor || theirs.ProtoMajor != 1:
		t.Fatalf("version 1.%d, net/http %d.%d", ours.Minor, theirs.ProtoMajor, theirs.ProtoMinor)
	}
	compareFields(t, ours, theirs.Header)
	if !ours.Ended {
		// The body is incomplete, or we refused it: by the chunk-line
		// rules that are stricter than net/http's (see FuzzRequest) or
		// by a limit. A refusal delivers no body, so there is nothing to
		// compare and no framing difference to hide.
		return
	}
	body, err := io.ReadAll(theirs.Body)
	if err != nil && ours.Chunked {
		canon, changed, ok := canonicalChunks(rest)
		if !ok || !changed {
			t.Fatalf("we read the body %q, net/http fails: %v\ninput %q", ours.Body, err, in)
		}
		again, err2 := http.ReadRequest(bufio.NewReader(bytes.NewReader(append(append([]byte{}, head...), canon...))))
		if err2 == nil {
			body, err = io.ReadAll(again.Body)
		}
		if err2 != nil || err != nil {
			t.Fatalf("net/http fails on the body even without chunk-ext, leading zeros and trailers: %v %v\ninput %q", err2, err, in)
		}
	}
	if err != nil || string(body) != ours.Body {
		t.Fatalf("body %q, net/http %q (%v)\ninput %q", ours.Body, body, err, in)
	}
}

// compareFields checks that net/http saw the same field values, except
// for the fields it consumes (Host, Transfer-Encoding, Content-Length,
// Trailer).
func compareFields(t *testing.T, ours parsedReq, theirs http.Header) {
	t.Helper()
	want := http.Header{}
	for _, h := range ours.Headers {
		name, val, _ := strings.Cut(h, ": ")
		key := textproto.CanonicalMIMEHeaderKey(name)
		want[key] = append(want[key], val)
	}
	theirs = theirs.Clone()
	for _, k := range []string{"Host", "Transfer-Encoding", "Content-Length", "Trailer"} {
		delete(want, k)
		delete(theirs, k)
	}
	if len(want) == 0 && len(theirs) == 0 {
		return
	}
	if !reflect.DeepEqual(want, theirs) {
		t.Fatalf("fields %q, net/http %q", want, theirs)
	}
}

// undoHeadLeniency rebuilds the head without the documented head
// leniencies, or returns "" when none applies.
func undoHeadLeniency(ours parsedReq) ([]byte, string) {
	var why []string
	uri := ours.URI
	if badEscape(ours.Path) {
		why = append(why, "invalid percent-encoding in the path")
		var b strings.Builder
		for i := 0; i < len(ours.Path); i++ {
			if ours.Path[i] == '%' && (i+2 >= len(ours.Path) || !isHex(ours.Path[i+1]) || !isHex(ours.Path[i+2])) {
				b.WriteString("%25")
				continue
			}
			b.WriteByte(ours.Path[i])
		}
		uri = b.String() + ours.URI[len(ours.Path):]
	}
	var cls []string
	for _, h := range ours.Headers {
		if name, val, _ := strings.Cut(h, ": "); strings.EqualFold(name, "Content-Length") {
			cls = append(cls, val)
		}
	}
	if len(cls) > 1 || len(cls) == 1 && strings.Contains(cls[0], ",") {
		why = append(why, "Content-Length list or repeat of one value")
	}
	trailer := false
	for _, h := range ours.Headers {
		if name, _, _ := strings.Cut(h, ": "); strings.EqualFold(name, "Trailer") {
			trailer = true
		}
	}
	if trailer && ours.Chunked {
		why = append(why, "unchecked Trailer field")
	}
	if len(why) == 0 {
		return nil, ""
	}
	b := []byte(ours.Method + " " + uri + " HTTP/1." + strconv.Itoa(ours.Minor) + "\r\n")
	for _, h := range ours.Headers {
		name, _, _ := strings.Cut(h, ": ")
		if !strings.EqualFold(name, "Content-Length") && !(ours.Chunked && strings.EqualFold(name, "Trailer")) {
			b = append(b, h+"\r\n"...)
		}
	}
	if len(cls) > 0 {
		b = append(b, "Content-Length: "+strconv.FormatInt(ours.ContentLength, 10)+"\r\n"...)
	}
	return append(b, "\r\n"...), strings.Join(why, " and ")
}

// canonicalChunks rewrites a chunked body we accepted without its
// leniencies: chunk-ext dropped, sizes without leading zeros, trailer
// lines dropped. changed reports whether any of them was there.
func canonicalChunks(b []byte) (out []byte, changed, ok bool) {
	for {
		eol := bytes.Index(b, []byte("\r\n"))
		if eol < 0 {
			return nil, false, false
		}
		line := b[:eol]
		b = b[eol+2:]
		i := 0
		for i < len(line) && isHex(line[i]) {
			i++
		}
		size, err := strconv.ParseUint(string(line[:i]), 16, 64)
		if err != nil {
			return nil, false, false
		}
		if i != len(line) || (i > 1 && line[0] == '0') {
			changed = true
		}
		out = strconv.AppendUint(out, size, 16)
		out = append(out, "\r\n"...)
		if size == 0 {
			for {
				eol := bytes.Index(b, []byte("\r\n"))
				if eol < 0 {
					return nil, false, false
				}
				if eol == 0 {
					return append(out, "\r\n"...), changed, true
				}
				changed = true
				b = b[eol+2:]
			}
		}
		if uint64(len(b)) < size+2 {
			return nil, false, false
		}
		out = append(out, b[:size]...)
		out = append(out, "\r\n"...)
		b = b[size+2:]
	}
}

// checkHeadShape fails when an accepted head holds a bare LF, a bare CR
// or an obs-fold: PROTOCOL.md refuses them whatever net/http does.
func checkHeadShape(t *testing.T, head []byte) {
	t.Helper()
	for i, c := range head {
		switch {
		case c == '\n' && (i == 0 || head[i-1] != '\r'):
			t.Fatalf("accepted a bare LF at %d: %q", i, head)
		case c == '\r' && (i+1 == len(head) || head[i+1] != '\n'):
			t.Fatalf("accepted a bare CR at %d: %q", i, head)
		case c == '\n' && i+1 < len(head) && (head[i+1] == ' ' || head[i+1] == '\t'):
			t.Fatalf("accepted an obs-fold at %d: %q", i, head)
		}
	}
}

func badEscape(path string) bool {
	for i := 0; i < len(path); i++ {
		if path[i] == '%' && (i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2])) {
			return true
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// TestRequestDifferentialGrammar is FuzzRequest's differential on inputs
// assembled from request grammar pieces, odd ones included, which the
// byte-level fuzzer rarely builds. The seed is fixed, so failures repeat.
func TestRequestDifferentialGrammar(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	methods := []string{"GET", "POST", "PUT", "OPTIONS", "CONNECT", "X-Y", "get", "G@T", "PRI", "options", "connect", "head"}
	targets := []string{"/", "/a?b", "*", "/%zz", "/%41", "http://a/", "http://a:80/x", "HTTP://A",
		"https://a?x", "http://a:b/", "http://[::1]:8/", "http://a#b/", "http://u@a/", "/a#b", "/\xff",
		"//a/b", "http://a%41/", "http://a/%zz", "/a b", "ftp://a/", "http://", "http:///", "http://a:/",
		"http://[::1]x/", "http://[a/", "http://a[b]/", "http://[]/", "http://[zz]/", "http://a:8:9/",
		"http://::1/", "http://a:+1/", "http://[::1]:/", "http://:80/", "http://[fe80::1%25e]/",
		"http://[1.2.3.4]/", "http://a]/", "http://1.2.3.4:5?q", "/%00", "/a%0D%0a", "/?%00%0d%0A", "http://a/%0a",
		"/%2500", "a:443"}
	versions := []string{"HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "HTTP/01.1"}
	names := []string{"Host", "host", "X", "Content-Length", "Transfer-Encoding", "Connection", "Expect",
		"Trailer", "Upgrade", "X_Y", "X Y", "Cookie", "Content-Type", "A.b~c"}
	values := []string{"a", "", " a ", "a, b", "chunked", "Chunked", "chunked ", "identity", "0", "3",
		"03", "3, 3", "3,3", " 3", "+3", "close", "keep-alive", "100-continue", "\xc2\xa0", "a\tb",
		"[::1]", "a:1", "a:b", "\x01", "a\x7f", "Content-Length", "\xc3\xa9"}
	ows := []string{" ", "", "  ", "\t"}
	hosts := []string{"a", "A", "a:80", "[::1]:8", "b"}
	bodies := []string{"", "abc", "3\r\nabc\r\n0\r\n\r\n", "3;x\r\nabc\r\n0\r\n\r\n", "3 ;x\r\nabc\r\n0\r\n\r\n",
		"0003\r\nabc\r\n0\r\nX: y\r\n\r\n", "3\r\nabc\r\n0\r\nbad\r\n\r\n", "3\r\nabcd\r\n0\r\n\r\n",
		"3 \r\nabc\r\n0\r\n\r\n", "00000000000000000003\r\nabc\r\n0\r\n\r\n",
		"3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n", "3;\r\nabc\r\n0\r\n\r\n", "3\t\r\nabc\r\n0\r\n\r\n",
		"3; a = \"b c\" ;d\r\nabc\r\n0;e=f\r\n\r\n", "3;a=b c\r\nabc\r\n0\r\n\r\n", "3;a=\"\\\"\"\r\nabc\r\n0\r\n\r\n",
		"3;a \r\nabc\r\n0\r\n\r\n", "3;(\r\nabc\r\n0\r\n\r\n"}
	accepted := 0
	for range 50000 {
		var b strings.Builder
		if r.IntN(10) == 0 {
			b.WriteString("\r\n")
		}
		target := pick(targets)
		b.WriteString(pick(methods) + " " + target + " " + pick(versions) + "\r\n")
		for k := r.IntN(5); k > 0; k-- {
			b.WriteString(pick(names) + ":" + pick(ows) + pick(values) + "\r\n")
		}
		if _, auth, ok := strings.Cut(target, "://"); ok && r.IntN(2) == 0 {
			auth, _, _ = strings.Cut(auth, "/")
			auth, _, _ = strings.Cut(auth, "?")
			b.WriteString("Host: " + auth + "\r\n") // the Host an absolute-form target needs
		} else if r.IntN(2) == 0 {
			b.WriteString("Host: " + pick(hosts) + "\r\n")
		}
		b.WriteString("\r\n" + pick(bodies))
		in := []byte(b.String())
		whole := drive(t, protocol.NewRequestParser(fuzzLimits), in)
		k := r.IntN(len(in) + 1)
		if cut := drive(t, protocol.NewRequestParser(fuzzLimits), in[:k], in[k:]); !reflect.DeepEqual(whole, cut) {
			t.Fatalf("%q cut at %d:\n%v\nwhole:\n%v", in, k, cut, whole)
		}
		if len(whole.Reqs) == 0 {
			continue
		}
		accepted++
		checkHeadShape(t, in[:whole.Reqs[0].HeadLen])
		compareNetHTTP(t, whole.Reqs[0], in)
	}
	if accepted < 1000 {
		t.Fatalf("only %d of the generated requests were accepted", accepted)
	}
}
