package protocol

import "encoding/binary"

// H2Limits bound what an H2Reader accepts. Zero fields take the defaults.
type H2Limits struct {
	// MaxFrameSize is the SETTINGS_MAX_FRAME_SIZE this endpoint advertises:
	// the largest payload accepted (RFC 9113 §4.2). It is clamped to the
	// legal 16384..16777215 (§6.5.2); default H2DefaultMaxFrameSize.
	MaxFrameSize uint32
	// MaxHeaderBlockBytes bounds one field block on the wire: its HEADERS
	// frame and every CONTINUATION, 9-byte headers included. Default
	// DefaultH2MaxHeaderBlockBytes.
	MaxHeaderBlockBytes int
}

// DefaultH2MaxHeaderBlockBytes is four default-size frames: an
// HPACK-compressed block is smaller than the field list it decodes to, and
// 64 KiB is four times the HTTP/1.1 head limit (DefaultMaxHeadBytes).
// Counting each frame's 9 header bytes also bounds a CONTINUATION flood of
// empty frames, which would otherwise cost CPU without buffering anything.
const DefaultH2MaxHeaderBlockBytes = 64 << 10

// H2Reader is a resumable HTTP/2 frame reader (RFC 9113 §4) for the
// server side of a connection: it reads what a client sends.
//
// Feed consumes whole frames only. It peeks at the 9-byte header, checks
// the length against MaxFrameSize before anything else is buffered, waits
// (consuming nothing) until the whole frame is in the buffer, then parses
// the payload through a type → parser table. It never blocks, never reads
// the network and never copies a payload; the caller keeps the bytes Feed
// did not consume and passes them again, with more appended, next time.
// The buffer the caller must be able to hold is 9 + MaxFrameSize bytes.
//
// Frame-local rules are enforced here (stream-id constraints, fixed
// lengths, padding, SETTINGS values, field-block contiguity); stream
// states, flow-control windows, the first-frame-is-SETTINGS rule and HPACK
// belong to the connection that owns the reader.
//
// An H2Reader is owned by one goroutine (the connection's event loop). The
// zero value reads with the default limits.
type H2Reader struct {
	// Limits: set by Init, MaxFrameSize also by SetMaxFrameSize.
	maxFrameSize uint32
	maxBlock     int

	// Field-block sequencing (§4.3, §6.2, §6.10), updated only when a
	// frame has been parsed whole.
	blockStream uint32 // stream of the open field block; 0 when none
	blockBytes  int    // wire bytes of the open field block so far

	frame H2Frame // returned by Feed, reused by the next Feed
}

// NewH2Reader returns a reader enforcing lim.
func NewH2Reader(lim H2Limits) *H2Reader {
	r := &H2Reader{}
	r.Init(lim)
	return r
}

// Init (re)initialises r with lim for a new connection.
func (r *H2Reader) Init(lim H2Limits) {
	if lim.MaxHeaderBlockBytes <= 0 {
		lim.MaxHeaderBlockBytes = DefaultH2MaxHeaderBlockBytes
	}
	*r = H2Reader{maxBlock: lim.MaxHeaderBlockBytes}
	r.SetMaxFrameSize(lim.MaxFrameSize)
}

// SetMaxFrameSize changes the largest payload accepted, clamped to
// 16384..16777215 (0 means the default, 16384). Call it between frames,
// once the peer has acknowledged the SETTINGS frame that advertised the
// new value (§6.5.3): until then the peer may still use the old one.
func (r *H2Reader) SetMaxFrameSize(n uint32) {
	r.maxFrameSize = min(max(n, H2DefaultMaxFrameSize), H2MaxFrameSizeLimit)
}

// MaxFrameSize is the largest payload r currently accepts.
func (r *H2Reader) MaxFrameSize() uint32 {
	if r.maxFrameSize == 0 {
		return H2DefaultMaxFrameSize
	}
	return r.maxFrameSize
}

func (r *H2Reader) maxHeaderBlock() int {
	if r.maxBlock == 0 {
		return DefaultH2MaxHeaderBlockBytes
	}
	return r.maxBlock
}

// FieldBlockStream is the stream whose field block is open (a HEADERS
// frame without END_HEADERS was read, its last CONTINUATION not yet), or 0.
func (r *H2Reader) FieldBlockStream() uint32 { return r.blockStream }

