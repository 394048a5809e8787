package protocol_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/blastbeat/blastbeat/protocol"
)

// h2Rec is what the driver records of one Feed outcome, copied out of the
// buffer before it moves on.
type h2Rec struct {
	Kind         string // "frame", "ignored", "stream error", "conn error"
	N            int    // bytes consumed (0 for a connection error)
	Hdr          protocol.H2FrameHeader
	Err          error              // stream and connection errors
	Code         protocol.H2ErrCode // error code, or RST_STREAM / GOAWAY code
	Data         string
	Priority     protocol.H2Priority
	LastStreamID uint32
	Increment    uint32
	Ping         [8]byte
	Settings     []protocol.H2Setting
}

func (r h2Rec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s n=%d %v flags=%#x stream=%d len=%d", r.Kind, r.N, r.Hdr.Type, r.Hdr.Flags, r.Hdr.StreamID, r.Hdr.Length)
	if r.Err != nil {
		fmt.Fprintf(&b, " err=%v", r.Err)
	}
	if r.Code != 0 {
		fmt.Fprintf(&b, " code=%v", r.Code)
	}
	if d := r.Data; d != "" {
		if len(d) > 40 {
			d = fmt.Sprintf("%s…(%d bytes)", d[:40], len(d))
		}
		fmt.Fprintf(&b, " data=%q", d)
	}
	if r.Priority != (protocol.H2Priority{}) {
		fmt.Fprintf(&b, " prio=%+v", r.Priority)
	}
	if r.LastStreamID != 0 || r.Increment != 0 || r.Ping != [8]byte{} {
		fmt.Fprintf(&b, " last=%d inc=%d ping=%x", r.LastStreamID, r.Increment, r.Ping)
	}
	if r.Settings != nil {
		fmt.Fprintf(&b, " settings=%v", r.Settings)
	}
	return b.String()
}

type h2Result []h2Rec

func (rs h2Result) String() string {
	var b strings.Builder
	for i, r := range rs {
		fmt.Fprintf(&b, "%d: %v\n", i, r)
	}
	return b.String()
}

// connErr returns the connection error that ended the stream, or nil.
func (rs h2Result) connErr() error {
	if len(rs) > 0 && rs[len(rs)-1].Kind == "conn error" {
		return rs[len(rs)-1].Err
	}
	return nil
}

// driveH2 feeds the chunks to r the way the server does: unconsumed bytes
// are kept, each chunk is appended to them, and Feed is called until it
// needs more or reports a connection error. Every buffer given to Feed is
// overwritten before the next chunk arrives, so a reader that kept a
// reference into an old buffer shows up as a wrong result.
//
// It also checks the Feed contract: only whole frames are consumed
// (n = 9 + Length of the header at the start of buf), need-more only with
// less than a frame buffered, a connection error consumes nothing, and a
// frame's header matches the bytes and its slices lie inside them, the
// payload capped at the frame's end.
func driveH2(tb testing.TB, r *protocol.H2Reader, chunks ...[]byte) h2Result {
	tb.Helper()
	var res h2Result
	var pending []byte
	for _, c := range chunks {
		buf := make([]byte, 0, len(pending)+len(c))
		buf = append(buf, pending...)
		buf = append(buf, c...)
		clear(pending[:cap(pending)]) // poison the previous buffer
		pending = buf
		for {
			hdr, whole := protocol.ParseH2FrameHeader(pending)
			size := protocol.H2FrameHeaderLen + int(hdr.Length)
			n, f, err := r.Feed(pending)
			if n < 0 || n > len(pending) {
				tb.Fatalf("Feed consumed %d of %d bytes", n, len(pending))
			}
			rec := h2Rec{N: n, Hdr: hdr, Err: err}
			switch {
			case err != nil:
				var ce *protocol.H2ConnError
				var se *protocol.H2StreamError
				switch {
				case errors.As(err, &ce):
					if n != 0 || f != nil {
						tb.Fatalf("connection error %v with n=%d f=%v", err, n, f)
					}
					rec.Kind, rec.Code = "conn error", ce.Code
					return append(res, rec)
				case errors.As(err, &se):
					if n != size || f != nil || se.StreamID != hdr.StreamID || se.StreamID == 0 {
						tb.Fatalf("stream error %v with n=%d (frame %d) f=%v on %+v", err, n, size, f, hdr)
					}
					rec.Kind, rec.Code = "stream error", se.Code
				default:
					tb.Fatalf("Feed error %T %v is neither H2ConnError nor H2StreamError", err, err)
				}
			case n == 0:
				if f != nil || (whole && len(pending) >= size) {
					tb.Fatalf("need-more with f=%v and %d bytes buffered for %+v", f, len(pending), hdr)
				}
			case f == nil:
				if n != size {
					tb.Fatalf("ignored %d bytes of a %d-byte frame", n, size)
				}
				rec.Kind = "ignored"
			default:
				if n != size || f.H2FrameHeader != hdr {
					tb.Fatalf("frame %+v from %d bytes, header says %+v", f.H2FrameHeader, n, hdr)
				}
				if len(f.Payload) != int(hdr.Length) || cap(f.Payload) != len(f.Payload) ||
					(len(f.Payload) > 0 && &f.Payload[0] != &pending[protocol.H2FrameHeaderLen]) {
					tb.Fatalf("Payload is not buf[9:n:n]")
				}
				if len(f.Data) > 0 {
					off := n - cap(f.Data) // Payload, hence Data, is capped at n
					if off < protocol.H2FrameHeaderLen || off+len(f.Data) > n || &pending[off] != &f.Data[0] {
						tb.Fatalf("Data is not inside the frame")
					}
				}
				rec = copyH2Frame(f, n)
			}
			if n == 0 {
				break
			}
			res = append(res, rec)
			pending = pending[n:]
		}
	}
	return res
}

