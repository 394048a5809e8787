package protocol

// H2Preface is the client connection preface (RFC 9113 §3.4). It is
// followed by the client's first frame, which MUST be SETTINGS: checking
// that is the connection's job, not the frame reader's.
const H2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// MatchH2Preface checks the start of a connection against the client
// preface, resumably in the style of Feed:
//
//   - b starts with the whole preface: n = len(H2Preface), err nil; consume
//     n bytes and hand the rest to an H2Reader.
//   - b is a proper prefix of it (an empty b included): n = 0, err nil; keep
//     b and call again with more bytes.
//   - b diverges from it: ErrH2BadPreface. Over TLS with "h2" negotiated
//     this is a connection error of type PROTOCOL_ERROR (§3.4); on a
//     cleartext port that also speaks HTTP/1.1 it means "not prior-knowledge
//     HTTP/2", and b goes to the HTTP/1.1 parser.
//
// It only compares bytes, so it costs at most len(H2Preface) per call.
func MatchH2Preface(b []byte) (n int, err error) {
	m := min(len(b), len(H2Preface))
	if string(b[:m]) != H2Preface[:m] {
		return 0, ErrH2BadPreface
	}
	if m < len(H2Preface) {
		return 0, nil
	}
	return len(H2Preface), nil
}
