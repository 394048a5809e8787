package protocol

import (
	"encoding/binary"
	"slices"
)

// Append-style encoders for the frames a server sends (RFC 9113 §6). Each
// appends whole frames to dst and returns the extended slice; none keeps a
// reference to its arguments, and none allocates when dst has room. They
// check nothing the caller controls (stream states, flow-control windows,
// the peer's SETTINGS_MAX_FRAME_SIZE): a DATA payload, for one, must
// already fit both. The reserved bit of every stream id written is cleared
// (§4.1: it "MUST remain unset (0x0) when sending"). They are safe for
// concurrent use.

// AppendH2FrameHeader appends the 9-byte header h (§4.1), h.Length
// included, for a payload the caller writes separately (as with gnet's
// AsyncWritev). It panics if h.Length does not fit 24 bits: that frame
// would corrupt the connection's framing.
func AppendH2FrameHeader(dst []byte, h H2FrameHeader) []byte {
	if h.Length > H2MaxFrameSizeLimit {
		panic("protocol: http2 frame length exceeds 2^24-1")
	}
	return append(dst,
		byte(h.Length>>16), byte(h.Length>>8), byte(h.Length),
		byte(h.Type), h.Flags,
		byte(h.StreamID>>24)&0x7f, byte(h.StreamID>>16), byte(h.StreamID>>8), byte(h.StreamID))
}

// AppendH2Frame appends a frame with h's type, flags and stream, and
// payload; h.Length is ignored (len(payload) is written).
func AppendH2Frame(dst []byte, h H2FrameHeader, payload []byte) []byte {
	h.Length = uint32(len(payload))
	if len(payload) > H2MaxFrameSizeLimit {
		h.Length = H2MaxFrameSizeLimit + 1 // let AppendH2FrameHeader refuse it
	}
	dst = slices.Grow(dst, H2FrameHeaderLen+len(payload))
	dst = AppendH2FrameHeader(dst, h)
	return append(dst, payload...)
}

// AppendH2Data appends one unpadded DATA frame (§6.1). data must fit the
// peer's SETTINGS_MAX_FRAME_SIZE and both flow-control windows.
func AppendH2Data(dst []byte, stream uint32, endStream bool, data []byte) []byte {
	return AppendH2Frame(dst, h2DataHeader(stream, endStream, 0), data)
}

// AppendH2DataHeader appends the 9-byte header of a DATA frame of n
// payload bytes, for a payload the caller writes separately.
func AppendH2DataHeader(dst []byte, stream uint32, endStream bool, n int) []byte {
	return AppendH2FrameHeader(dst, h2DataHeader(stream, endStream, uint32(n)))
}

func h2DataHeader(stream uint32, endStream bool, n uint32) H2FrameHeader {
	var flags uint8
	if endStream {
		flags = H2FlagEndStream
	}
	return H2FrameHeader{Length: n, Type: H2FrameData, Flags: flags, StreamID: stream}
}

// AppendH2Headers appends one unpadded HEADERS frame without priority
// (§6.2) carrying block, a field block fragment that must fit the peer's
// SETTINGS_MAX_FRAME_SIZE. Without endHeaders, CONTINUATION frames must
// follow with nothing interleaved (§4.3); AppendH2HeaderBlock does both.
func AppendH2Headers(dst []byte, stream uint32, endStream, endHeaders bool, block []byte) []byte {
	var flags uint8
	if endStream {
		flags |= H2FlagEndStream
	}
	if endHeaders {
		flags |= H2FlagEndHeaders
	}
	return AppendH2Frame(dst, H2FrameHeader{Type: H2FrameHeaders, Flags: flags, StreamID: stream}, block)
}

// AppendH2Continuation appends one CONTINUATION frame (§6.10).
func AppendH2Continuation(dst []byte, stream uint32, endHeaders bool, block []byte) []byte {
	var flags uint8
	if endHeaders {
		flags = H2FlagEndHeaders
	}
	return AppendH2Frame(dst, H2FrameHeader{Type: H2FrameContinuation, Flags: flags, StreamID: stream}, block)
}

