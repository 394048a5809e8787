package protocol

import "strconv"

// H2ErrCode is an HTTP/2 error code (RFC 9113 §7), carried by RST_STREAM
// and GOAWAY frames.
type H2ErrCode uint32

// Error codes, RFC 9113 §7.
const (
	H2NoError            H2ErrCode = 0x0
	H2ProtocolError      H2ErrCode = 0x1
	H2InternalError      H2ErrCode = 0x2
	H2FlowControlError   H2ErrCode = 0x3
	H2SettingsTimeout    H2ErrCode = 0x4
	H2StreamClosed       H2ErrCode = 0x5
	H2FrameSizeError     H2ErrCode = 0x6
	H2RefusedStream      H2ErrCode = 0x7
	H2Cancel             H2ErrCode = 0x8
	H2CompressionError   H2ErrCode = 0x9
	H2ConnectError       H2ErrCode = 0xa
	H2EnhanceYourCalm    H2ErrCode = 0xb
	H2InadequateSecurity H2ErrCode = 0xc
	H2HTTP11Required     H2ErrCode = 0xd
)

var h2ErrCodeNames = [...]string{
	H2NoError:            "NO_ERROR",
	H2ProtocolError:      "PROTOCOL_ERROR",
	H2InternalError:      "INTERNAL_ERROR",
	H2FlowControlError:   "FLOW_CONTROL_ERROR",
	H2SettingsTimeout:    "SETTINGS_TIMEOUT",
	H2StreamClosed:       "STREAM_CLOSED",
	H2FrameSizeError:     "FRAME_SIZE_ERROR",
	H2RefusedStream:      "REFUSED_STREAM",
	H2Cancel:             "CANCEL",
	H2CompressionError:   "COMPRESSION_ERROR",
	H2ConnectError:       "CONNECT_ERROR",
	H2EnhanceYourCalm:    "ENHANCE_YOUR_CALM",
	H2InadequateSecurity: "INADEQUATE_SECURITY",
	H2HTTP11Required:     "HTTP_1_1_REQUIRED",
}

// String returns the code's name in RFC 9113 §7 ("PROTOCOL_ERROR"), or
// "unknown error code 0x…" for a code outside the registry (§7: unknown
// codes MUST NOT trigger special behaviour and may be treated as
// INTERNAL_ERROR).
func (c H2ErrCode) String() string {
	if int(c) < len(h2ErrCodeNames) {
		return h2ErrCodeNames[c]
	}
	return "unknown error code 0x" + strconv.FormatUint(uint64(c), 16)
}

// H2ConnError is a connection error (RFC 9113 §5.4.1): the whole
// connection is unusable. The server sends GOAWAY with Code (and Reason as
// debug data, if it likes), then closes the connection.
//
// The reader returns the sentinels below; compare them by identity or with
// errors.Is.
type H2ConnError struct {
	Code   H2ErrCode
	Reason string // short, fixed text; fit for GOAWAY debug data
	Metric string // stable counter name for this rejection
}

func (e *H2ConnError) Error() string {
	return "protocol: http2: connection error " + e.Code.String() + ": " + e.Reason
}

// H2StreamError is a stream error (RFC 9113 §5.4.2): only StreamID is
// broken. The server sends RST_STREAM with Code on it and keeps reading
// the connection.
//
// The sentinels below have StreamID 0 (never a valid stream for a stream
// error); the reader returns a copy with StreamID set. errors.Is matches a
// returned error against its sentinel.
type H2StreamError struct {
	StreamID uint32
	Code     H2ErrCode
	Reason   string // short, fixed text
	Metric   string // stable counter name for this rejection
}

func (e *H2StreamError) Error() string {
	return "protocol: http2: stream " + strconv.FormatUint(uint64(e.StreamID), 10) +
		" error " + e.Code.String() + ": " + e.Reason
}

// Is reports whether target is the sentinel e was made from: a
// *H2StreamError with StreamID 0 and the same Metric.
func (e *H2StreamError) Is(target error) bool {
	t, ok := target.(*H2StreamError)
	return ok && t.StreamID == 0 && t.Metric == e.Metric && t.Code == e.Code
}

// withStream returns a copy of the sentinel e for stream id.
func (e *H2StreamError) withStream(id uint32) *H2StreamError {
	c := *e
	c.StreamID = id
	return &c
}

