package protocol_test

import (
	"fmt"
	"testing"

	"golang.org/x/net/http2"

	"github.com/blastbeat/blastbeat/protocol"
)

func TestParseH2FrameHeader(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want protocol.H2FrameHeader
		ok   bool
	}{
		{name: "empty", in: nil},
		{name: "8 bytes", in: hx("000000 04 00 000000")},
		{name: "SETTINGS", in: hx("000000 04 00 00000000"), want: protocol.H2FrameHeader{Type: fSettings}, ok: true},
		{
			name: "all fields, payload ignored",
			in:   hx("123456 01 25 00000007 ffff"),
			want: protocol.H2FrameHeader{Length: 0x123456, Type: fHeaders, Flags: 0x25, StreamID: 7}, ok: true,
		},
		{
			name: "reserved bit dropped (§4.1)",
			in:   hx("ffffff ff ff ffffffff"),
			want: protocol.H2FrameHeader{Length: 1<<24 - 1, Type: 0xff, Flags: 0xff, StreamID: 1<<31 - 1}, ok: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := protocol.ParseH2FrameHeader(tt.in)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("got %+v %v, want %+v %v", got, ok, tt.want, tt.ok)
			}
			if ok { // the encoder writes back the same bytes, reserved bit aside
				enc := protocol.AppendH2FrameHeader(nil, got)
				if want := append(tt.in[:5:5], tt.in[5]&0x7f, tt.in[6], tt.in[7], tt.in[8]); string(enc) != string(want) {
					t.Fatalf("re-encoded % x, want % x", enc, want)
				}
			}
		})
	}
}

// TestH2Names compares every name with x/net/http2's.
func TestH2Names(t *testing.T) {
	for i := range 0x20 {
		// x/net names 0xa..0xf "" (its name table has a gap before 0x10).
		if got, want := protocol.H2FrameType(i).String(), http2.FrameType(i).String(); got != want && i <= 9 {
			t.Errorf("frame type %#x: %q, x/net %q", i, got, want)
		} else if i > 9 && got != fmt.Sprintf("UNKNOWN_FRAME_TYPE_%d", i) {
			t.Errorf("frame type %#x: %q", i, got)
		}
		if got, want := protocol.H2ErrCode(i).String(), http2.ErrCode(i).String(); got != want {
			t.Errorf("error code %#x: %q, x/net %q", i, got, want)
		}
	}
	if got := protocol.H2ErrCode(0xdeadbeef).String(); got != "unknown error code 0xdeadbeef" {
		t.Errorf("unknown error code: %q", got)
	}
	for _, id := range []protocol.H2SettingID{1, 2, 3, 4, 5, 6, 8, 9} {
		if got, want := id.String(), http2.SettingID(id).String(); got != want {
			t.Errorf("setting %d: %q, x/net %q", id, got, want)
		}
	}
	for _, id := range []protocol.H2SettingID{0, 7, 10, 0xffff} {
		if got, want := id.String(), "UNKNOWN_SETTING_"; len(got) <= len(want) || got[:len(want)] != want {
			t.Errorf("setting %d: %q", id, got)
		}
	}
}

func TestH2SettingValid(t *testing.T) {
	tests := []struct {
		s    protocol.H2Setting
		want error
	}{
		{s: protocol.H2Setting{ID: protocol.H2SettingHeaderTableSize, Val: 1<<32 - 1}},
		{s: protocol.H2Setting{ID: protocol.H2SettingEnablePush, Val: 0}},
		{s: protocol.H2Setting{ID: protocol.H2SettingEnablePush, Val: 1}},
		{s: protocol.H2Setting{ID: protocol.H2SettingEnablePush, Val: 2}, want: protocol.ErrH2SettingsEnablePush},
		{s: protocol.H2Setting{ID: protocol.H2SettingMaxConcurrentStreams, Val: 0}},
		{s: protocol.H2Setting{ID: protocol.H2SettingInitialWindowSize, Val: 0}},
		{s: protocol.H2Setting{ID: protocol.H2SettingInitialWindowSize, Val: 1<<31 - 1}},
		{s: protocol.H2Setting{ID: protocol.H2SettingInitialWindowSize, Val: 1 << 31}, want: protocol.ErrH2SettingsWindowSize},
		{s: protocol.H2Setting{ID: protocol.H2SettingMaxFrameSize, Val: 16383}, want: protocol.ErrH2SettingsMaxFrameSize},
		{s: protocol.H2Setting{ID: protocol.H2SettingMaxFrameSize, Val: 16384}},
		{s: protocol.H2Setting{ID: protocol.H2SettingMaxFrameSize, Val: 1<<24 - 1}},
		{s: protocol.H2Setting{ID: protocol.H2SettingMaxFrameSize, Val: 1 << 24}, want: protocol.ErrH2SettingsMaxFrameSize},
		{s: protocol.H2Setting{ID: protocol.H2SettingMaxHeaderListSize, Val: 0}},
		{s: protocol.H2Setting{ID: protocol.H2SettingEnableConnectProtocol, Val: 1}},
		{s: protocol.H2Setting{ID: protocol.H2SettingEnableConnectProtocol, Val: 2}, want: protocol.ErrH2SettingsConnectProto},
		{s: protocol.H2Setting{ID: protocol.H2SettingNoRFC7540Priorities, Val: 1}},
		{s: protocol.H2Setting{ID: protocol.H2SettingNoRFC7540Priorities, Val: 2}, want: protocol.ErrH2SettingsNoPriorities},
		{s: protocol.H2Setting{ID: 0x7, Val: 1<<32 - 1}},
		{s: protocol.H2Setting{ID: 0xffff, Val: 1<<32 - 1}},
	}
	for _, tt := range tests {
		if err := tt.s.Valid(); err != tt.want {
			t.Errorf("%v=%d: %v, want %v", tt.s.ID, tt.s.Val, err, tt.want)
		}
	}
}

func TestMatchH2Preface(t *testing.T) {
	p := protocol.H2Preface
	if p != http2.ClientPreface {
		t.Fatalf("H2Preface %q, x/net %q", p, http2.ClientPreface)
	}
	for i := 0; i < len(p); i++ {
		if n, err := protocol.MatchH2Preface([]byte(p[:i])); n != 0 || err != nil {
			t.Fatalf("prefix %q: n=%d err=%v", p[:i], n, err)
		}
		// A wrong byte at i is refused, whatever follows.
		bad := []byte(p)
		bad[i] ^= 0x20
		if n, err := protocol.MatchH2Preface(bad[:i+1]); n != 0 || err != protocol.ErrH2BadPreface {
			t.Fatalf("wrong byte at %d: n=%d err=%v", i, n, err)
		}
	}
	for _, in := range []string{p, p + "\x00\x00\x00\x04\x00\x00\x00\x00\x00"} {
		if n, err := protocol.MatchH2Preface([]byte(in)); n != len(p) || err != nil {
			t.Fatalf("%q: n=%d err=%v", in, n, err)
		}
	}
	for _, in := range []string{"GET / HTTP/1.1\r\n", "PRI * HTTP/1.1\r\n", "\x16\x03\x01"} {
		if n, err := protocol.MatchH2Preface([]byte(in)); n != 0 || err != protocol.ErrH2BadPreface {
			t.Fatalf("%q: n=%d err=%v", in, n, err)
		}
	}
}

func BenchmarkParseH2FrameHeader(b *testing.B) {
	in := hx("004000 00 01 00000001")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if h, ok := protocol.ParseH2FrameHeader(in); !ok || h.Length != 16384 {
			b.Fatal(h)
		}
	}
}