// AppendH2HeaderBlock appends a whole field block (§4.3): one HEADERS
// frame and as many CONTINUATION frames as it takes to keep each payload
// within maxFrame bytes (the peer's SETTINGS_MAX_FRAME_SIZE; 0 or less
// means the default, 16384). END_STREAM goes on the HEADERS frame (§8.1),
// END_HEADERS on the last frame. An empty block is one empty HEADERS.
func AppendH2HeaderBlock(dst []byte, stream uint32, endStream bool, block []byte, maxFrame int) []byte {
	if maxFrame <= 0 {
		maxFrame = H2DefaultMaxFrameSize
	}
	frames := max(1, (len(block)+maxFrame-1)/maxFrame)
	dst = slices.Grow(dst, frames*H2FrameHeaderLen+len(block))
	first := block[:min(len(block), maxFrame)]
	block = block[len(first):]
	dst = AppendH2Headers(dst, stream, endStream, len(block) == 0, first)
	for len(block) > 0 {
		frag := block[:min(len(block), maxFrame)]
		block = block[len(frag):]
		dst = AppendH2Continuation(dst, stream, len(block) == 0, frag)
	}
	return dst
}

// AppendH2Settings appends a SETTINGS frame (§6.5) with the parameters in
// order. A server's first frame is SETTINGS, possibly empty (§3.4).
func AppendH2Settings(dst []byte, settings ...H2Setting) []byte {
	dst = slices.Grow(dst, H2FrameHeaderLen+6*len(settings))
	dst = AppendH2FrameHeader(dst, H2FrameHeader{Length: uint32(6 * len(settings)), Type: H2FrameSettings})
	for _, s := range settings {
		dst = binary.BigEndian.AppendUint16(dst, uint16(s.ID))
		dst = binary.BigEndian.AppendUint32(dst, s.Val)
	}
	return dst
}

// AppendH2SettingsAck appends a SETTINGS frame with ACK (§6.5.3), the
// answer to every non-ACK SETTINGS received.
func AppendH2SettingsAck(dst []byte) []byte {
	return AppendH2FrameHeader(dst, H2FrameHeader{Type: H2FrameSettings, Flags: H2FlagAck})
}

// AppendH2Ping appends a PING (§6.7); the answer to a PING has ack set and
// the same data.
func AppendH2Ping(dst []byte, ack bool, data [8]byte) []byte {
	var flags uint8
	if ack {
		flags = H2FlagAck
	}
	dst = AppendH2FrameHeader(dst, H2FrameHeader{Length: 8, Type: H2FramePing, Flags: flags})
	return append(dst, data[:]...)
}

// AppendH2GoAway appends a GOAWAY (§6.8): lastStream is the highest
// client stream the server processed or might process, code why the
// connection ends (an H2ConnError's Code), debug opaque diagnostic bytes
// (an H2ConnError's Reason, or nothing).
func AppendH2GoAway(dst []byte, lastStream uint32, code H2ErrCode, debug []byte) []byte {
	dst = slices.Grow(dst, H2FrameHeaderLen+8+len(debug))
	dst = AppendH2FrameHeader(dst, H2FrameHeader{Length: uint32(8 + len(debug)), Type: H2FrameGoAway})
	dst = binary.BigEndian.AppendUint32(dst, lastStream&(1<<31-1))
	dst = binary.BigEndian.AppendUint32(dst, uint32(code))
	return append(dst, debug...)
}

// AppendH2RSTStream appends a RST_STREAM (§6.4) ending stream with code
// (an H2StreamError's StreamID and Code).
func AppendH2RSTStream(dst []byte, stream uint32, code H2ErrCode) []byte {
	dst = AppendH2FrameHeader(dst, H2FrameHeader{Length: 4, Type: H2FrameRSTStream, StreamID: stream})
	return binary.BigEndian.AppendUint32(dst, uint32(code))
}

// AppendH2WindowUpdate appends a WINDOW_UPDATE (§6.9) for stream (0: the
// connection). incr must be 1..2^31-1; its reserved bit is cleared.
func AppendH2WindowUpdate(dst []byte, stream, incr uint32) []byte {
	dst = AppendH2FrameHeader(dst, H2FrameHeader{Length: 4, Type: H2FrameWindowUpdate, StreamID: stream})
	return binary.BigEndian.AppendUint32(dst, incr&(1<<31-1))
}
