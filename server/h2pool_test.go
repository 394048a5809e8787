package server

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2ClosedStreamRecycled: a closed stream's record, kept for reuse,
// holds nothing of its stream once its turn is over: not its connection,
// nor the first 40000 bytes of a WebSocket frame it had buffered (found
// by review: they stayed pinned until a new stream took the record).
func TestH2ClosedStreamRecycled(t *testing.T) {
	r := newH2AllocRig(t)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "http"},
		{":path", "/ws"}, {":authority", "x"}, {"sec-websocket-version", "13"}} {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	// A masked binary frame announcing 60000 bytes, of which 40000 come.
	frame := []byte{0x82, 0xfe, 60000 >> 8, 60000 & 0xff, 1, 2, 3, 4}
	frame = append(frame, make([]byte, 40000)...)
	for len(frame) > 0 {
		n := min(len(frame), 16384)
		if err := fr.WriteData(1, false, frame[:n]); err != nil {
			t.Fatal(err)
		}
		frame = frame[n:]
	}
	if err := fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	r.client(out.Bytes())
	if len(r.c.h2.streams) != 0 {
		t.Fatalf("%d streams open after the reset", len(r.c.h2.streams))
	}
	l := r.c.l
	if l.h2Free.len() != 1 || len(l.h2Closed) != 0 {
		t.Fatalf("%d records free, %d closed; want the reset stream's free", l.h2Free.len(), len(l.h2Closed))
	}
	if st := l.h2Free.kept[0]; len(st.wsIn) > 0 || st.c != nil || st.vhost != nil || st.ex.vhost != nil || st.wsFrags.p != nil {
		t.Errorf("a free record still holds its stream's state: wsIn %d bytes, conn %v, vhost %v", len(st.wsIn), st.c != nil, st.vhost != nil)
	}
}

// TestH2SameTurnNoReuse: a stream reset and a new one opened in one read:
// the new one does not get the record of the one closed in that turn
// (code up the stack may still check whether it is its connection's).
func TestH2SameTurnNoReuse(t *testing.T) {
	r := newH2AllocRig(t)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	for _, id := range []uint32{1, 3} {
		hb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "x"}} {
			if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
				t.Fatal(err)
			}
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if id == 1 {
			if err := fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.client(out.Bytes())
	l := r.c.l
	st3 := r.c.h2.streams[3]
	if st3 == nil || r.c.h2.streams[1] != nil {
		t.Fatalf("streams open: %v; want 3 only", r.c.h2.streams)
	}
	if l.h2Free.len() != 1 || l.h2Free.kept[0] == st3 {
		t.Fatalf("%d records free; stream 3 took the record stream 1 closed in the same turn", l.h2Free.len())
	}
}
