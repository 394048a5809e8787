package protocol_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"golang.org/x/net/http2"

	"github.com/blastbeat/blastbeat/protocol"
)

// h2FuzzLim has the default frame size and a field-block limit too large
// to matter: x/net's Framer has none (its server bounds the decoded list).
var h2FuzzLim = protocol.H2Limits{MaxHeaderBlockBytes: 1 << 30}

// FuzzH2Frames reads arbitrary bytes as a client's frames, whole and cut at
// a fuzzed point (which must agree exactly: same frames, same errors, at
// the same boundaries), and compares the result frame by frame with
// x/net/http2's Framer reading the same bytes (ReadFrameHeader, then
// ReadFrameForHeader, which is ReadFrame in two steps so that the header of
// a refused frame is known). Both must consume the same frames, accept the
// same ones with the same contents, discard the same unknown types, and
// refuse the same ones with the same error code and the same scope
// (connection or stream).
//
// Deliberate differences, each normalised on x/net's side by xnetRead:
//
//   - PUSH_PROMISE: x/net's Framer parses it (for its client); this reader
//     is a server's and refuses it as a connection PROTOCOL_ERROR (§8.4).
//   - Type 0x10 (PRIORITY_UPDATE, RFC 9218): x/net parses and validates
//     it; this reader does not implement RFC 9218 and discards it as an
//     unknown type (§5.5), valid or not.
//   - HEADERS whose padding exceeds the fragment: x/net returns a stream
//     error; here it is a connection error, since a field block that
//     cannot be delimited cannot be fed to HPACK and the connection's
//     decoding state is lost (§4.3).
//   - PRIORITY with a length other than 5: x/net returns a connection
//     error; §6.3 says it "MUST be treated as a stream error", which is
//     what this reader returns (it then reads on, and so does x/net).
//   - A PADDED or PRIORITY frame too short for those fields: x/net returns
//     io.ErrUnexpectedEOF (fatal to its connection); here it is a
//     connection FRAME_SIZE_ERROR (§4.2).
//   - SETTINGS values: x/net's Framer checks only INITIAL_WINDOW_SIZE; its
//     server checks the rest with Setting.Valid (and NO_RFC7540_PRIORITIES
//     separately) when it applies them. This reader checks them all while
//     parsing, in order, and reports the first invalid one; x/net's parse
//     reports an INITIAL_WINDOW_SIZE wherever it is. The expected code is
//     that of the first parameter that Valid (or RFC 9218 §2.1) refuses,
//     and x/net's parse refusing the frame implies there is one.
//
// x/net's server-side checks beyond the Framer (self-dependent priority,
// duplicate or too many SETTINGS, stream states, flow control) belong to
// the connection above this reader and are not compared.
func FuzzH2Frames(f *testing.F) {
	f.Add(h2Mixed(), uint16(100))
	f.Add([]byte(protocol.H2Preface), uint16(3))
	f.Add(hx("000006 04 00 00000000 0002 00000002 000004 08 00 00000000 00000000"), uint16(9))
	f.Add(hx("000001 01 00 00000001 82 000000 00 00 00000001"), uint16(10))
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		whole := driveH2(t, protocol.NewH2Reader(h2FuzzLim), in)
		c := int(cut) % (len(in) + 1)
		if split := driveH2(t, protocol.NewH2Reader(h2FuzzLim), in[:c], in[c:]); !reflect.DeepEqual(split, whole) {
			t.Fatalf("% x\ncut at %d:\n%v\nwhole:\n%v", in, c, split, whole)
		}
		ours := make(h2Result, len(whole))
		for i, r := range whole {
			if r.Err != nil && r.Code != h2ErrCodeOf(r.Err) {
				t.Fatalf("record code %v does not match error %v", r.Code, r.Err)
			}
			r.Err = nil // x/net has no sentinels; the code and kind are compared
			ours[i] = r
		}
		ref := xnetRead(t, in)
		if !reflect.DeepEqual(ours, ref) {
			t.Fatalf("% x\nours:\n%v\nx/net (normalised):\n%v", in, ours, ref)
		}
	})
}

