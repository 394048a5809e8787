//go:build !race

package server

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
)

// h2AllocRig is allocRig on an HTTP/2 connection: each round opens a new
// stream, whose session the node's reply is addressed to.
type h2AllocRig struct {
	*allocRig
	c      *conn
	nextID uint32
}

func newH2AllocRig(t *testing.T) *h2AllocRig {
	r := &h2AllocRig{allocRig: newAllocRig(t, "headers"), nextID: 1}
	var pre bytes.Buffer
	pre.WriteString(protocol.H2Preface)
	if err := http2.NewFramer(&pre, nil).WriteSettings(); err != nil {
		t.Fatal(err)
	}
	r.client(pre.Bytes())
	r.c = r.fc.ctx.(*conn)
	if r.c.h2 == nil {
		t.Fatal("the connection did not turn HTTP/2")
	}
	return r
}

// h2Frames is a client's frames for one request, as a client that
// indexes its fields sends them: the first time with literals (first),
// which enter the decoder's dynamic table, and from then on as references
// to the table (again). Each round sends the same bytes with only the
// stream identifiers patched (at the offsets in ids).
type h2Frames struct {
	first, again *h2FrameSet
}

type h2FrameSet struct {
	b   []byte
	ids []int
}

// newH2Frames encodes with enc, the encoder of every block the connection
// is sent, in the order they are sent.
func newH2Frames(t *testing.T, enc *hpack.Encoder, hb *bytes.Buffer, fields [][2]string, body []byte, windowUpdate uint32) *h2Frames {
	set := func() *h2FrameSet {
		hb.Reset()
		for _, f := range fields {
			if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
				t.Fatal(err)
			}
		}
		var out bytes.Buffer
		fr := http2.NewFramer(&out, nil)
		fs := &h2FrameSet{}
		if windowUpdate > 0 { // the connection's window, for the response's DATA
			if err := fr.WriteWindowUpdate(0, windowUpdate); err != nil {
				t.Fatal(err)
			}
		}
		fs.ids = append(fs.ids, out.Len()+5)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: body == nil, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if body != nil {
			fs.ids = append(fs.ids, out.Len()+5)
			if err := fr.WriteData(1, true, body); err != nil {
				t.Fatal(err)
			}
		}
		fs.b = out.Bytes()
		return fs
	}
	first := set()
	return &h2Frames{first: first, again: set()}
}

// request sends f on the next stream and returns that stream's session.
func (r *h2AllocRig) request(f *h2FrameSet) session.SID {
	id := r.nextID
	r.nextID += 2
	for _, off := range f.ids {
		binary.BigEndian.PutUint32(f.b[off:], id)
	}
	r.client(f.b)
	st := r.c.h2.streams[id]
	if st == nil {
		r.t.Fatalf("stream %d did not open", id)
	}
	return st.sid
}

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
