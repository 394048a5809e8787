//go:build !race

package server

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// TestHTTP2Allocs: a request on an open HTTP/2 connection — its stream,
// the request to the node, the response's HEADERS (HPACK-encoded, the
// values the node repeats not allocated again) and DATA, a request
// body's DATA and the WINDOW_UPDATEs giving its window back — allocates
// nothing.
func TestHTTP2Allocs(t *testing.T) {
	r := newH2AllocRig(t)
	headers := []byte("headers")
	hello := []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!")
	big := []byte("HTTP/1.1 200 OK\r\nContent-Length: 16384\r\nContent-Type: application/octet-stream\r\n\r\n" + strings.Repeat("z", 16384))
	streamHead := []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunkT, chunk := []byte("chunk"), []byte(strings.Repeat("x", 1024))
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	get := [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "x"}, {"user-agent", "alloc-test"}}
	post := [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/up"}, {":authority", "x"}, {"content-length", "3000"}}
	for _, tc := range []struct {
		name  string
		req   func() *h2Frames
		reply func()
	}{
		{"GET", func() *h2Frames { return newH2Frames(t, enc, &hb, get, nil, 0) }, func() { r.reply(headers, hello) }},
		{"GET, 16 KiB response", func() *h2Frames { return newH2Frames(t, enc, &hb, get, nil, 16384) }, func() { r.reply(headers, big) }},
		{"POST 3000 bytes", func() *h2Frames { return newH2Frames(t, enc, &hb, post, bytes.Repeat([]byte("b"), 3000), 0) }, func() { r.reply(headers, hello) }},
		{"chunked response", func() *h2Frames { return newH2Frames(t, enc, &hb, get, nil, 16*1024) }, func() {
			r.reply(headers, streamHead)
			chunks := make([][]byte, 17)
			for i := range 16 {
				chunks[i] = chunk
			}
			chunks[16] = []byte{}
			r.reply(chunkT, chunks...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.t = t
			frames := tc.req() // encoded now: in the order sent
			set := frames.first
			round := func() {
				r.sid = r.request(set)
				tc.reply()
				if len(r.c.h2.streams) != 0 {
					t.Fatalf("%d streams left open after the response", len(r.c.h2.streams))
				}
			}
			round() // the fields enter both dynamic tables
			set = frames.again
			r.expectRoundNoAllocs(tc.name, round)
		})
	}
}
