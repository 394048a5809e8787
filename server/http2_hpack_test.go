package server

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// headersBlocks returns the field blocks of the HEADERS frames the proxy
// wrote since the last call.
func (q *h2qClient) headersBlocks() [][]byte {
	var out [][]byte
	q.readOut(func(f http2.Frame) {
		if hf, ok := f.(*http2.HeadersFrame); ok {
			out = append(out, append([]byte(nil), hf.HeaderBlockFragment()...))
		}
	})
	return out
}

// Response heads are encoded without HPACK's dynamic table: the first
// block sets its size to 0, and the same head encodes to the same bytes
// every time (nothing is indexed, so an idle connection keeps no table).
func TestH2ResponsesNotIndexed(t *testing.T) {
	q := newH2qHarness(t, nil)
	h := q.h
	head := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Served-By: some-node-with-a-long-name\r\nContent-Length: 2\r\n\r\nok"
	var blocks [][]byte
	for id := uint32(1); id <= 3; id += 2 {
		q.open(id, "GET", "b", true)
		sid := h.c.h2.streams[id].sid
		h.s.handlers[0].Deliver([]byte("n2"), sid[:], []byte("headers"), []byte(head), nil)
		h.s.handlers[0].Flush()
		h.settle()
		blocks = append(blocks, q.headersBlocks()...)
	}
	if len(blocks) != 2 {
		t.Fatalf("%d response heads, want 2", len(blocks))
	}
	if len(blocks[0]) == 0 || blocks[0][0] != 0x20 {
		t.Errorf("the first block starts %x, want a dynamic table size update to 0 (0x20)", blocks[0][:1])
	}
	if !bytes.Equal(blocks[0][1:], blocks[1]) {
		t.Errorf("the same head encoded to %d, then %d bytes: the encoder indexes", len(blocks[0])-1, len(blocks[1]))
	}
	dec := hpack.NewDecoder(4096, nil)
	for _, b := range blocks {
		fields, err := dec.DecodeFull(b)
		if err != nil || len(fields) == 0 || fields[0].Value != "200" {
			t.Fatalf("the block does not decode to a 200 head: %v %v", fields, err)
		}
	}
}

// TestH2SmallHeaderTableBeforeAck: with http2-header-table-size under
// HPACK's default 4096, a client's first requests, encoded before it
// read the proxy's SETTINGS (RFC 9113 §6.5.3 lets it), may use the
// default table: a field indexed in the second request that the first
// added decodes. Before, the decoder used the small table from the
// start, dropped the entry, and the connection got COMPRESSION_ERROR.
// Once the client acknowledges, the small table holds: the client's size
// update to it is taken.
func TestH2SmallHeaderTableBeforeAck(t *testing.T) {
	q := newH2qHarness(t, func(o *Options) { o.HTTP2HeaderTableSize = 0 })
	request := func(id uint32) {
		q.hb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "a"}, {"x-trace", "abcdef"}} {
			_ = q.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		_ = q.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: q.hb.Bytes(), EndStream: true, EndHeaders: true})
		q.send()
	}
	request(1)
	request(3) // x-trace indexed: the entry request 1 added
	if code := q.goAwayCode(); code != 1<<32-1 {
		t.Fatalf("GOAWAY %v for requests encoded with the default table", code)
	}
	heads := 0
	for _, m := range q.h.ring.take() {
		if m.Type == "uwsgi" {
			heads++
		}
	}
	if heads != 2 {
		t.Fatalf("%d request heads reached the node, want 2", heads)
	}
	_ = q.fr.WriteSettingsAck()
	q.enc.SetMaxDynamicTableSize(0)
	request(5)
	if code := q.goAwayCode(); code != 1<<32-1 {
		t.Fatalf("GOAWAY %v after the ACK and the client's size update to 0", code)
	}
	q.enc.SetMaxDynamicTableSize(4096) // past what the proxy allows now
	request(7)
	if code := q.goAwayCode(); code != http2.ErrCodeCompression {
		t.Fatalf("a size update past http2-header-table-size after the ACK: GOAWAY %v, want COMPRESSION_ERROR", code)
	}
}