func copyH2Frame(f *protocol.H2Frame, n int) h2Rec {
	rec := h2Rec{
		Kind: "frame", N: n, Hdr: f.H2FrameHeader, Data: string(f.Data), Priority: f.Priority,
		LastStreamID: f.LastStreamID, Increment: f.Increment, Ping: f.PingData, Code: f.Code,
	}
	if f.Type == protocol.H2FrameSettings {
		rec.Settings = []protocol.H2Setting{}
		for i := range f.NumSettings() {
			rec.Settings = append(rec.Settings, f.Setting(i))
		}
	}
	return rec
}

// h2Lim is what the reader tests use unless they say otherwise.
var h2Lim = protocol.H2Limits{}

// checkH2Splits feeds in cut at every index and one byte at a time, and
// requires each run to produce exactly what feeding it whole produced.
func checkH2Splits(t *testing.T, lim protocol.H2Limits, in []byte) h2Result {
	t.Helper()
	want := driveH2(t, protocol.NewH2Reader(lim), in)
	for i := 0; i <= len(in); i++ {
		got := driveH2(t, protocol.NewH2Reader(lim), in[:i], in[i:])
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("split at %d:\n%v\nwhole:\n%v", i, got, want)
		}
	}
	bytewise := make([][]byte, len(in))
	for i := range in {
		bytewise[i] = in[i : i+1]
	}
	if got := driveH2(t, protocol.NewH2Reader(lim), bytewise...); !reflect.DeepEqual(got, want) {
		t.Fatalf("one byte at a time:\n%v\nwhole:\n%v", got, want)
	}
	return want
}

// rawFrame builds a frame from its parts without any checks.
func rawFrame(typ protocol.H2FrameType, flags uint8, stream uint32, payload ...byte) []byte {
	return protocol.AppendH2Frame(nil, protocol.H2FrameHeader{Type: typ, Flags: flags, StreamID: stream}, payload)
}

