package protocol_test

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"

	"github.com/blastbeat/blastbeat/protocol"
)

// FuzzFrameHeader checks ParseFrameHeader on arbitrary bytes and limits:
//
//   - it never panics;
//   - an error is one of the WSErrors and comes with ok=false, n=0;
//   - ok=false without an error only while the header is incomplete
//     (fewer than 14 bytes), and then every shorter prefix agrees;
//   - ok=true gives n ≤ len(b) and n ∈ {2,4,6,8,10,14}, a control frame
//     final and at most 125 bytes, a data frame at most maxPayload;
//   - an accepted header is minimally encoded, so re-encoding it with
//     AppendFrameHeader (plus the mask bit and key when masked) gives back
//     exactly its first n bytes, and gobwas/ws reads the same header;
//   - parsing just b[:n] gives the same result, and every shorter prefix
//     is "need more".
func FuzzFrameHeader(f *testing.F) {
	for _, s := range []struct {
		b   []byte
		max int64
	}{
		{hx("81 85 37 fa 21 3d 7f 9f 4d 51 58"), wsMax},
		{hx("01 03 48 65 6c"), wsMax},
		{hx("80 02 6c 6f"), wsMax},
		{hx("89 05 48 65 6c 6c 6f"), wsMax},
		{hx("82 7e 01 00"), wsMax},
		{hx("82 ff 00 00 00 00 00 01 00 00 0a 0b 0c 0d"), wsMax},
		{hx("88 82 00 00 00 00 03 e8"), wsMax},
		{hx("81 fe 00 05 00 00 00 00"), wsMax},
		{hx("82 7f 00 00 00 00 00 00 ff ff"), wsMax},
		{hx("c1 80"), wsMax},
		{hx("09 80"), wsMax},
		{hx("89 fe 00 7e"), wsMax},
		{hx("81 fe 01 01"), 256},
		{hx("82 7f 7f ff ff ff ff ff ff ff"), 1<<63 - 1},
		{hx("82"), 0},
		{nil, -1},
	} {
		f.Add(s.b, s.max)
	}
	errs := map[error]bool{
		protocol.ErrWSReserved: true, protocol.ErrWSControl: true,
		protocol.ErrWSLength: true, protocol.ErrWSTooBig: true,
	}
	f.Fuzz(func(t *testing.T, b []byte, max int64) {
		h, n, ok, err := protocol.ParseFrameHeader(b, max)
		if err != nil {
			if ok || n != 0 || !errs[err] {
				t.Fatalf("% x: ok %v n %d err %v", b, ok, n, err)
			}
			return
		}
		if !ok {
			if n != 0 || len(b) >= 14 {
				t.Fatalf("% x (%d bytes): need-more with n=%d", b, len(b), n)
			}
			return
		}
		switch n {
		case 2, 4, 6, 8, 10, 14:
		default:
			t.Fatalf("% x: n = %d", b, n)
		}
		if n > len(b) {
			t.Fatalf("% x: n = %d > %d", b, n, len(b))
		}
		if h.Rsv != 0 || h.OpCode.IsReserved() || h.Length < 0 {
			t.Fatalf("% x: accepted %+v", b, h)
		}
		if h.OpCode.IsControl() && (!h.Fin || h.Length > 125) {
			t.Fatalf("% x: accepted control frame %+v", b, h)
		}
		if h.OpCode.IsData() && h.Length > max {
			t.Fatalf("% x: accepted %d-byte data frame over max %d", b, h.Length, max)
		}
		want := protocol.AppendFrameHeader(nil, h.OpCode, h.Fin, int(h.Length))
		if h.Masked {
			want[1] |= 0x80
			want = append(want, h.Mask[:]...)
		}
		if !bytes.Equal(want, b[:n]) {
			t.Fatalf("% x re-encodes as % x", b[:n], want)
		}
		if ref, err := ws.ReadHeader(bytes.NewReader(b[:n])); err != nil || ref != h {
			t.Fatalf("% x: ws.ReadHeader = %+v, %v; ParseFrameHeader %+v", b[:n], ref, err, h)
		}
		h2, n2, ok2, err2 := protocol.ParseFrameHeader(b[:n], max)
		if h2 != h || n2 != n || !ok2 || err2 != nil {
			t.Fatalf("% x alone: %+v %d %v %v", b[:n], h2, n2, ok2, err2)
		}
		for k := range n {
			if _, nk, ok, err := protocol.ParseFrameHeader(b[:k], max); ok || err != nil || nk != 0 {
				t.Fatalf("prefix % x of accepted % x: n %d ok %v err %v", b[:k], b[:n], nk, ok, err)
			}
		}
	})
}