// xnetRead reads in with x/net/http2's Framer, records what it returns in
// driveH2's terms, and applies the deliberate differences documented on
// FuzzH2Frames.
func xnetRead(t *testing.T, in []byte) h2Result {
	rd := bytes.NewReader(in)
	fr := http2.NewFramer(io.Discard, rd)
	fr.SetMaxReadFrameSize(protocol.H2DefaultMaxFrameSize)
	res := h2Result{}
	for rd.Len() >= protocol.H2FrameHeaderLen {
		fh, err := fr.ReadFrameHeader()
		hdr := protocol.H2FrameHeader{Length: fh.Length, Type: protocol.H2FrameType(fh.Type), Flags: uint8(fh.Flags), StreamID: fh.StreamID}
		if err != nil {
			return append(res, h2Rec{Kind: "conn error", Hdr: hdr, Code: xnetConnCode(t, err)})
		}
		if rd.Len() < int(fh.Length) {
			return res // the frame is incomplete
		}
		n := protocol.H2FrameHeaderLen + int(fh.Length)
		frame, err := fr.ReadFrameForHeader(fh)
		payload := in[len(in)-rd.Len()-int(fh.Length) : len(in)-rd.Len()]
		switch hdr.Type {
		case protocol.H2FramePushPromise:
			return append(res, h2Rec{Kind: "conn error", Hdr: hdr, Code: protocol.H2ProtocolError})
		case 0x10: // PRIORITY_UPDATE
			res = append(res, h2Rec{Kind: "ignored", N: n, Hdr: hdr})
			continue
		case protocol.H2FrameSettings:
			if err == nil || xnetConnCode(t, err) == protocol.H2FlowControlError {
				code, bad := firstInvalidSetting(payload)
				if err != nil && !bad {
					t.Fatalf("x/net refused SETTINGS % x, which has no invalid parameter", payload)
				}
				if bad {
					return append(res, h2Rec{Kind: "conn error", Hdr: hdr, Code: code})
				}
			}
		}
		if err != nil {
			var se http2.StreamError
			switch {
			case errors.As(err, &se) && hdr.Type == protocol.H2FrameHeaders:
				return append(res, h2Rec{Kind: "conn error", Hdr: hdr, Code: protocol.H2ErrCode(se.Code)})
			case errors.As(err, &se):
				res = append(res, h2Rec{Kind: "stream error", N: n, Hdr: hdr, Code: protocol.H2ErrCode(se.Code)})
				continue
			case hdr.Type == protocol.H2FramePriority && hdr.StreamID != 0 && len(payload) != 5:
				res = append(res, h2Rec{Kind: "stream error", N: n, Hdr: hdr, Code: xnetConnCode(t, err)})
				continue
			}
			return append(res, h2Rec{Kind: "conn error", Hdr: hdr, Code: xnetConnCode(t, err)})
		}
		res = append(res, xnetRec(t, frame, hdr, n))
	}
	return res
}

// xnetConnCode maps an error from x/net's Framer, the payload being whole,
// to the connection error code this reader uses for it.
func xnetConnCode(t *testing.T, err error) protocol.H2ErrCode {
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		return protocol.H2ErrCode(ce)
	case errors.Is(err, http2.ErrFrameTooLarge):
		return protocol.H2FrameSizeError
	case errors.Is(err, io.ErrUnexpectedEOF):
		return protocol.H2FrameSizeError // a field missing from a whole payload
	}
	t.Fatalf("unexpected x/net error %T %v", err, err)
	return 0
}

// firstInvalidSetting applies x/net's Setting.Valid, and RFC 9218 §2.1's
// rule its server checks apart, to each parameter in order.
func firstInvalidSetting(p []byte) (protocol.H2ErrCode, bool) {
	for i := 0; i+6 <= len(p); i += 6 {
		s := http2.Setting{ID: http2.SettingID(uint16(p[i])<<8 | uint16(p[i+1])),
			Val: uint32(p[i+2])<<24 | uint32(p[i+3])<<16 | uint32(p[i+4])<<8 | uint32(p[i+5])}
		var ce http2.ConnectionError
		if err := s.Valid(); errors.As(err, &ce) {
			return protocol.H2ErrCode(ce), true
		}
		if s.ID == http2.SettingNoRFC7540Priorities && s.Val > 1 {
			return protocol.H2ProtocolError, true
		}
	}
	return 0, false
}

// xnetRec records an accepted x/net frame.
func xnetRec(t *testing.T, frame http2.Frame, hdr protocol.H2FrameHeader, n int) h2Rec {
	rec := h2Rec{Kind: "frame", N: n, Hdr: hdr}
	switch f := frame.(type) {
	case *http2.DataFrame:
		rec.Data = string(f.Data())
	case *http2.HeadersFrame:
		rec.Data = string(f.HeaderBlockFragment())
		rec.Priority = protocol.H2Priority{StreamDep: f.Priority.StreamDep, Exclusive: f.Priority.Exclusive, Weight: f.Priority.Weight}
	case *http2.PriorityFrame:
		rec.Priority = protocol.H2Priority{StreamDep: f.StreamDep, Exclusive: f.Exclusive, Weight: f.Weight}
	case *http2.RSTStreamFrame:
		rec.Code = protocol.H2ErrCode(f.ErrCode)
	case *http2.SettingsFrame:
		rec.Settings = []protocol.H2Setting{}
		for i := range f.NumSettings() {
			s := f.Setting(i)
			rec.Settings = append(rec.Settings, protocol.H2Setting{ID: protocol.H2SettingID(s.ID), Val: s.Val})
		}
	case *http2.PingFrame:
		rec.Ping = f.Data
	case *http2.GoAwayFrame:
		rec.LastStreamID, rec.Code, rec.Data = f.LastStreamID, protocol.H2ErrCode(f.ErrCode), string(f.DebugData())
	case *http2.WindowUpdateFrame:
		rec.Increment = f.Increment
	case *http2.ContinuationFrame:
		rec.Data = string(f.HeaderBlockFragment())
	case *http2.UnknownFrame:
		rec.Kind = "ignored"
	default:
		t.Fatalf("unexpected x/net frame %T", frame)
	}
	return rec
}

// h2ErrCodeOf is the code of a reader error.
func h2ErrCodeOf(err error) protocol.H2ErrCode {
	var ce *protocol.H2ConnError
	var se *protocol.H2StreamError
	switch {
	case errors.As(err, &ce):
		return ce.Code
	case errors.As(err, &se):
		return se.Code
	}
	return 0xffffffff
}