// hdrOnly is a 9-byte frame header declaring length bytes of payload.
func hdrOnly(typ protocol.H2FrameType, flags uint8, stream uint32, length uint32) []byte {
	return protocol.AppendH2FrameHeader(nil, protocol.H2FrameHeader{Length: length, Type: typ, Flags: flags, StreamID: stream})
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

const (
	fData     = protocol.H2FrameData
	fHeaders  = protocol.H2FrameHeaders
	fPriority = protocol.H2FramePriority
	fRST      = protocol.H2FrameRSTStream
	fSettings = protocol.H2FrameSettings
	fPush     = protocol.H2FramePushPromise
	fPing     = protocol.H2FramePing
	fGoAway   = protocol.H2FrameGoAway
	fWU       = protocol.H2FrameWindowUpdate
	fCont     = protocol.H2FrameContinuation

	flEnd     = protocol.H2FlagEndStream
	flAck     = protocol.H2FlagAck
	flEndHdrs = protocol.H2FlagEndHeaders
	flPadded  = protocol.H2FlagPadded
	flPrio    = protocol.H2FlagPriority
)

func TestH2ReaderFrames(t *testing.T) {
	hdr := func(typ protocol.H2FrameType, flags uint8, stream uint32, length uint32) protocol.H2FrameHeader {
		return protocol.H2FrameHeader{Length: length, Type: typ, Flags: flags, StreamID: stream}
	}
	tests := []struct {
		name string
		in   []byte
		want h2Rec
	}{
		{
			name: "DATA",
			in:   hx("000005 00 01 00000001 68656c6c6f"),
			want: h2Rec{Hdr: hdr(fData, flEnd, 1, 5), Data: "hello"},
		},
		{
			name: "DATA empty",
			in:   hx("000000 00 00 00000003"),
			want: h2Rec{Hdr: hdr(fData, 0, 3, 0)},
		},
		{
			name: "DATA padded",
			in:   hx("000006 00 08 00000001 03 6869 000000"),
			want: h2Rec{Hdr: hdr(fData, flPadded, 1, 6), Data: "hi"},
		},
		{
			name: "DATA padded, padding fills the rest",
			in:   hx("000004 00 08 00000001 03 000000"),
			want: h2Rec{Hdr: hdr(fData, flPadded, 1, 4)},
		},
		{
			name: "DATA padded, pad length 0",
			in:   hx("000003 00 09 00000001 00 6869"),
			want: h2Rec{Hdr: hdr(fData, flPadded|flEnd, 1, 3), Data: "hi"},
		},
		{
			name: "DATA reserved stream bit and unknown flags ignored",
			in:   hx("000001 00 f6 80000005 78"),
			want: h2Rec{Hdr: hdr(fData, 0xf6, 5, 1), Data: "x"},
		},
		{
			name: "HEADERS",
			in:   hx("000003 01 05 00000001 828486"),
			want: h2Rec{Hdr: hdr(fHeaders, flEnd|flEndHdrs, 1, 3), Data: "\x82\x84\x86"},
		},
		{
			name: "HEADERS with priority and padding",
			in:   hx("00000a 01 2c 00000003 02 80000001 0f 8284 0000"),
			want: h2Rec{
				Hdr: hdr(fHeaders, flPrio|flPadded|flEndHdrs, 3, 10), Data: "\x82\x84",
				Priority: protocol.H2Priority{StreamDep: 1, Exclusive: true, Weight: 15},
			},
		},
		{
			name: "HEADERS priority only, empty fragment",
			in:   hx("000005 01 24 00000003 00000000 ff"),
			want: h2Rec{Hdr: hdr(fHeaders, flPrio|flEndHdrs, 3, 5), Priority: protocol.H2Priority{Weight: 255}},
		},
		{
			name: "PRIORITY",
			in:   hx("000005 02 00 00000005 00000003 07"),
			want: h2Rec{Hdr: hdr(fPriority, 0, 5, 5), Priority: protocol.H2Priority{StreamDep: 3, Weight: 7}},
		},
		{
			name: "RST_STREAM",
			in:   hx("000004 03 00 00000001 00000008"),
			want: h2Rec{Hdr: hdr(fRST, 0, 1, 4), Code: protocol.H2Cancel},
		},
		{
			name: "SETTINGS",
			in:   hx("00001e 04 00 00000000 0001 00001000 0002 00000000 0004 7fffffff 0005 00ffffff 0063 ffffffff"),
			want: h2Rec{Hdr: hdr(fSettings, 0, 0, 30), Settings: []protocol.H2Setting{
				{ID: protocol.H2SettingHeaderTableSize, Val: 4096},
				{ID: protocol.H2SettingEnablePush, Val: 0},
				{ID: protocol.H2SettingInitialWindowSize, Val: 1<<31 - 1},
				{ID: protocol.H2SettingMaxFrameSize, Val: 1<<24 - 1},
				{ID: 0x63, Val: 0xffffffff}, // unknown: ignored, not refused (§6.5.2)
			}},
		},
		{
			name: "SETTINGS empty",
			in:   hx("000000 04 00 00000000"),
			want: h2Rec{Hdr: hdr(fSettings, 0, 0, 0), Settings: []protocol.H2Setting{}},
		},
		{
			name: "SETTINGS ack",
			in:   hx("000000 04 01 00000000"),
			want: h2Rec{Hdr: hdr(fSettings, flAck, 0, 0), Settings: []protocol.H2Setting{}},
		},
		{
			name: "SETTINGS edge values",
			in:   hx("00001e 04 00 00000000 0002 00000001 0005 00004000 0008 00000001 0009 00000001 0003 00000000"),
			want: h2Rec{Hdr: hdr(fSettings, 0, 0, 30), Settings: []protocol.H2Setting{
				{ID: protocol.H2SettingEnablePush, Val: 1},
				{ID: protocol.H2SettingMaxFrameSize, Val: 16384},
				{ID: protocol.H2SettingEnableConnectProtocol, Val: 1},
				{ID: protocol.H2SettingNoRFC7540Priorities, Val: 1},
				{ID: protocol.H2SettingMaxConcurrentStreams, Val: 0},
			}},
		},
		{
			name: "PING",
			in:   hx("000008 06 00 00000000 0102030405060708"),
			want: h2Rec{Hdr: hdr(fPing, 0, 0, 8), Ping: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}},
		},
		{
			name: "PING ack",
			in:   hx("000008 06 01 00000000 0102030405060708"),
			want: h2Rec{Hdr: hdr(fPing, flAck, 0, 8), Ping: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}},
		},
		{
			name: "GOAWAY with debug data",
			in:   hx("00000b 07 00 00000000 80000007 00000002 627965"),
			want: h2Rec{Hdr: hdr(fGoAway, 0, 0, 11), LastStreamID: 7, Code: protocol.H2InternalError, Data: "bye"},
		},
		{
			name: "WINDOW_UPDATE connection, reserved bit ignored",
			in:   hx("000004 08 00 00000000 8000ffff"),
			want: h2Rec{Hdr: hdr(fWU, 0, 0, 4), Increment: 65535},
		},
		{
			name: "WINDOW_UPDATE stream, maximum",
			in:   hx("000004 08 00 00000001 7fffffff"),
			want: h2Rec{Hdr: hdr(fWU, 0, 1, 4), Increment: 1<<31 - 1},
		},
		{
			name: "unknown type ignored",
			in:   hx("000003 0a 00 00000000 616263"),
			want: h2Rec{Kind: "ignored", Hdr: hdr(0x0a, 0, 0, 3)},
		},
		{
			name: "PRIORITY_UPDATE (RFC 9218) is unknown here, even malformed",
			in:   hx("000000 10 00 00000003"),
			want: h2Rec{Kind: "ignored", Hdr: hdr(0x10, 0, 3, 0)},
		},
		{
			name: "unknown type 0xff ignored",
			in:   hx("000000 ff ff ffffffff"),
			want: h2Rec{Kind: "ignored", Hdr: hdr(0xff, 0xff, 1<<31-1, 0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkH2Splits(t, h2Lim, tt.in)
			want := tt.want
			if want.Kind == "" {
				want.Kind = "frame"
			}
			want.N = len(tt.in)
			if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Fatalf("got\n%v\nwant\n%v", got, want)
			}
		})
	}
}

