package protocol

import (
	"encoding/binary"
	"strconv"
)

// HTTP/2 frame layout and vocabulary (RFC 9113 §4, §6). The reader is in
// h2reader.go, the encoders in h2writer.go, the preface in h2preface.go.

const (
	// H2FrameHeaderLen is the fixed frame header (RFC 9113 §4.1).
	H2FrameHeaderLen = 9
	// H2DefaultMaxFrameSize is SETTINGS_MAX_FRAME_SIZE's initial value and
	// its floor (RFC 9113 §6.5.2): every peer may send frames this large.
	H2DefaultMaxFrameSize = 1 << 14
	// H2MaxFrameSizeLimit is the largest SETTINGS_MAX_FRAME_SIZE allowed
	// (2^24-1, the 24-bit Length field).
	H2MaxFrameSizeLimit = 1<<24 - 1
	// H2MaxWindowSize is the largest flow-control window (2^31-1, §6.9.1).
	H2MaxWindowSize = 1<<31 - 1
)

// H2FrameType is a frame's type octet (RFC 9113 §6, §11.2).
type H2FrameType uint8

// Frame types, RFC 9113 §6.
const (
	H2FrameData         H2FrameType = 0x0
	H2FrameHeaders      H2FrameType = 0x1
	H2FramePriority     H2FrameType = 0x2
	H2FrameRSTStream    H2FrameType = 0x3
	H2FrameSettings     H2FrameType = 0x4
	H2FramePushPromise  H2FrameType = 0x5
	H2FramePing         H2FrameType = 0x6
	H2FrameGoAway       H2FrameType = 0x7
	H2FrameWindowUpdate H2FrameType = 0x8
	H2FrameContinuation H2FrameType = 0x9
)

var h2FrameTypeNames = [...]string{
	H2FrameData:         "DATA",
	H2FrameHeaders:      "HEADERS",
	H2FramePriority:     "PRIORITY",
	H2FrameRSTStream:    "RST_STREAM",
	H2FrameSettings:     "SETTINGS",
	H2FramePushPromise:  "PUSH_PROMISE",
	H2FramePing:         "PING",
	H2FrameGoAway:       "GOAWAY",
	H2FrameWindowUpdate: "WINDOW_UPDATE",
	H2FrameContinuation: "CONTINUATION",
}

// String returns the type's name in RFC 9113 ("WINDOW_UPDATE"), or
// "UNKNOWN_FRAME_TYPE_n".
func (t H2FrameType) String() string {
	if int(t) < len(h2FrameTypeNames) {
		return h2FrameTypeNames[t]
	}
	return "UNKNOWN_FRAME_TYPE_" + strconv.Itoa(int(t))
}

// Frame flags (RFC 9113 §6). A bit's meaning depends on the frame type,
// so the same value has several names. Flags a type does not define MUST
// be ignored on receipt and left unset when sending (§4.1).
const (
	H2FlagEndStream  uint8 = 0x01 // DATA, HEADERS
	H2FlagAck        uint8 = 0x01 // SETTINGS, PING
	H2FlagEndHeaders uint8 = 0x04 // HEADERS, PUSH_PROMISE, CONTINUATION
	H2FlagPadded     uint8 = 0x08 // DATA, HEADERS, PUSH_PROMISE
	H2FlagPriority   uint8 = 0x20 // HEADERS
)

// H2FrameHeader is the 9-octet header every frame starts with (RFC 9113
// §4.1).
type H2FrameHeader struct {
	Length   uint32 // payload octets (24 bits), the header excluded
	Type     H2FrameType
	Flags    uint8
	StreamID uint32 // 31 bits; the reserved bit is dropped on receipt
}

// Has reports whether every bit of flag is set.
func (h H2FrameHeader) Has(flag uint8) bool { return h.Flags&flag == flag }

// ParseH2FrameHeader reads a frame header from the start of b. ok is false
// while b holds fewer than 9 bytes. It checks nothing: the reader applies
// the limits (h2reader.go).
func ParseH2FrameHeader(b []byte) (h H2FrameHeader, ok bool) {
	if len(b) < H2FrameHeaderLen {
		return h, false
	}
	_ = b[8]
	h.Length = uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
	h.Type = H2FrameType(b[3])
	h.Flags = b[4]
	// §4.1: the reserved bit "MUST remain unset (0x0) when sending and
	// MUST be ignored when receiving".
	h.StreamID = binary.BigEndian.Uint32(b[5:9]) & (1<<31 - 1)
	return h, true
}

// H2Priority is the deprecated RFC 7540 priority signal carried by
// PRIORITY frames and HEADERS with the PRIORITY flag (RFC 9113 §5.3.2,
// §6.2, §6.3). It is parsed for framing only; BlastBeat does not act on it.
type H2Priority struct {
	StreamDep uint32 // 31 bits
	Exclusive bool
	Weight    uint8 // weight minus one (0..255 means 1..256)
}

// H2SettingID identifies a SETTINGS parameter (RFC 9113 §6.5.2).
type H2SettingID uint16

// Settings parameters, RFC 9113 §6.5.2 plus RFC 8441 §3 and RFC 9218 §2.1.
const (
	H2SettingHeaderTableSize       H2SettingID = 0x1
	H2SettingEnablePush            H2SettingID = 0x2
	H2SettingMaxConcurrentStreams  H2SettingID = 0x3
	H2SettingInitialWindowSize     H2SettingID = 0x4
	H2SettingMaxFrameSize          H2SettingID = 0x5
	H2SettingMaxHeaderListSize     H2SettingID = 0x6
	H2SettingEnableConnectProtocol H2SettingID = 0x8
	H2SettingNoRFC7540Priorities   H2SettingID = 0x9
)