// Feed reads the next frame from the start of buf, which must hold every
// byte not yet consumed. The outcomes:
//
//   - n == 0, f == nil, err == nil: buf holds less than one frame; keep it
//     and call again with more bytes.
//   - n > 0, f != nil: a frame of n bytes (header included). f and its
//     slices point into buf: see H2Frame for their lifetime.
//   - n > 0, f == nil, err == nil: a frame of a type this reader does not
//     know was discarded (§5.5); call again with buf[n:].
//   - n > 0, err is a *H2StreamError: the frame is consumed and its stream
//     is broken; send RST_STREAM and call again with buf[n:].
//   - n == 0, err is a *H2ConnError: send GOAWAY with its Code and close
//     the connection; the reader must not be fed again until Init.
func (r *H2Reader) Feed(buf []byte) (n int, f *H2Frame, err error) {
	h, ok := ParseH2FrameHeader(buf)
	if !ok {
		return 0, nil, nil
	}
	// §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a
	// frame exceeds the size defined in SETTINGS_MAX_FRAME_SIZE". Checked
	// on the header, before a byte of the payload is waited for, so the
	// buffer never grows past 9 + MaxFrameSize. It is a connection error:
	// the frame could alter connection state and its payload is unread.
	if h.Length > r.MaxFrameSize() {
		return 0, nil, ErrH2FrameTooLarge
	}
	if err := r.checkSequence(h); err != nil {
		return 0, nil, err
	}
	total := H2FrameHeaderLen + int(h.Length)
	if len(buf) < total {
		return 0, nil, nil
	}

	f = &r.frame
	// The payload's capacity ends with the frame, so an append to it can
	// never overwrite the next frame in buf.
	*f = H2Frame{H2FrameHeader: h, Payload: buf[H2FrameHeaderLen:total:total]}
	var parse h2ParseFunc
	if int(h.Type) < len(h2Parsers) {
		parse = h2Parsers[h.Type]
	}
	if parse == nil {
		// §5.5: "Implementations MUST ignore and discard frames of
		// unknown types." (checkSequence already refused one inside a
		// field block, as §6.2 requires.)
		*f = H2Frame{}
		return total, nil, nil
	}
	if err := parse(f); err != nil {
		*f = H2Frame{}
		if se, ok := err.(*H2StreamError); ok {
			return total, nil, se.withStream(h.StreamID)
		}
		return 0, nil, err
	}
	switch h.Type {
	case H2FrameHeaders:
		r.blockStream, r.blockBytes = h.StreamID, total
	case H2FrameContinuation:
		r.blockBytes += total
	}
	if f.EndHeaders() {
		r.blockStream, r.blockBytes = 0, 0
	}
	return total, f, nil
}

// checkSequence enforces field-block contiguity and size on a frame's
// header, before its payload is waited for. It changes nothing: Feed may
// see the same header again.
func (r *H2Reader) checkSequence(h H2FrameHeader) error {
	if h.Type == H2FrameContinuation && h.StreamID == 0 {
		// §6.10: "If a CONTINUATION frame is received with a Stream
		// Identifier field of 0x00, the recipient MUST respond with a
		// connection error (Section 5.4.1) of type PROTOCOL_ERROR."
		return ErrH2ContinuationStreamZero
	}
	if r.blockStream != 0 {
		// §6.2: "A HEADERS frame without the END_HEADERS flag set MUST be
		// followed by a CONTINUATION frame for the same stream. A
		// receiver MUST treat the receipt of any other type of frame or a
		// frame on a different stream as a connection error (Section
		// 5.4.1) of type PROTOCOL_ERROR." (Also §4.3.)
		if h.Type != H2FrameContinuation || h.StreamID != r.blockStream {
			return ErrH2ExpectedContinuation
		}
		// §10.5.1 leaves the size of a field block to the receiver; a
		// block too large to process is refused before it is buffered.
		if r.blockBytes+H2FrameHeaderLen+int(h.Length) > r.maxHeaderBlock() {
			return ErrH2HeaderBlockTooLarge
		}
		return nil
	}
	switch h.Type {
	case H2FrameContinuation:
		// §6.10: "A CONTINUATION frame MUST be preceded by a HEADERS,
		// PUSH_PROMISE or CONTINUATION frame without the END_HEADERS flag
		// set. A recipient that observes violation of this rule MUST
		// respond with a connection error (Section 5.4.1) of type
		// PROTOCOL_ERROR."
		return ErrH2UnexpectedContinuation
	case H2FrameHeaders:
		if H2FrameHeaderLen+int(h.Length) > r.maxHeaderBlock() {
			return ErrH2HeaderBlockTooLarge
		}
	}
	return nil
}

// h2ParseFunc checks and decodes f.Payload into f's type-specific fields.
// It returns a *H2ConnError, or a *H2StreamError sentinel (Feed sets the
// stream).
type h2ParseFunc func(f *H2Frame) error

