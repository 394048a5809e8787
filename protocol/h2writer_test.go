package protocol_test

import (
	"bytes"
	"fmt"
	"testing"

	"golang.org/x/net/http2"

	"github.com/blastbeat/blastbeat/protocol"
)

// xnetFrames returns what x/net/http2's Framer writes when write calls it.
func xnetFrames(tb testing.TB, write func(fr *http2.Framer) error) []byte {
	tb.Helper()
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	if err := write(fr); err != nil {
		tb.Fatalf("x/net: %v", err)
	}
	return out.Bytes()
}

// TestH2WriterGolden checks every encoder against wire bytes written out
// by hand from RFC 9113 §4.1 and §6, and against x/net/http2's Framer
// writing the same frames.
func TestH2WriterGolden(t *testing.T) {
	block := []byte{0x82, 0x86, 0x84, 0x41, 0x8a}
	tests := []struct {
		name   string
		got    []byte
		golden string // hex; spaces separate header fields
		xnet   func(fr *http2.Framer) error
	}{
		{
			name:   "DATA end stream",
			got:    protocol.AppendH2Data(nil, 1, true, []byte("hi")),
			golden: "000002 00 01 00000001 6869",
			xnet:   func(fr *http2.Framer) error { return fr.WriteData(1, true, []byte("hi")) },
		},
		{
			name:   "DATA empty",
			got:    protocol.AppendH2Data(nil, 0x7fffffff, false, nil),
			golden: "000000 00 00 7fffffff",
			xnet:   func(fr *http2.Framer) error { return fr.WriteData(0x7fffffff, false, nil) },
		},
		{
			name:   "HEADERS end stream, end headers",
			got:    protocol.AppendH2Headers(nil, 3, true, true, block),
			golden: "000005 01 05 00000003 82868441 8a",
			xnet: func(fr *http2.Framer) error {
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block, EndStream: true, EndHeaders: true})
			},
		},
		{
			name:   "HEADERS without END_HEADERS",
			got:    protocol.AppendH2Headers(nil, 3, false, false, block[:2]),
			golden: "000002 01 00 00000003 8286",
			xnet: func(fr *http2.Framer) error {
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block[:2]})
			},
		},
		{
			name:   "CONTINUATION",
			got:    protocol.AppendH2Continuation(nil, 3, true, block[2:]),
			golden: "000003 09 04 00000003 84418a",
			xnet:   func(fr *http2.Framer) error { return fr.WriteContinuation(3, true, block[2:]) },
		},
		{
			name: "SETTINGS",
			got: protocol.AppendH2Settings(nil,
				protocol.H2Setting{ID: protocol.H2SettingMaxConcurrentStreams, Val: 100},
				protocol.H2Setting{ID: protocol.H2SettingInitialWindowSize, Val: 65535},
				protocol.H2Setting{ID: protocol.H2SettingEnableConnectProtocol, Val: 1}),
			golden: "000012 04 00 00000000 0003 00000064 0004 0000ffff 0008 00000001",
			xnet: func(fr *http2.Framer) error {
				return fr.WriteSettings(
					http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100},
					http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535},
					http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1})
			},
		},
		{
			name:   "SETTINGS empty",
			got:    protocol.AppendH2Settings(nil),
			golden: "000000 04 00 00000000",
			xnet:   func(fr *http2.Framer) error { return fr.WriteSettings() },
		},
		{
			name:   "SETTINGS ack",
			got:    protocol.AppendH2SettingsAck(nil),
			golden: "000000 04 01 00000000",
			xnet:   func(fr *http2.Framer) error { return fr.WriteSettingsAck() },
		},
		{
			name:   "PING",
			got:    protocol.AppendH2Ping(nil, false, [8]byte{'1', '2', '3', '4', '5', '6', '7', '8'}),
			golden: "000008 06 00 00000000 3132333435363738",
			xnet: func(fr *http2.Framer) error {
				return fr.WritePing(false, [8]byte{'1', '2', '3', '4', '5', '6', '7', '8'})
			},
		},
		{
			name:   "PING ack",
			got:    protocol.AppendH2Ping(nil, true, [8]byte{0, 0, 0, 0, 0, 0, 0, 1}),
			golden: "000008 06 01 00000000 0000000000000001",
			xnet:   func(fr *http2.Framer) error { return fr.WritePing(true, [8]byte{0, 0, 0, 0, 0, 0, 0, 1}) },
		},
		{
			name:   "GOAWAY with debug data",
			got:    protocol.AppendH2GoAway(nil, 7, protocol.H2ProtocolError, []byte("bye")),
			golden: "00000b 07 00 00000000 00000007 00000001 627965",
			xnet:   func(fr *http2.Framer) error { return fr.WriteGoAway(7, http2.ErrCodeProtocol, []byte("bye")) },
		},
		{
			name:   "GOAWAY reserved bit cleared",
			got:    protocol.AppendH2GoAway(nil, 0xffffffff, protocol.H2NoError, nil),
			golden: "000008 07 00 00000000 7fffffff 00000000",
			xnet:   func(fr *http2.Framer) error { return fr.WriteGoAway(0xffffffff, http2.ErrCodeNo, nil) },
		},
		{
			name:   "RST_STREAM",
			got:    protocol.AppendH2RSTStream(nil, 3, protocol.H2Cancel),
			golden: "000004 03 00 00000003 00000008",
			xnet:   func(fr *http2.Framer) error { return fr.WriteRSTStream(3, http2.ErrCodeCancel) },
		},
		{
			name:   "WINDOW_UPDATE connection",
			got:    protocol.AppendH2WindowUpdate(nil, 0, 65535),
			golden: "000004 08 00 00000000 0000ffff",
			xnet:   func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 65535) },
		},
		{
			name:   "WINDOW_UPDATE stream, maximum",
			got:    protocol.AppendH2WindowUpdate(nil, 5, 1<<31-1),
			golden: "000004 08 00 00000005 7fffffff",
			xnet:   func(fr *http2.Framer) error { return fr.WriteWindowUpdate(5, 1<<31-1) },
		},
		{
			name:   "raw frame, stream reserved bit cleared",
			got:    protocol.AppendH2Frame(nil, protocol.H2FrameHeader{Length: 99, Type: 0xbb, Flags: 0xcc, StreamID: 0x80000001}, []byte{1, 2}),
			golden: "000002 bb cc 00000001 0102",
			xnet:   func(fr *http2.Framer) error { return fr.WriteRawFrame(0xbb, 0xcc, 1, []byte{1, 2}) },
		},
		{
			name:   "frame header alone",
			got:    protocol.AppendH2FrameHeader(nil, protocol.H2FrameHeader{Length: 1<<24 - 1, Type: fData, Flags: flEnd, StreamID: 9}),
			golden: "ffffff 00 01 00000009",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want := hx(tt.golden); !bytes.Equal(tt.got, want) {
				t.Fatalf("got  % x\nwant % x", tt.got, want)
			}
			if tt.xnet != nil {
				if want := xnetFrames(t, tt.xnet); !bytes.Equal(tt.got, want) {
					t.Fatalf("got   % x\nx/net % x", tt.got, want)
				}
			}
		})
	}
}