// h2Mixed is a client's side of a connection in mixed frames, with a
// field block split over HEADERS and two CONTINUATIONs, a stream error in
// the middle and frames of unknown type.
func h2Mixed() []byte {
	return cat(
		protocol.AppendH2Settings(nil,
			protocol.H2Setting{ID: protocol.H2SettingEnablePush, Val: 0},
			protocol.H2Setting{ID: protocol.H2SettingInitialWindowSize, Val: 1 << 20}),
		protocol.AppendH2WindowUpdate(nil, 0, 1<<24),
		rawFrame(fHeaders, flPrio|flPadded, 1, append([]byte{2, 0, 0, 0, 0, 41, 0x82, 0x86, 0x84}, 0, 0)...),
		protocol.AppendH2Continuation(nil, 1, false, []byte("\x41\x8a")),
		protocol.AppendH2Continuation(nil, 1, true, []byte("\x08\x9d\x5c\x0b\x81\x70\xdc\x78\x0f\x03")),
		rawFrame(fData, flPadded, 1, append([]byte{4}, "hello, world\x00\x00\x00\x00"...)...),
		protocol.AppendH2Ping(nil, false, [8]byte{'b', 'l', 'a', 's', 't', 0, 0, 1}),
		hx("000004 08 00 00000001 00000000"), // WINDOW_UPDATE 0 on a stream: stream error
		protocol.AppendH2SettingsAck(nil),
		rawFrame(0x20, 0x3, 0, 'x', 'y'), // extension frame: ignored
		protocol.AppendH2HeaderBlock(nil, 3, true, bytes.Repeat([]byte{0x82}, 40), 16),
		rawFrame(fPriority, 0, 5, 0, 0, 0, 3, 200),
		rawFrame(fPriority, 0, 7, 0, 0, 0, 3), // 4 bytes: stream error
		protocol.AppendH2Data(nil, 1, true, nil),
		protocol.AppendH2RSTStream(nil, 3, protocol.H2Cancel),
		protocol.AppendH2GoAway(nil, 0, protocol.H2NoError, []byte("done")),
	)
}

func TestH2ReaderMixedStreamSplits(t *testing.T) {
	in := h2Mixed()
	got := checkH2Splits(t, h2Lim, in)
	var kinds []string
	for _, r := range got {
		k := r.Hdr.Type.String()
		if r.Kind != "frame" {
			k += "(" + r.Kind + ")"
		}
		kinds = append(kinds, k)
	}
	want := "SETTINGS WINDOW_UPDATE HEADERS CONTINUATION CONTINUATION DATA PING " +
		"WINDOW_UPDATE(stream error) SETTINGS UNKNOWN_FRAME_TYPE_32(ignored) " +
		"HEADERS CONTINUATION CONTINUATION PRIORITY PRIORITY(stream error) DATA RST_STREAM GOAWAY"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("got  %s\nwant %s\n%v", strings.Join(kinds, " "), want, got)
	}
	if got[2].Data != "\x82\x86\x84" || got[2].Priority != (protocol.H2Priority{Weight: 41}) ||
		got[3].Data != "\x41\x8a" || got[5].Data != "hello, world" {
		t.Fatalf("bad frame contents\n%v", got)
	}
	if !errors.Is(got[7].Err, protocol.ErrH2WindowUpdateZero) || !errors.Is(got[14].Err, protocol.ErrH2PriorityLength) {
		t.Fatalf("bad stream errors\n%v", got)
	}
	total := 0
	for _, r := range got {
		total += r.N
	}
	if total != len(in) {
		t.Fatalf("consumed %d of %d bytes", total, len(in))
	}
}

// TestH2ReaderPrefixes requires every proper prefix of the mixed stream to
// parse without error and to stop short of the whole.
func TestH2ReaderPrefixes(t *testing.T) {
	in := h2Mixed()
	whole := driveH2(t, protocol.NewH2Reader(h2Lim), in)
	for i := 0; i < len(in); i++ {
		got := driveH2(t, protocol.NewH2Reader(h2Lim), in[:i])
		if got.connErr() != nil || len(got) >= len(whole) || (len(got) > 0 && !reflect.DeepEqual(got, whole[:len(got)])) {
			t.Fatalf("prefix of %d bytes:\n%v", i, got)
		}
	}
}