// h2Parsers is the type → parser table; a type without an entry is
// unknown and discarded (§5.5). Never modified.
var h2Parsers = [...]h2ParseFunc{
	H2FrameData:         parseH2Data,
	H2FrameHeaders:      parseH2Headers,
	H2FramePriority:     parseH2Priority,
	H2FrameRSTStream:    parseH2RSTStream,
	H2FrameSettings:     parseH2Settings,
	H2FramePushPromise:  parseH2PushPromise,
	H2FramePing:         parseH2Ping,
	H2FrameGoAway:       parseH2GoAway,
	H2FrameWindowUpdate: parseH2WindowUpdate,
	H2FrameContinuation: parseH2Continuation,
}

// h2PadLength strips the Pad Length octet of a PADDED frame (§6.1, §6.2)
// and returns the rest of the payload and the padding length; the caller
// checks the padding against what remains after its fixed fields.
func h2PadLength(f *H2Frame) (rest []byte, pad int, err error) {
	p := f.Payload
	if !f.Has(H2FlagPadded) {
		return p, 0, nil
	}
	if len(p) < 1 {
		// §4.2: a frame "too small to contain mandatory frame data" is a
		// FRAME_SIZE_ERROR; a connection error for a frame that carries
		// a field block, and for DATA too (its Length counts against the
		// connection's flow-control window all the same).
		return nil, 0, ErrH2FrameTooShort
	}
	return p[1:], int(p[0]), nil
}

// parseH2Data parses DATA (§6.1).
func parseH2Data(f *H2Frame) error {
	// §6.1: "If a DATA frame is received whose Stream Identifier field is
	// 0x00, the recipient MUST respond with a connection error (Section
	// 5.4.1) of type PROTOCOL_ERROR."
	if f.StreamID == 0 {
		return ErrH2DataStreamZero
	}
	p, pad, err := h2PadLength(f)
	if err != nil {
		return err
	}
	// §6.1: "If the length of the padding is the length of the frame
	// payload or greater, the recipient MUST treat this as a connection
	// error (Section 5.4.1) of type PROTOCOL_ERROR." (pad > len(p) is
	// pad >= Length, the Pad Length octet being part of the payload.)
	if pad > len(p) {
		return ErrH2Padding
	}
	f.Data = p[:len(p)-pad]
	return nil
}

// parseH2Headers parses HEADERS (§6.2).
func parseH2Headers(f *H2Frame) error {
	// §6.2: "If a HEADERS frame is received whose Stream Identifier field
	// is 0x00, the recipient MUST respond with a connection error (Section
	// 5.4.1) of type PROTOCOL_ERROR."
	if f.StreamID == 0 {
		return ErrH2HeadersStreamZero
	}
	p, pad, err := h2PadLength(f)
	if err != nil {
		return err
	}
	if f.Has(H2FlagPriority) {
		if len(p) < 5 {
			return ErrH2FrameTooShort // §4.2, as in h2PadLength
		}
		f.Priority = parseH2PriorityFields(p)
		p = p[5:]
	}
	// §6.2: "Padding that exceeds the size remaining for the field block
	// fragment MUST be treated as a PROTOCOL_ERROR." A connection error:
	// without the fragment's end the HPACK state (§4.3) cannot be kept.
	if pad > len(p) {
		return ErrH2Padding
	}
	f.Data = p[:len(p)-pad]
	return nil
}

func parseH2PriorityFields(p []byte) H2Priority {
	v := binary.BigEndian.Uint32(p)
	return H2Priority{StreamDep: v & (1<<31 - 1), Exclusive: v>>31 == 1, Weight: p[4]}
}

// parseH2Priority parses PRIORITY (§6.3).
func parseH2Priority(f *H2Frame) error {
	// §6.3: "If a PRIORITY frame is received with a stream identifier of
	// 0x00, the recipient MUST respond with a connection error (Section
	// 5.4.1) of type PROTOCOL_ERROR."
	if f.StreamID == 0 {
		return ErrH2PriorityStreamZero
	}
	// §6.3: "A PRIORITY frame with a length other than 5 octets MUST be
	// treated as a stream error (Section 5.4.2) of type
	// FRAME_SIZE_ERROR."
	if len(f.Payload) != 5 {
		return ErrH2PriorityLength
	}
	f.Priority = parseH2PriorityFields(f.Payload)
	return nil
}

// parseH2RSTStream parses RST_STREAM (§6.4).
func parseH2RSTStream(f *H2Frame) error {
	// §6.4: "A RST_STREAM frame with a length other than 4 octets MUST be
	// treated as a connection error (Section 5.4.1) of type
	// FRAME_SIZE_ERROR."
	if len(f.Payload) != 4 {
		return ErrH2RSTStreamLength
	}
	// §6.4: "If a RST_STREAM frame is received with a stream identifier of
	// 0x00, the recipient MUST treat this as a connection error (Section
	// 5.4.1) of type PROTOCOL_ERROR."
	if f.StreamID == 0 {
		return ErrH2RSTStreamStreamZero
	}
	f.Code = H2ErrCode(binary.BigEndian.Uint32(f.Payload))
	return nil
}

