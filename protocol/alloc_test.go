//go:build !race

package protocol_test

import (
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/protocol"
)

// TestRequestParseAllocs enforces the zero-allocation hot path: a reused
// parser parses a request (head, body, end) without allocating once its
// header table has grown. (Built without -race: the race detector
// allocates.)
func TestRequestParseAllocs(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
	}{
		{name: "browser GET", in: browserGET},
		{name: "POST with Content-Length", in: simplePOST},
		{name: "chunked POST with trailers", in: chunkedPOST},
		{name: "pipelined", in: simpleGET + simplePOST + simpleGET},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			p := protocol.NewRequestParser(protocol.Limits{})
			parse := func() {
				buf := in
				for len(buf) > 0 {
					n, ev, _, err := p.Feed(buf)
					if err != nil || (ev == protocol.EvNeedMore && n == 0) {
						t.Fatalf("ev=%d err=%v", ev, err)
					}
					buf = buf[n:]
				}
				if _, ev, _, _ := p.Feed(buf); ev != protocol.EvEnd && ev != protocol.EvNeedMore {
					t.Fatalf("last ev=%d", ev)
				}
			}
			parse() // grows the header table once
			if allocs := testing.AllocsPerRun(100, parse); allocs != 0 {
				t.Fatalf("%v allocations per request", allocs)
			}
		})
	}
}

// TestAppendEnvironAllocs keeps the environ encoder allocation-free when
// dst has room.
func TestAppendEnvironAllocs(t *testing.T) {
	r := parseHead(t, "POST /a%20b?c HTTP/1.1\r\nHost: h:1\r\nContent-Length: 12345\r\nContent-Type: t\r\nCookie: a\r\nCookie: b\r\n\r\n")
	dst := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = protocol.AppendEnviron(dst[:0], r, plainConn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per environ", allocs)
	}
}

// TestResponseWriteAllocs keeps the response-side encoders allocation-free
// when dst has room: the head rewrite with a cached Date, the date itself
// and an error response.
func TestResponseWriteAllocs(t *testing.T) {
	raw := []byte("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n")
	date := protocol.AppendHTTPDate(nil, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	now := time.Now()
	dst := make([]byte, 0, 512)
	for _, tt := range []struct {
		name string
		fn   func()
	}{
		{name: "RewriteResponseHead with Date", fn: func() { dst = protocol.RewriteResponseHead(dst[:0], raw, true, true, false, date) }},
		{name: "AppendHTTPDate", fn: func() { dst = protocol.AppendHTTPDate(dst[:0], now) }},
		{name: "AppendErrorDate", fn: func() { dst = protocol.AppendErrorDate(dst[:0], 502, "bad gateway", true, date) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(100, tt.fn); allocs != 0 {
				t.Fatalf("%v allocations", allocs)
			}
		})
	}
}
