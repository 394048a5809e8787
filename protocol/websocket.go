package protocol

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// WSError is a WebSocket protocol violation and the close code the proxy
// answers it with (RFC 6455 §7.4.1) before closing the connection.
type WSError struct {
	Code   ws.StatusCode
	Msg    string
	Metric string
}

func (e *WSError) Error() string { return "protocol: websocket: " + e.Msg }

// WebSocket rejections.
var (
	ErrWSReserved     = &WSError{ws.StatusProtocolError, "reserved bits or opcode", "ws_reserved"}
	ErrWSUnmasked     = &WSError{ws.StatusProtocolError, "client frame not masked", "ws_unmasked"}
	ErrWSControl      = &WSError{ws.StatusProtocolError, "fragmented or oversized control frame", "ws_bad_control"}
	ErrWSContinuation = &WSError{ws.StatusProtocolError, "unexpected continuation or data frame", "ws_bad_fragment"}
	ErrWSLength       = &WSError{ws.StatusProtocolError, "invalid payload length", "ws_bad_length"}
	ErrWSTooBig       = &WSError{ws.StatusMessageTooBig, "message too big", "ws_too_big"}
	ErrWSUTF8         = &WSError{ws.StatusInvalidFramePayloadData, "text message is not UTF-8", "ws_bad_utf8"}
	ErrWSCloseBody    = &WSError{ws.StatusProtocolError, "invalid close frame body", "ws_bad_close"}
)

// ParseFrameHeader reads a client frame header from the start of b
// (RFC 6455 §5.2). ok is false while b holds less than the header. The
// header's length is checked against maxPayload (ErrWSTooBig); the
// payload itself may still be incomplete.
func ParseFrameHeader(b []byte, maxPayload int64) (h ws.Header, n int, ok bool, err error) {
	if len(b) < 2 {
		return h, 0, false, nil
	}
	// §5.2: RSV1-3 MUST be 0 unless an extension is negotiated (none is).
	if b[0]&0x70 != 0 {
		return h, 0, false, ErrWSReserved
	}
	h.Fin = b[0]&0x80 != 0
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	if h.OpCode.IsReserved() {
		return h, 0, false, ErrWSReserved
	}
	h.Masked = b[1]&0x80 != 0
	n = 2
	length := int64(b[1] & 0x7f)
	switch length {
	case 126:
		if len(b) < 4 {
			return h, 0, false, nil
		}
		length = int64(binary.BigEndian.Uint16(b[2:4]))
		// §5.2: the minimal number of bytes MUST be used.
		if length < 126 {
			return h, 0, false, ErrWSLength
		}
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, false, nil
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 || u <= 0xffff {
			return h, 0, false, ErrWSLength
		}
		length = int64(u)
		n = 10
	}
	h.Length = length
	// §5.5: control frames MUST NOT be fragmented and carry ≤ 125 bytes.
	if h.OpCode.IsControl() && (!h.Fin || length > ws.MaxControlFramePayloadSize) {
		return h, 0, false, ErrWSControl
	}
	if length > maxPayload && h.OpCode.IsData() {
		return h, 0, false, ErrWSTooBig
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, false, nil
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, true, nil
}

// MaxFrameHeader is the longest unmasked frame header: 2 bytes and a
// 64-bit length.
const MaxFrameHeader = 10

// AppendFrameHeader appends an unmasked server frame header (§5.2) for a
// payload of length bytes.
func AppendFrameHeader(dst []byte, op ws.OpCode, fin bool, length int) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	switch {
	case length < 126:
		return append(dst, b0, byte(length))
	case length <= 0xffff:
		return append(dst, b0, 126, byte(length>>8), byte(length))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(length))
	}
}

// AppendFrame appends a whole unmasked server frame.
func AppendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	dst = AppendFrameHeader(dst, op, true, len(payload))
	return append(dst, payload...)
}