func TestH2ReaderErrors(t *testing.T) {
	openBlock := rawFrame(fHeaders, 0, 1, 0x82) // HEADERS without END_HEADERS
	tests := []struct {
		name   string
		in     []byte
		lim    protocol.H2Limits
		want   error  // a connection error, or a stream error sentinel
		stream uint32 // for a stream error
		early  bool   // refused on the header alone, before the payload arrives
	}{
		// §4.2 frame size.
		{name: "frame above default max", in: hdrOnly(fData, 0, 1, 16385), want: protocol.ErrH2FrameTooLarge, early: true},
		{name: "frame above raised max", in: hdrOnly(fData, 0, 1, 1<<20+1), lim: protocol.H2Limits{MaxFrameSize: 1 << 20}, want: protocol.ErrH2FrameTooLarge, early: true},
		{name: "unknown type above max", in: hdrOnly(0x42, 0, 0, 1<<24-1), want: protocol.ErrH2FrameTooLarge, early: true},
		{name: "SETTINGS above max", in: hdrOnly(fSettings, 0, 0, 16386), want: protocol.ErrH2FrameTooLarge, early: true},
		// §6.1 DATA.
		{name: "DATA on stream 0", in: rawFrame(fData, 0, 0, 'x'), want: protocol.ErrH2DataStreamZero},
		{name: "DATA padded without pad length", in: rawFrame(fData, flPadded, 1), want: protocol.ErrH2FrameTooShort},
		{name: "DATA padding = length", in: rawFrame(fData, flPadded, 1, 3, 0, 0), want: protocol.ErrH2Padding},
		{name: "DATA padding > length", in: rawFrame(fData, flPadded, 1, 255, 'a'), want: protocol.ErrH2Padding},
		// §6.2 HEADERS.
		{name: "HEADERS on stream 0", in: rawFrame(fHeaders, flEndHdrs, 0, 0x82), want: protocol.ErrH2HeadersStreamZero},
		{name: "HEADERS padded without pad length", in: rawFrame(fHeaders, flPadded|flEndHdrs, 1), want: protocol.ErrH2FrameTooShort},
		{name: "HEADERS priority too short", in: rawFrame(fHeaders, flPrio|flEndHdrs, 1, 0, 0, 0, 0), want: protocol.ErrH2FrameTooShort},
		{name: "HEADERS padded, priority too short", in: rawFrame(fHeaders, flPadded|flPrio|flEndHdrs, 1, 0, 0, 0, 0, 0), want: protocol.ErrH2FrameTooShort},
		{name: "HEADERS padding exceeds fragment", in: rawFrame(fHeaders, flPadded|flEndHdrs, 1, 2, 0x82), want: protocol.ErrH2Padding},
		{name: "HEADERS padding exceeds fragment after priority", in: rawFrame(fHeaders, flPadded|flPrio|flEndHdrs, 1, 1, 0, 0, 0, 0, 16), want: protocol.ErrH2Padding},
		// §6.3 PRIORITY.
		{name: "PRIORITY on stream 0", in: rawFrame(fPriority, 0, 0, 0, 0, 0, 1, 0), want: protocol.ErrH2PriorityStreamZero},
		{name: "PRIORITY length 4", in: rawFrame(fPriority, 0, 3, 0, 0, 0, 1), want: protocol.ErrH2PriorityLength, stream: 3},
		{name: "PRIORITY length 6", in: rawFrame(fPriority, 0, 9, 0, 0, 0, 1, 0, 0), want: protocol.ErrH2PriorityLength, stream: 9},
		{name: "PRIORITY length 0", in: rawFrame(fPriority, 0, 1), want: protocol.ErrH2PriorityLength, stream: 1},
		// §6.4 RST_STREAM.
		{name: "RST_STREAM on stream 0", in: rawFrame(fRST, 0, 0, 0, 0, 0, 8), want: protocol.ErrH2RSTStreamStreamZero},
		{name: "RST_STREAM length 3", in: rawFrame(fRST, 0, 1, 0, 0, 8), want: protocol.ErrH2RSTStreamLength},
		{name: "RST_STREAM length 5", in: rawFrame(fRST, 0, 1, 0, 0, 0, 8, 0), want: protocol.ErrH2RSTStreamLength},
		// §6.5 SETTINGS.
		{name: "SETTINGS on a stream", in: rawFrame(fSettings, 0, 1), want: protocol.ErrH2SettingsStream},
		{name: "SETTINGS ack with payload", in: rawFrame(fSettings, flAck, 0, 0, 3, 0, 0, 0, 100), want: protocol.ErrH2SettingsAckLength},
		{name: "SETTINGS length 5", in: rawFrame(fSettings, 0, 0, 0, 3, 0, 0, 0), want: protocol.ErrH2SettingsLength},
		{name: "SETTINGS length 7", in: rawFrame(fSettings, 0, 0, 0, 3, 0, 0, 0, 100, 0), want: protocol.ErrH2SettingsLength},
		{name: "SETTINGS_ENABLE_PUSH 2", in: hx("000006 04 00 00000000 0002 00000002"), want: protocol.ErrH2SettingsEnablePush},
		{name: "SETTINGS_INITIAL_WINDOW_SIZE 2^31", in: hx("000006 04 00 00000000 0004 80000000"), want: protocol.ErrH2SettingsWindowSize},
		{name: "SETTINGS_MAX_FRAME_SIZE 16383", in: hx("000006 04 00 00000000 0005 00003fff"), want: protocol.ErrH2SettingsMaxFrameSize},
		{name: "SETTINGS_MAX_FRAME_SIZE 2^24", in: hx("000006 04 00 00000000 0005 01000000"), want: protocol.ErrH2SettingsMaxFrameSize},
		{name: "SETTINGS_ENABLE_CONNECT_PROTOCOL 2", in: hx("000006 04 00 00000000 0008 00000002"), want: protocol.ErrH2SettingsConnectProto},
		{name: "SETTINGS_NO_RFC7540_PRIORITIES 2", in: hx("000006 04 00 00000000 0009 00000002"), want: protocol.ErrH2SettingsNoPriorities},
		{name: "SETTINGS bad value after good ones", in: hx("00000c 04 00 00000000 0003 00000064 0002 ffffffff"), want: protocol.ErrH2SettingsEnablePush},
		// §8.4 PUSH_PROMISE.
		{name: "PUSH_PROMISE", in: rawFrame(fPush, flEndHdrs, 1, 0, 0, 0, 2, 0x82), want: protocol.ErrH2PushPromise},
		{name: "PUSH_PROMISE on stream 0", in: rawFrame(fPush, flEndHdrs, 0, 0, 0, 0, 2), want: protocol.ErrH2PushPromise},
		// §6.7 PING.
		{name: "PING on a stream", in: rawFrame(fPing, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8), want: protocol.ErrH2PingStream},
		{name: "PING length 7", in: rawFrame(fPing, 0, 0, 1, 2, 3, 4, 5, 6, 7), want: protocol.ErrH2PingLength},
		{name: "PING length 9", in: rawFrame(fPing, flAck, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9), want: protocol.ErrH2PingLength},
		// §6.8 GOAWAY.
		{name: "GOAWAY on a stream", in: rawFrame(fGoAway, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0), want: protocol.ErrH2GoAwayStream},
		{name: "GOAWAY length 7", in: rawFrame(fGoAway, 0, 0, 0, 0, 0, 0, 0, 0, 0), want: protocol.ErrH2GoAwayLength},
		// §6.9 WINDOW_UPDATE.
		{name: "WINDOW_UPDATE 0 on the connection", in: hx("000004 08 00 00000000 00000000"), want: protocol.ErrH2WindowUpdateZeroConn},
		{name: "WINDOW_UPDATE 0 with reserved bit, connection", in: hx("000004 08 00 00000000 80000000"), want: protocol.ErrH2WindowUpdateZeroConn},
		{name: "WINDOW_UPDATE 0 on a stream", in: hx("000004 08 00 00000007 00000000"), want: protocol.ErrH2WindowUpdateZero, stream: 7},
		{name: "WINDOW_UPDATE length 3", in: rawFrame(fWU, 0, 1, 0, 0, 1), want: protocol.ErrH2WindowUpdateLength},
		{name: "WINDOW_UPDATE length 5", in: rawFrame(fWU, 0, 0, 0, 0, 0, 1, 0), want: protocol.ErrH2WindowUpdateLength},
		// §6.10 CONTINUATION and §6.2 field-block contiguity.
		{name: "CONTINUATION on stream 0", in: rawFrame(fCont, flEndHdrs, 0, 0x82), want: protocol.ErrH2ContinuationStreamZero, early: true},
		{name: "CONTINUATION without HEADERS", in: rawFrame(fCont, flEndHdrs, 1, 0x82), want: protocol.ErrH2UnexpectedContinuation, early: true},
		{name: "CONTINUATION after END_HEADERS", in: cat(rawFrame(fHeaders, flEndHdrs, 1, 0x82), rawFrame(fCont, flEndHdrs, 1, 0x82)), want: protocol.ErrH2UnexpectedContinuation, early: true},
		{name: "DATA inside a field block", in: cat(openBlock, rawFrame(fData, 0, 1, 'x')), want: protocol.ErrH2ExpectedContinuation, early: true},
		{name: "PING inside a field block", in: cat(openBlock, protocol.AppendH2Ping(nil, false, [8]byte{})), want: protocol.ErrH2ExpectedContinuation, early: true},
		{name: "unknown type inside a field block", in: cat(openBlock, rawFrame(0x0b, 0, 1)), want: protocol.ErrH2ExpectedContinuation, early: true},
		{name: "CONTINUATION for another stream", in: cat(openBlock, rawFrame(fCont, flEndHdrs, 3, 0x82)), want: protocol.ErrH2ExpectedContinuation, early: true},
		{name: "CONTINUATION on stream 0 inside a block", in: cat(openBlock, rawFrame(fCont, flEndHdrs, 0, 0x82)), want: protocol.ErrH2ContinuationStreamZero, early: true},
		{name: "HEADERS inside a field block", in: cat(openBlock, rawFrame(fHeaders, flEndHdrs, 1, 0x82)), want: protocol.ErrH2ExpectedContinuation, early: true},
		// Field-block size (§10.5.1).
		{
			name: "HEADERS above the block limit", lim: protocol.H2Limits{MaxHeaderBlockBytes: 100},
			in: hdrOnly(fHeaders, flEndHdrs, 1, 92), want: protocol.ErrH2HeaderBlockTooLarge, early: true,
		},
		{
			name: "CONTINUATION flood", lim: protocol.H2Limits{MaxHeaderBlockBytes: 100},
			in:   cat(rawFrame(fHeaders, 0, 1, 0x82), bytes.Repeat(rawFrame(fCont, 0, 1), 11)), // the 10th fits exactly
			want: protocol.ErrH2HeaderBlockTooLarge, early: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkH2Splits(t, tt.lim, tt.in)
			last := got[len(got)-1]
			if !errors.Is(last.Err, tt.want) {
				t.Fatalf("got %v, want %v\n%v", last.Err, tt.want, got)
			}
			var se *protocol.H2StreamError
			if errors.As(tt.want, &se) {
				if last.Kind != "stream error" || last.Hdr.StreamID != tt.stream || last.N != len(tt.in) {
					t.Fatalf("want a stream error on %d consuming the frame, got %v", tt.stream, last)
				}
			} else if last.Kind != "conn error" || last.Err != tt.want {
				t.Fatalf("want the connection error sentinel itself, got %v", last)
			}
			// Every truncated prefix is need-more, or (for a check made
			// on the header) the same error once the header is whole.
			start := 0 // where the refused frame begins
			for _, r := range got[:len(got)-1] {
				start += r.N
			}
			for i := 0; i < len(tt.in); i++ {
				got := driveH2(t, protocol.NewH2Reader(tt.lim), tt.in[:i])
				err := got.connErr()
				switch {
				case tt.early && i >= start+protocol.H2FrameHeaderLen:
					if err != tt.want {
						t.Fatalf("prefix %d: got %v, want %v on the header alone", i, err, tt.want)
					}
				case err != nil:
					t.Fatalf("prefix %d: %v", i, err)
				}
			}
		})
	}
}