var h2SettingNames = [...]string{
	H2SettingHeaderTableSize:       "HEADER_TABLE_SIZE",
	H2SettingEnablePush:            "ENABLE_PUSH",
	H2SettingMaxConcurrentStreams:  "MAX_CONCURRENT_STREAMS",
	H2SettingInitialWindowSize:     "INITIAL_WINDOW_SIZE",
	H2SettingMaxFrameSize:          "MAX_FRAME_SIZE",
	H2SettingMaxHeaderListSize:     "MAX_HEADER_LIST_SIZE",
	H2SettingEnableConnectProtocol: "ENABLE_CONNECT_PROTOCOL",
	H2SettingNoRFC7540Priorities:   "NO_RFC7540_PRIORITIES",
}

// String returns the parameter's name without its SETTINGS_ prefix
// ("MAX_FRAME_SIZE"), or "UNKNOWN_SETTING_n".
func (id H2SettingID) String() string {
	if int(id) < len(h2SettingNames) && h2SettingNames[id] != "" {
		return h2SettingNames[id]
	}
	return "UNKNOWN_SETTING_" + strconv.Itoa(int(id))
}

// H2Setting is one SETTINGS parameter.
type H2Setting struct {
	ID  H2SettingID
	Val uint32
}

// Valid checks a received parameter's value (RFC 9113 §6.5.2, RFC 8441
// §3, RFC 9218 §2.1). Unknown parameters are valid: they MUST be ignored.
func (s H2Setting) Valid() error {
	switch s.ID {
	case H2SettingEnablePush:
		// §6.5.2: "Any value other than 0 or 1 MUST be treated as a
		// connection error of type PROTOCOL_ERROR."
		if s.Val > 1 {
			return ErrH2SettingsEnablePush
		}
	case H2SettingInitialWindowSize:
		// §6.5.2: "Values above the maximum flow-control window size of
		// 2^31-1 MUST be treated as a connection error of type
		// FLOW_CONTROL_ERROR."
		if s.Val > H2MaxWindowSize {
			return ErrH2SettingsWindowSize
		}
	case H2SettingMaxFrameSize:
		// §6.5.2: "Values outside this range [2^14, 2^24-1] MUST be
		// treated as a connection error of type PROTOCOL_ERROR."
		if s.Val < H2DefaultMaxFrameSize || s.Val > H2MaxFrameSizeLimit {
			return ErrH2SettingsMaxFrameSize
		}
	case H2SettingEnableConnectProtocol:
		// RFC 8441 §3: the value MUST be 0 or 1.
		if s.Val > 1 {
			return ErrH2SettingsConnectProto
		}
	case H2SettingNoRFC7540Priorities:
		// RFC 9218 §2.1: "Any value other than 0 or 1 MUST be treated as
		// a connection error of type PROTOCOL_ERROR."
		if s.Val > 1 {
			return ErrH2SettingsNoPriorities
		}
	}
	return nil
}

// H2Frame is one parsed frame. Which fields are set depends on Type; the
// others are zero.
//
// Lifetime: Payload and Data are sub-slices of the buffer passed to the
// H2Reader.Feed call that returned the frame. They are valid only until
// the caller discards or overwrites those bytes (gnet: until Discard), and
// the H2Frame itself is reused by the next Feed. Copy what must outlive
// either.
type H2Frame struct {
	H2FrameHeader

	// Payload is the whole payload, padding and fixed fields included
	// (Length bytes). SETTINGS parameters are read from it with
	// NumSettings and Setting.
	Payload []byte

	// Data is, for DATA, the data without padding; for HEADERS and
	// CONTINUATION, the field block fragment without padding and
	// priority; for GOAWAY, the debug data. Flow control counts the whole
	// Length of a DATA frame, padding included (§6.9.1), not len(Data).
	Data []byte

	Priority     H2Priority // HEADERS with H2FlagPriority, PRIORITY
	Code         H2ErrCode  // RST_STREAM, GOAWAY
	LastStreamID uint32     // GOAWAY
	Increment    uint32     // WINDOW_UPDATE: 1..2^31-1
	PingData     [8]byte    // PING
}

// EndStream reports END_STREAM on a DATA or HEADERS frame.
func (f *H2Frame) EndStream() bool {
	return (f.Type == H2FrameData || f.Type == H2FrameHeaders) && f.Has(H2FlagEndStream)
}

// EndHeaders reports END_HEADERS on a HEADERS or CONTINUATION frame.
func (f *H2Frame) EndHeaders() bool {
	return (f.Type == H2FrameHeaders || f.Type == H2FrameContinuation) && f.Has(H2FlagEndHeaders)
}

// Ack reports the ACK flag on a SETTINGS or PING frame.
func (f *H2Frame) Ack() bool {
	return (f.Type == H2FrameSettings || f.Type == H2FramePing) && f.Has(H2FlagAck)
}

// HasPriority reports a priority signal: a PRIORITY frame, or HEADERS with
// the PRIORITY flag.
func (f *H2Frame) HasPriority() bool {
	return f.Type == H2FramePriority || (f.Type == H2FrameHeaders && f.Has(H2FlagPriority))
}

// NumSettings is the number of parameters in a SETTINGS frame (0 for any
// other type).
func (f *H2Frame) NumSettings() int {
	if f.Type != H2FrameSettings {
		return 0
	}
	return len(f.Payload) / 6
}

// Setting returns a SETTINGS frame's i-th parameter, 0 <= i <
// NumSettings(), in the order sent (§6.5.3: processed in order, the last
// value of a repeated parameter wins).
func (f *H2Frame) Setting(i int) H2Setting {
	p := f.Payload[i*6 : i*6+6]
	return H2Setting{ID: H2SettingID(binary.BigEndian.Uint16(p)), Val: binary.BigEndian.Uint32(p[2:])}
}
