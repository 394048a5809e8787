//go:build !race

package protocol_test

import (
	"bytes"
	"testing"

	"github.com/blastbeat/blastbeat/protocol"
)

// TestH2ReadAllocs enforces the zero-allocation hot path of the frame
// reader: a frame is parsed in place, into the reader's own H2Frame.
// (Built without -race: the race detector allocates.)
func TestH2ReadAllocs(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []byte
	}{
		{name: "DATA", in: protocol.AppendH2Data(nil, 1, false, make([]byte, 16384))},
		{name: "DATA padded", in: rawFrame(fData, flPadded|flEnd, 1, append([]byte{3}, "data\x00\x00\x00"...)...)},
		{name: "HEADERS and CONTINUATION", in: protocol.AppendH2HeaderBlock(nil, 1, true, bytes.Repeat([]byte{0x82}, 300), 100)},
		{name: "SETTINGS", in: protocol.AppendH2Settings(nil,
			protocol.H2Setting{ID: protocol.H2SettingEnablePush, Val: 0},
			protocol.H2Setting{ID: protocol.H2SettingInitialWindowSize, Val: 1 << 20},
			protocol.H2Setting{ID: protocol.H2SettingMaxFrameSize, Val: 1 << 20})},
		{name: "control frames", in: cat(
			protocol.AppendH2Ping(nil, false, [8]byte{}), protocol.AppendH2WindowUpdate(nil, 0, 1),
			protocol.AppendH2RSTStream(nil, 1, protocol.H2Cancel), rawFrame(fPriority, 0, 1, 0, 0, 0, 0, 16),
			rawFrame(0x33, 0, 0, 'x'), protocol.AppendH2GoAway(nil, 0, 0, []byte("x")))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := protocol.NewH2Reader(h2Lim)
			read := func() {
				buf := tt.in
				for len(buf) > 0 {
					n, _, err := r.Feed(buf)
					if n == 0 || err != nil {
						t.Fatalf("n=%d err=%v", n, err)
					}
					buf = buf[n:]
				}
			}
			if allocs := testing.AllocsPerRun(100, read); allocs != 0 {
				t.Fatalf("%v allocations per read", allocs)
			}
		})
	}
}

// TestH2WriteAllocs keeps the encoders allocation-free when dst has room.
func TestH2WriteAllocs(t *testing.T) {
	dst := make([]byte, 0, 1<<16)
	data := make([]byte, 16384)
	block := make([]byte, 40000)
	for _, tt := range []struct {
		name string
		fn   func()
	}{
		{name: "AppendH2Data", fn: func() { dst = protocol.AppendH2Data(dst[:0], 1, true, data) }},
		{name: "AppendH2HeaderBlock", fn: func() { dst = protocol.AppendH2HeaderBlock(dst[:0], 1, true, block, 16384) }},
		{name: "AppendH2Settings", fn: func() {
			dst = protocol.AppendH2Settings(dst[:0], protocol.H2Setting{ID: protocol.H2SettingMaxConcurrentStreams, Val: 100},
				protocol.H2Setting{ID: protocol.H2SettingInitialWindowSize, Val: 1 << 20})
		}},
		{name: "control frames", fn: func() {
			dst = protocol.AppendH2SettingsAck(dst[:0])
			dst = protocol.AppendH2Ping(dst, true, [8]byte{1})
			dst = protocol.AppendH2WindowUpdate(dst, 0, 1<<20)
			dst = protocol.AppendH2RSTStream(dst, 1, protocol.H2Cancel)
			dst = protocol.AppendH2GoAway(dst, 1, protocol.H2NoError, []byte("bye"))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(100, tt.fn); allocs != 0 {
				t.Fatalf("%v allocations", allocs)
			}
		})
	}
}

// TestStringCacheAllocs: a value the cache holds costs no allocation.
func TestStringCacheAllocs(t *testing.T) {
	var c protocol.StringCache
	b := []byte("application/json")
	c.String(b)
	if allocs := testing.AllocsPerRun(100, func() { c.String(b) }); allocs != 0 {
		t.Errorf("a cached value: %.1f allocations, want 0", allocs)
	}
}