func TestH2ReaderMaxFrameSize(t *testing.T) {
	frame := func(n int) []byte { return protocol.AppendH2Data(nil, 1, false, make([]byte, n)) }
	r := protocol.NewH2Reader(protocol.H2Limits{})
	if r.MaxFrameSize() != 16384 {
		t.Fatalf("default MaxFrameSize %d", r.MaxFrameSize())
	}
	if got := driveH2(t, r, frame(16384)); len(got) != 1 || got[0].Kind != "frame" {
		t.Fatalf("16384-byte frame: %v", got)
	}
	r.SetMaxFrameSize(1 << 20)
	if got := driveH2(t, r, frame(1<<20)); len(got) != 1 || got[0].Kind != "frame" {
		t.Fatalf("1 MiB frame after SetMaxFrameSize: %v", got)
	}
	for _, tt := range []struct{ set, want uint32 }{
		{0, 16384}, {1, 16384}, {16383, 16384}, {16385, 16385}, {1<<24 - 1, 1<<24 - 1}, {1 << 24, 1<<24 - 1}, {1<<32 - 1, 1<<24 - 1},
	} {
		r.SetMaxFrameSize(tt.set)
		if r.MaxFrameSize() != tt.want {
			t.Errorf("SetMaxFrameSize(%d): %d, want %d", tt.set, r.MaxFrameSize(), tt.want)
		}
	}
	var zero protocol.H2Reader // the zero value reads with the defaults
	if _, _, err := zero.Feed(hdrOnly(fData, 0, 1, 16385)); err != protocol.ErrH2FrameTooLarge || zero.MaxFrameSize() != 16384 {
		t.Fatalf("zero value: %v", err)
	}
}