// AppendCloseFrame appends a close frame with code and reason (§5.5.1).
func AppendCloseFrame(dst []byte, code ws.StatusCode, reason string) []byte {
	dst = AppendFrameHeader(dst, ws.OpClose, true, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}

// CheckCloseBody validates a received close frame's payload (§5.5.1,
// §7.4): empty, or a valid code followed by UTF-8. It returns the code to
// echo back (1000 for an empty body).
func CheckCloseBody(p []byte) (ws.StatusCode, error) {
	if len(p) == 0 {
		return ws.StatusNormalClosure, nil
	}
	if len(p) == 1 {
		return 0, ErrWSCloseBody
	}
	code := ws.StatusCode(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) || !utf8.Valid(p[2:]) {
		return 0, ErrWSCloseBody
	}
	return code, nil
}

// validCloseCode reports whether a peer may send code (RFC 6455 §7.4 and
// IANA's registry): 1000–1003 and 1007–1014 are defined (1012–1014
// registered after the RFC), 3000–4999 are for libraries and
// applications; 1004–1006 and 1015 must never be sent, and the rest is
// unassigned (gobwas/ws took 5000 and up for valid, 1012–1014 for not).
func validCloseCode(code ws.StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	default:
		return code >= 3000 && code <= 4999
	}
}

// wsGUID is RFC 6455 §1.3's magic string.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// ValidWebSocketKey reports whether a Sec-WebSocket-Key is the base64 of
// 16 bytes (§4.1).
func ValidWebSocketKey(key []byte) bool {
	if len(key) != 24 {
		return false
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Decode(raw[:], key)
	return err == nil && n == 16
}

// AppendHandshake appends the server's 101 answer to a WebSocket opening
// handshake with key (§4.2.2), naming protocol when it is not empty.
func AppendHandshake(dst, key []byte, protocol string) []byte {
	// sha1.Sum over a stack buffer: a sha1.New digest would allocate.
	var in [128]byte
	sum := sha1.Sum(append(append(in[:0], key...), wsGUID...))
	var accept [28]byte
	base64.StdEncoding.Encode(accept[:], sum[:])
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = append(dst, accept[:]...)
	if protocol != "" {
		dst = append(dst, "\r\nSec-WebSocket-Protocol: "...)
		dst = append(dst, protocol...)
	}
	return append(dst, "\r\n\r\n"...)
}

// WebSocketRequest is what the opening handshake's request carries.
type WebSocketRequest struct {
	Key       []byte
	Version   []byte
	Protocols []byte // every Sec-WebSocket-Protocol field, joined with ", "
	DupKey    bool   // Sec-WebSocket-Key appeared more than once (§11.3.1)
}

// IsWebSocketUpgrade reports whether r asks for a WebSocket: Connection
// lists "upgrade" (r.Upgrade is set only then; RFC 9110 §7.8 makes Upgrade
// hop-by-hop) and Upgrade lists "websocket". It collects the handshake
// fields. The rest of §4.1 (method GET, compared case-sensitively;
// HTTP/1.1; a valid key) is for the caller to check and answer with 400.
func IsWebSocketUpgrade(r *Request) (WebSocketRequest, bool) {
	var w WebSocketRequest
	if r.Upgrade == nil || !HasToken(r.Upgrade, "websocket") {
		return w, false
	}
	for _, h := range r.Headers {
		switch {
		case equalFold(h.Name, "sec-websocket-key"):
			w.DupKey = w.Key != nil
			w.Key = h.Value
		case equalFold(h.Name, "sec-websocket-version"):
			w.Version = h.Value
		case equalFold(h.Name, "sec-websocket-protocol"):
			// §11.3.4: repeated fields are one list.
			if w.Protocols != nil {
				w.Protocols = append(append(append([]byte(nil), w.Protocols...), ", "...), h.Value...)
			} else {
				w.Protocols = h.Value
			}
		}
	}
	return w, true
}

// ChooseSubprotocol returns the first protocol the client offered that is
// in allowed, or "".
func ChooseSubprotocol(offered []byte, allowed []string) string {
	chosen := ""
	eachToken(offered, func(tok []byte) {
		if chosen != "" {
			return
		}
		for _, a := range allowed {
			if string(tok) == a {
				chosen = a
				return
			}
		}
	})
	return chosen
}