// parseH2Settings parses SETTINGS (§6.5) and validates every parameter.
func parseH2Settings(f *H2Frame) error {
	// §6.5: "Receipt of a SETTINGS frame with the ACK flag set and a
	// length field value other than 0 MUST be treated as a connection
	// error (Section 5.4.1) of type FRAME_SIZE_ERROR."
	if f.Has(H2FlagAck) && len(f.Payload) != 0 {
		return ErrH2SettingsAckLength
	}
	// §6.5: "If an endpoint receives a SETTINGS frame whose Stream
	// Identifier field is anything other than 0x00, the endpoint MUST
	// respond with a connection error (Section 5.4.1) of type
	// PROTOCOL_ERROR."
	if f.StreamID != 0 {
		return ErrH2SettingsStream
	}
	// §6.5: "A SETTINGS frame with a length other than a multiple of 6
	// octets MUST be treated as a connection error (Section 5.4.1) of type
	// FRAME_SIZE_ERROR."
	if len(f.Payload)%6 != 0 {
		return ErrH2SettingsLength
	}
	// §6.5.2 (per parameter, in H2Setting.Valid); §6.5.3: processed in
	// order, so the first invalid one is reported.
	for i := range f.NumSettings() {
		if err := f.Setting(i).Valid(); err != nil {
			return err
		}
	}
	return nil
}

// parseH2PushPromise refuses PUSH_PROMISE (§6.6): this reader reads a
// client, and §8.4: "A client cannot push. Thus, servers MUST treat the
// receipt of a PUSH_PROMISE frame as a connection error (Section 5.4.1) of
// type PROTOCOL_ERROR."
func parseH2PushPromise(*H2Frame) error { return ErrH2PushPromise }

// parseH2Ping parses PING (§6.7).
func parseH2Ping(f *H2Frame) error {
	// §6.7: "Receipt of a PING frame with a length field value other than
	// 8 MUST be treated as a connection error (Section 5.4.1) of type
	// FRAME_SIZE_ERROR."
	if len(f.Payload) != 8 {
		return ErrH2PingLength
	}
	// §6.7: "If a PING frame is received with a Stream Identifier field
	// value other than 0x00, the recipient MUST respond with a connection
	// error (Section 5.4.1) of type PROTOCOL_ERROR."
	if f.StreamID != 0 {
		return ErrH2PingStream
	}
	copy(f.PingData[:], f.Payload)
	return nil
}

// parseH2GoAway parses GOAWAY (§6.8).
func parseH2GoAway(f *H2Frame) error {
	// §6.8: "An endpoint MUST treat a GOAWAY frame with a stream
	// identifier other than 0x00 as a connection error (Section 5.4.1) of
	// type PROTOCOL_ERROR."
	if f.StreamID != 0 {
		return ErrH2GoAwayStream
	}
	// §4.2: too small for Last-Stream-ID and Error Code.
	if len(f.Payload) < 8 {
		return ErrH2GoAwayLength
	}
	f.LastStreamID = binary.BigEndian.Uint32(f.Payload) & (1<<31 - 1) // §6.8: R ignored
	f.Code = H2ErrCode(binary.BigEndian.Uint32(f.Payload[4:]))
	f.Data = f.Payload[8:]
	return nil
}

// parseH2WindowUpdate parses WINDOW_UPDATE (§6.9).
func parseH2WindowUpdate(f *H2Frame) error {
	// §6.9: "A WINDOW_UPDATE frame with a length other than 4 octets MUST
	// be treated as a connection error (Section 5.4.1) of type
	// FRAME_SIZE_ERROR."
	if len(f.Payload) != 4 {
		return ErrH2WindowUpdateLength
	}
	inc := binary.BigEndian.Uint32(f.Payload) & (1<<31 - 1) // §6.9: R ignored
	// §6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame
	// with a flow-control window increment of 0 as a stream error
	// (Section 5.4.2) of type PROTOCOL_ERROR; errors on the connection
	// flow-control window MUST be treated as a connection error (Section
	// 5.4.1)."
	if inc == 0 {
		if f.StreamID == 0 {
			return ErrH2WindowUpdateZeroConn
		}
		return ErrH2WindowUpdateZero
	}
	f.Increment = inc
	return nil
}

// parseH2Continuation parses CONTINUATION (§6.10). Its stream-id and
// sequencing rules are checked on the header (checkSequence).
func parseH2Continuation(f *H2Frame) error {
	f.Data = f.Payload
	return nil
}