func TestH2ReaderHeaderBlockLimit(t *testing.T) {
	lim := protocol.H2Limits{MaxHeaderBlockBytes: 9 + 10 + 9 + 20}
	in := cat(rawFrame(fHeaders, 0, 1, make([]byte, 10)...), rawFrame(fCont, flEndHdrs, 1, make([]byte, 20)...))
	got := checkH2Splits(t, lim, in)
	if len(got) != 2 || got.connErr() != nil {
		t.Fatalf("block of exactly the limit: %v", got)
	}
	// The limit is per block: a second block starts from zero.
	got = driveH2(t, protocol.NewH2Reader(lim), in, in, in)
	if len(got) != 6 || got.connErr() != nil {
		t.Fatalf("three blocks of the limit: %v", got)
	}
	over := cat(rawFrame(fHeaders, 0, 1, make([]byte, 10)...), rawFrame(fCont, flEndHdrs, 1, make([]byte, 21)...))
	if err := driveH2(t, protocol.NewH2Reader(lim), over).connErr(); err != protocol.ErrH2HeaderBlockTooLarge {
		t.Fatalf("one byte over: %v", err)
	}
	// The default is DefaultH2MaxHeaderBlockBytes.
	big := protocol.AppendH2HeaderBlock(nil, 1, false, make([]byte, protocol.DefaultH2MaxHeaderBlockBytes), 0)
	if err := driveH2(t, protocol.NewH2Reader(protocol.H2Limits{}), big).connErr(); err != protocol.ErrH2HeaderBlockTooLarge {
		t.Fatalf("default limit: %v", err)
	}
}

