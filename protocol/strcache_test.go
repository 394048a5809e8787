package protocol_test

import (
	"bytes"
	"strconv"
	"testing"
	"unsafe"

	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/protocol"
)

// TestStringCache: the same bytes give the same string; a string handed
// out stays intact after the bytes it came from change; the cache starts
// afresh at StringCacheEntries; long values and a nil cache convert each
// time.
func TestStringCache(t *testing.T) {
	var c protocol.StringCache
	b := []byte("text/plain")
	s1 := c.String(b)
	s2 := c.String(b)
	if s1 != "text/plain" || s2 != s1 || unsafeData(s1) != unsafeData(s2) {
		t.Fatalf("String: %q and %q, not the same string", s1, s2)
	}
	b[0] = 'T'
	if s1 != "text/plain" {
		t.Fatalf("a cached string changed with its source bytes: %q", s1)
	}
	if got := c.String(b); got != "Text/plain" {
		t.Fatalf("String(%q) = %q", b, got)
	}
	for i := range protocol.StringCacheEntries + 10 {
		c.String(strconv.AppendInt(nil, int64(i), 10))
	}
	if n := c.Len(); n == 0 || n > protocol.StringCacheEntries {
		t.Fatalf("cache holds %d strings, want 1..%d", n, protocol.StringCacheEntries)
	}
	long := bytes.Repeat([]byte("v"), protocol.StringCacheMaxLen+1)
	before := c.Len()
	if got := c.String(long); got != string(long) || c.Len() != before {
		t.Fatalf("a long value: %d bytes back, cache %d -> %d", len(got), before, c.Len())
	}
	var nilCache *protocol.StringCache
	if got := nilCache.String([]byte("x")); got != "x" {
		t.Fatalf("nil cache: %q", got)
	}
}

// TestEncodeH2ResponseHeadWith: the cache changes no byte of the block,
// over a run of responses sharing one connection's encoder.
func TestEncodeH2ResponseHeadWith(t *testing.T) {
	heads := []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Custom-Field: a\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nX-Custom-Field: a\r\n\r\n",
		"HTTP/2 404 Not Found\r\nContent-Type: text/html\r\nX-Custom-Field: b\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Custom-Field: a\r\n\r\n",
	}
	var plain, cached bytes.Buffer
	pe, ce := hpack.NewEncoder(&plain), hpack.NewEncoder(&cached)
	var c protocol.StringCache
	for i, h := range heads {
		plain.Reset()
		cached.Reset()
		p, err1 := protocol.EncodeH2ResponseHead(pe, []byte(h), false, h2Date)
		q, err2 := protocol.EncodeH2ResponseHeadWith(ce, &c, []byte(h), false, h2Date)
		if err1 != nil || err2 != nil || p != q {
			t.Fatalf("head %d: %+v %v against %+v %v", i, p, err1, q, err2)
		}
		if !bytes.Equal(plain.Bytes(), cached.Bytes()) {
			t.Fatalf("head %d: block %x with the cache, %x without", i, cached.Bytes(), plain.Bytes())
		}
	}
}

func unsafeData(s string) *byte { return unsafe.StringData(s) }