// TestAppendH2HeaderBlock splits blocks of many sizes by many frame sizes
// and compares with x/net writing HEADERS and CONTINUATIONs the same way
// (its server's writeResHeaders splits at the peer's max frame size too).
func TestAppendH2HeaderBlock(t *testing.T) {
	for _, size := range []int{0, 1, 15, 16, 17, 32, 33, 100, 16384, 16385, 40000} {
		block := make([]byte, size)
		for i := range block {
			block[i] = byte(i)
		}
		for _, maxFrame := range []int{1, 16, 100, 16384, 0} {
			for _, endStream := range []bool{false, true} {
				t.Run(fmt.Sprintf("%d bytes by %d end %v", size, maxFrame, endStream), func(t *testing.T) {
					got := protocol.AppendH2HeaderBlock([]byte("prefix"), 5, endStream, block, maxFrame)
					if string(got[:6]) != "prefix" {
						t.Fatalf("dst prefix lost")
					}
					got = got[6:]
					mf := maxFrame
					if mf <= 0 {
						mf = 16384
					}
					want := xnetFrames(t, func(fr *http2.Framer) error {
						first := block[:min(len(block), mf)]
						rest := block[len(first):]
						err := fr.WriteHeaders(http2.HeadersFrameParam{
							StreamID: 5, BlockFragment: first, EndStream: endStream, EndHeaders: len(rest) == 0,
						})
						for err == nil && len(rest) > 0 {
							frag := rest[:min(len(rest), mf)]
							rest = rest[len(frag):]
							err = fr.WriteContinuation(5, len(rest) == 0, frag)
						}
						return err
					})
					if !bytes.Equal(got, want) {
						t.Fatalf("differs from x/net: %d vs %d bytes", len(got), len(want))
					}
					frames := max(1, (size+mf-1)/mf)
					if len(got) != frames*9+size {
						t.Fatalf("%d bytes for %d frames", len(got), frames)
					}
				})
			}
		}
	}
}

func TestAppendH2FrameHeaderTooLong(t *testing.T) {
	for _, fn := range []func(){
		func() { protocol.AppendH2FrameHeader(nil, protocol.H2FrameHeader{Length: 1 << 24}) },
		func() { protocol.AppendH2Data(nil, 1, false, make([]byte, 1<<24)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic for a length beyond 24 bits")
				}
			}()
			fn()
		}()
	}
}

func BenchmarkAppendH2Data(b *testing.B) {
	data := make([]byte, 16384)
	dst := make([]byte, 0, 20000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		dst = protocol.AppendH2Data(dst[:0], 1, false, data)
	}
}

func BenchmarkAppendH2HeaderBlock(b *testing.B) {
	block := make([]byte, 40000)
	dst := make([]byte, 0, 41000)
	b.SetBytes(int64(len(block)))
	b.ReportAllocs()
	for b.Loop() {
		dst = protocol.AppendH2HeaderBlock(dst[:0], 1, true, block, 16384)
	}
}

func BenchmarkAppendH2Control(b *testing.B) {
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = protocol.AppendH2Settings(dst[:0],
			protocol.H2Setting{ID: protocol.H2SettingMaxConcurrentStreams, Val: 100},
			protocol.H2Setting{ID: protocol.H2SettingInitialWindowSize, Val: 1 << 20})
		dst = protocol.AppendH2SettingsAck(dst)
		dst = protocol.AppendH2WindowUpdate(dst, 0, 1<<20)
		dst = protocol.AppendH2Ping(dst, true, [8]byte{})
		dst = protocol.AppendH2RSTStream(dst, 1, protocol.H2Cancel)
		dst = protocol.AppendH2GoAway(dst, 1, protocol.H2NoError, nil)
	}
}