func TestH2ReaderFieldBlockStream(t *testing.T) {
	r := protocol.NewH2Reader(h2Lim)
	buf := rawFrame(fHeaders, 0, 5, 0x82)
	if n, _, err := r.Feed(buf); n != len(buf) || err != nil || r.FieldBlockStream() != 5 {
		t.Fatalf("after HEADERS: n=%d err=%v stream=%d", n, err, r.FieldBlockStream())
	}
	// Init starts a new connection: no block is open.
	r.Init(h2Lim)
	if r.FieldBlockStream() != 0 {
		t.Fatalf("after Init: stream %d", r.FieldBlockStream())
	}
	if _, _, err := r.Feed(protocol.AppendH2Ping(nil, false, [8]byte{})); err != nil {
		t.Fatalf("PING after Init: %v", err)
	}
}

// TestH2ReaderRoundTrip reads back what the encoders write.
func TestH2ReaderRoundTrip(t *testing.T) {
	block := bytes.Repeat([]byte("\x82\x86\x84\x41\x8a"), 10000) // 50000 bytes: four frames
	var in []byte
	in = protocol.AppendH2Settings(in, protocol.H2Setting{ID: protocol.H2SettingMaxConcurrentStreams, Val: 100})
	in = protocol.AppendH2SettingsAck(in)
	in = protocol.AppendH2HeaderBlock(in, 1, false, block, 0)
	in = protocol.AppendH2Data(in, 1, true, []byte("body"))
	in = protocol.AppendH2Ping(in, true, [8]byte{9, 8, 7, 6, 5, 4, 3, 2})
	in = protocol.AppendH2WindowUpdate(in, 1, 1000)
	in = protocol.AppendH2RSTStream(in, 1, protocol.H2StreamClosed)
	in = protocol.AppendH2GoAway(in, 1, protocol.H2EnhanceYourCalm, []byte("calm"))
	got := driveH2(t, protocol.NewH2Reader(h2Lim), in)
	if got.connErr() != nil || len(got) != 11 {
		t.Fatalf("%v", got)
	}
	var gotBlock string
	for _, r := range got[2:6] {
		gotBlock += r.Data
	}
	if gotBlock != string(block) || !got[5].Hdr.Has(flEndHdrs) || got[2].Hdr.Has(flEnd) {
		t.Fatalf("field block did not survive: %d bytes\n%v", len(gotBlock), got[2:6])
	}
	if got[6].Data != "body" || !got[6].Hdr.Has(flEnd) || got[7].Ping != [8]byte{9, 8, 7, 6, 5, 4, 3, 2} ||
		got[8].Increment != 1000 || got[9].Code != protocol.H2StreamClosed ||
		got[10].LastStreamID != 1 || got[10].Code != protocol.H2EnhanceYourCalm || got[10].Data != "calm" {
		t.Fatalf("%v", got)
	}
}

// TestH2FrameAccessors checks the flag helpers, which look at the type.
func TestH2FrameAccessors(t *testing.T) {
	var f protocol.H2Frame
	f.Flags = 0xff
	for _, tt := range []struct {
		typ                                     protocol.H2FrameType
		endStream, endHeaders, ack, hasPriority bool
	}{
		{fData, true, false, false, false},
		{fHeaders, true, true, false, true},
		{fPriority, false, false, false, true},
		{fSettings, false, false, true, false},
		{fPing, false, false, true, false},
		{fCont, false, true, false, false},
		{fGoAway, false, false, false, false},
	} {
		f.Type = tt.typ
		if f.EndStream() != tt.endStream || f.EndHeaders() != tt.endHeaders || f.Ack() != tt.ack || f.HasPriority() != tt.hasPriority {
			t.Errorf("%v with all flags: EndStream %v EndHeaders %v Ack %v HasPriority %v", tt.typ,
				f.EndStream(), f.EndHeaders(), f.Ack(), f.HasPriority())
		}
	}
	f = protocol.H2Frame{}
	f.Type = fData
	if f.NumSettings() != 0 {
		t.Errorf("NumSettings on DATA")
	}
}

func BenchmarkH2ReadData(b *testing.B) {
	in := protocol.AppendH2Data(nil, 1, false, make([]byte, 16384))
	r := protocol.NewH2Reader(h2Lim)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		n, f, err := r.Feed(in)
		if n != len(in) || f == nil || err != nil {
			b.Fatalf("n=%d err=%v", n, err)
		}
	}
}

func BenchmarkH2ReadHeaders(b *testing.B) {
	// A typical browser request's block: HEADERS with priority, then a
	// CONTINUATION, as some clients split them.
	block := bytes.Repeat([]byte{0x82, 0x87, 0x84, 0x41, 0x8c}, 40)
	in := protocol.AppendH2HeaderBlock(nil, 1, true, block, 150)
	r := protocol.NewH2Reader(h2Lim)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		buf := in
		for len(buf) > 0 {
			n, f, err := r.Feed(buf)
			if n == 0 || f == nil || err != nil {
				b.Fatalf("n=%d err=%v", n, err)
			}
			buf = buf[n:]
		}
	}
}

func BenchmarkH2ReadMixed(b *testing.B) {
	in := h2Mixed()
	r := protocol.NewH2Reader(h2Lim)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		buf := in
		for len(buf) > 0 {
			n, _, err := r.Feed(buf)
			if n == 0 {
				b.Fatalf("stuck: %v", err)
			}
			buf = buf[n:]
		}
	}
}