// HTTP/2 connection errors (RFC 9113 §5.4.1). Each names the check it
// comes from; the RFC section is at the check in h2reader.go.
var (
	ErrH2BadPreface             = &H2ConnError{H2ProtocolError, "invalid connection preface", "h2_bad_preface"}
	ErrH2FrameTooLarge          = &H2ConnError{H2FrameSizeError, "frame larger than SETTINGS_MAX_FRAME_SIZE", "h2_frame_too_large"}
	ErrH2FrameTooShort          = &H2ConnError{H2FrameSizeError, "frame too short for its fixed fields", "h2_frame_too_short"}
	ErrH2Padding                = &H2ConnError{H2ProtocolError, "padding longer than the payload", "h2_bad_padding"}
	ErrH2DataStreamZero         = &H2ConnError{H2ProtocolError, "DATA frame on stream 0", "h2_data_stream_zero"}
	ErrH2HeadersStreamZero      = &H2ConnError{H2ProtocolError, "HEADERS frame on stream 0", "h2_headers_stream_zero"}
	ErrH2PriorityStreamZero     = &H2ConnError{H2ProtocolError, "PRIORITY frame on stream 0", "h2_priority_stream_zero"}
	ErrH2RSTStreamStreamZero    = &H2ConnError{H2ProtocolError, "RST_STREAM frame on stream 0", "h2_rst_stream_stream_zero"}
	ErrH2RSTStreamLength        = &H2ConnError{H2FrameSizeError, "RST_STREAM frame length is not 4", "h2_rst_stream_length"}
	ErrH2SettingsStream         = &H2ConnError{H2ProtocolError, "SETTINGS frame on a stream", "h2_settings_stream"}
	ErrH2SettingsAckLength      = &H2ConnError{H2FrameSizeError, "SETTINGS ack with a payload", "h2_settings_ack_length"}
	ErrH2SettingsLength         = &H2ConnError{H2FrameSizeError, "SETTINGS length is not a multiple of 6", "h2_settings_length"}
	ErrH2SettingsEnablePush     = &H2ConnError{H2ProtocolError, "SETTINGS_ENABLE_PUSH is not 0 or 1", "h2_settings_enable_push"}
	ErrH2SettingsWindowSize     = &H2ConnError{H2FlowControlError, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1", "h2_settings_window_size"}
	ErrH2SettingsMaxFrameSize   = &H2ConnError{H2ProtocolError, "SETTINGS_MAX_FRAME_SIZE outside 16384..16777215", "h2_settings_max_frame_size"}
	ErrH2SettingsConnectProto   = &H2ConnError{H2ProtocolError, "SETTINGS_ENABLE_CONNECT_PROTOCOL is not 0 or 1", "h2_settings_connect_protocol"}
	ErrH2SettingsNoPriorities   = &H2ConnError{H2ProtocolError, "SETTINGS_NO_RFC7540_PRIORITIES is not 0 or 1", "h2_settings_no_priorities"}
	ErrH2PushPromise            = &H2ConnError{H2ProtocolError, "PUSH_PROMISE from a client", "h2_push_promise"}
	ErrH2PingStream             = &H2ConnError{H2ProtocolError, "PING frame on a stream", "h2_ping_stream"}
	ErrH2PingLength             = &H2ConnError{H2FrameSizeError, "PING frame length is not 8", "h2_ping_length"}
	ErrH2GoAwayStream           = &H2ConnError{H2ProtocolError, "GOAWAY frame on a stream", "h2_goaway_stream"}
	ErrH2GoAwayLength           = &H2ConnError{H2FrameSizeError, "GOAWAY frame shorter than 8", "h2_goaway_length"}
	ErrH2WindowUpdateLength     = &H2ConnError{H2FrameSizeError, "WINDOW_UPDATE frame length is not 4", "h2_window_update_length"}
	ErrH2WindowUpdateZeroConn   = &H2ConnError{H2ProtocolError, "WINDOW_UPDATE of 0 on the connection", "h2_window_update_zero_conn"}
	ErrH2ContinuationStreamZero = &H2ConnError{H2ProtocolError, "CONTINUATION frame on stream 0", "h2_continuation_stream_zero"}
	ErrH2ExpectedContinuation   = &H2ConnError{H2ProtocolError, "frame other than CONTINUATION inside a field block", "h2_expected_continuation"}
	ErrH2UnexpectedContinuation = &H2ConnError{H2ProtocolError, "CONTINUATION outside a field block", "h2_unexpected_continuation"}
	ErrH2HeaderBlockTooLarge    = &H2ConnError{H2EnhanceYourCalm, "field block larger than the limit", "h2_header_block_too_large"}
)

// HTTP/2 stream errors (RFC 9113 §5.4.2), returned with StreamID set.
var (
	ErrH2PriorityLength   = &H2StreamError{0, H2FrameSizeError, "PRIORITY frame length is not 5", "h2_priority_length"}
	ErrH2WindowUpdateZero = &H2StreamError{0, H2ProtocolError, "WINDOW_UPDATE of 0 on a stream", "h2_window_update_zero"}
)
