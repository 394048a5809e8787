package protocol_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/blastbeat/blastbeat/protocol"
)

// hx decodes hex with optional spaces: hx("81 05").
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// wsMax is the maxPayload the frame tests parse with.
const wsMax = 1 << 20

func TestParseFrameHeaderValid(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte // header followed by (maybe part of) the payload
		max     int64
		want    ws.Header
		n       int
		payload string // unmasked payload expected after the header, if any
	}{
		{
			name: "RFC 6455 5.7 single-frame unmasked text Hello",
			in:   hx("81 05 48 65 6c 6c 6f"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpText, Length: 5}, n: 2, payload: "Hello",
		},
		{
			name: "RFC 6455 5.7 single-frame masked text Hello",
			in:   hx("81 85 37 fa 21 3d 7f 9f 4d 51 58"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}, Length: 5},
			n:    6, payload: "Hello",
		},
		{
			name: "RFC 6455 5.7 fragmented unmasked text, first fragment Hel",
			in:   hx("01 03 48 65 6c"), max: wsMax,
			want: ws.Header{Fin: false, OpCode: ws.OpText, Length: 3}, n: 2, payload: "Hel",
		},
		{
			name: "RFC 6455 5.7 fragmented unmasked text, final continuation lo",
			in:   hx("80 02 6c 6f"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpContinuation, Length: 2}, n: 2, payload: "lo",
		},
		{
			name: "RFC 6455 5.7 unmasked ping Hello",
			in:   hx("89 05 48 65 6c 6c 6f"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpPing, Length: 5}, n: 2, payload: "Hello",
		},
		{
			name: "RFC 6455 5.7 masked pong Hello",
			in:   hx("8a 85 37 fa 21 3d 7f 9f 4d 51 58"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpPong, Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}, Length: 5},
			n:    6, payload: "Hello",
		},
		{
			name: "RFC 6455 5.7 256-byte binary, 16-bit length",
			in:   hx("82 7e 01 00"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 256}, n: 4,
		},
		{
			name: "RFC 6455 5.7 64 KiB binary, 64-bit length",
			in:   hx("82 7f 00 00 00 00 00 01 00 00"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 65536}, n: 10,
		},
		{
			name: "masked 256-byte binary",
			in:   hx("82 fe 01 00 01 02 03 04"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: 256}, n: 8,
		},
		{
			name: "masked 64 KiB binary (largest header, 14 bytes)",
			in:   hx("82 ff 00 00 00 00 00 01 00 00 0a 0b 0c 0d"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Masked: true, Mask: [4]byte{10, 11, 12, 13}, Length: 65536}, n: 14,
		},
		{
			name: "masked empty close",
			in:   hx("88 80 00 00 00 00"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpClose, Masked: true}, n: 6,
		},
		{
			name: "ping with 125 bytes, the control maximum",
			in:   hx("89 7d"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpPing, Length: 125}, n: 2,
		},
		{
			name: "smallest 16-bit length 126",
			in:   hx("81 7e 00 7e"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpText, Length: 126}, n: 4,
		},
		{
			name: "largest 16-bit length 65535",
			in:   hx("82 7e ff ff"), max: wsMax,
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 65535}, n: 4,
		},
		{
			name: "data frame of exactly maxPayload",
			in:   hx("82 7e 01 00"), max: 256,
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 256}, n: 4,
		},
		{
			name: "continuation of exactly maxPayload",
			in:   hx("00 7e 01 00"), max: 256,
			want: ws.Header{OpCode: ws.OpContinuation, Length: 256}, n: 4,
		},
		{
			name: "control frames are not bound by maxPayload",
			in:   hx("89 7d"), max: 10,
			want: ws.Header{Fin: true, OpCode: ws.OpPing, Length: 125}, n: 2,
		},
		{
			name: "largest 63-bit length when maxPayload allows it",
			in:   hx("82 7f 7f ff ff ff ff ff ff ff"), max: 1<<63 - 1,
			want: ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 1<<63 - 1}, n: 10,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, n, ok, err := protocol.ParseFrameHeader(tc.in, tc.max)
			if err != nil || !ok {
				t.Fatalf("ParseFrameHeader(% x) = ok %v, err %v; want ok", tc.in, ok, err)
			}
			if h != tc.want || n != tc.n {
				t.Fatalf("got %+v n=%d, want %+v n=%d", h, n, tc.want, tc.n)
			}
			if tc.payload != "" {
				p := append([]byte(nil), tc.in[n:n+int(h.Length)]...)
				if h.Masked {
					ws.Cipher(p, h.Mask, 0)
				}
				if string(p) != tc.payload {
					t.Errorf("payload %q, want %q", p, tc.payload)
				}
			}
			// gobwas/ws must read the same header from the same bytes.
			ref, err := ws.ReadHeader(bytes.NewReader(tc.in))
			if err != nil || ref != h {
				t.Errorf("ws.ReadHeader = %+v, %v; want %+v", ref, err, h)
			}
			// Every truncated header is "need more", never an error.
			for k := range n {
				if _, _, ok, err := protocol.ParseFrameHeader(tc.in[:k], tc.max); ok || err != nil {
					t.Errorf("prefix of %d bytes: ok %v err %v, want need-more", k, ok, err)
				}
			}
			// Bytes after the header do not change it.
			h2, n2, ok2, err2 := protocol.ParseFrameHeader(tc.in[:n], tc.max)
			if !ok2 || err2 != nil || h2 != h || n2 != n {
				t.Errorf("header alone: %+v n=%d ok=%v err=%v", h2, n2, ok2, err2)
			}
		})
	}
}

func TestParseFrameHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		max  int64
		want *protocol.WSError
	}{
		{name: "RSV1", in: hx("c1 85 00 00 00 00"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "RSV2", in: hx("a1 85 00 00 00 00"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "RSV3", in: hx("91 85 00 00 00 00"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "RSV on a control frame", in: hx("c9 80"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "RSV seen with two bytes only", in: hx("f0 80"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "opcode 3", in: hx("83 80 00 00 00 00"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "opcode 4", in: hx("84 80"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "opcode 5", in: hx("85 80"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "opcode 6", in: hx("86 80"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "opcode 7", in: hx("87 80"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "opcode 0xB", in: hx("8b 80"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "opcode 0xC", in: hx("8c 80"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "opcode 0xD", in: hx("8d 80"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "opcode 0xE", in: hx("8e 80"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "opcode 0xF", in: hx("8f 80"), max: wsMax, want: protocol.ErrWSReserved},
		{name: "16-bit length 0", in: hx("81 fe 00 00"), max: wsMax, want: protocol.ErrWSLength},
		{name: "16-bit length 5", in: hx("81 fe 00 05 00 00 00 00"), max: wsMax, want: protocol.ErrWSLength},
		{name: "16-bit length 125", in: hx("82 7e 00 7d"), max: wsMax, want: protocol.ErrWSLength},
		{name: "64-bit length 0", in: hx("82 7f 00 00 00 00 00 00 00 00"), max: wsMax, want: protocol.ErrWSLength},
		{name: "64-bit length 125", in: hx("82 7f 00 00 00 00 00 00 00 7d"), max: wsMax, want: protocol.ErrWSLength},
		{name: "64-bit length 126", in: hx("82 7f 00 00 00 00 00 00 00 7e"), max: wsMax, want: protocol.ErrWSLength},
		{name: "64-bit length 65535", in: hx("82 ff 00 00 00 00 00 00 ff ff"), max: wsMax, want: protocol.ErrWSLength},
		{name: "64-bit length with the top bit set", in: hx("82 7f 80 00 00 00 00 00 00 00"), max: wsMax, want: protocol.ErrWSLength},
		{name: "64-bit length all ones", in: hx("82 7f ff ff ff ff ff ff ff ff"), max: 1<<63 - 1, want: protocol.ErrWSLength},
		{name: "fragmented ping", in: hx("09 80 00 00 00 00"), max: wsMax, want: protocol.ErrWSControl},
		{name: "fragmented pong", in: hx("0a 00"), max: wsMax, want: protocol.ErrWSControl},
		{name: "fragmented close", in: hx("08 82 00 00 00 00 03 e8"), max: wsMax, want: protocol.ErrWSControl},
		{name: "126-byte ping", in: hx("89 fe 00 7e"), max: wsMax, want: protocol.ErrWSControl},
		{name: "126-byte close", in: hx("88 7e 00 7e"), max: wsMax, want: protocol.ErrWSControl},
		{name: "64 KiB pong", in: hx("8a 7f 00 00 00 00 00 01 00 00"), max: wsMax, want: protocol.ErrWSControl},
		{name: "text over maxPayload", in: hx("81 fe 01 01"), max: 256, want: protocol.ErrWSTooBig},
		{name: "binary over maxPayload, 64-bit", in: hx("82 ff 00 00 00 00 00 10 00 01"), max: wsMax, want: protocol.ErrWSTooBig},
		{name: "continuation over maxPayload", in: hx("80 fe 01 01"), max: 256, want: protocol.ErrWSTooBig},
		{name: "data frame with maxPayload 0", in: hx("81 81"), max: 0, want: protocol.ErrWSTooBig},
		{name: "huge 63-bit length", in: hx("82 ff 7f ff ff ff ff ff ff ff"), max: wsMax, want: protocol.ErrWSTooBig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, n, ok, err := protocol.ParseFrameHeader(tc.in, tc.max)
			if ok || n != 0 || err == nil {
				t.Fatalf("ParseFrameHeader(% x) = n %d ok %v err %v, want %v", tc.in, n, ok, err, tc.want)
			}
			var we *protocol.WSError
			if !errors.As(err, &we) || we != tc.want {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err.Error() == "" || we.Metric == "" || we.Code == 0 {
				t.Errorf("error %#v lacks a message, metric or code", we)
			}
			// A prefix either needs more bytes or is refused the same way.
			for k := range len(tc.in) {
				_, _, ok, err := protocol.ParseFrameHeader(tc.in[:k], tc.max)
				if ok || (err != nil && err != tc.want) {
					t.Errorf("prefix of %d bytes: ok %v err %v", k, ok, err)
				}
			}
		})
	}
}

func TestWSErrorCodes(t *testing.T) {
	tests := []struct {
		err  *protocol.WSError
		code ws.StatusCode
	}{
		{err: protocol.ErrWSReserved, code: 1002},
		{err: protocol.ErrWSUnmasked, code: 1002},
		{err: protocol.ErrWSControl, code: 1002},
		{err: protocol.ErrWSContinuation, code: 1002},
		{err: protocol.ErrWSLength, code: 1002},
		{err: protocol.ErrWSTooBig, code: 1009},
		{err: protocol.ErrWSUTF8, code: 1007},
		{err: protocol.ErrWSCloseBody, code: 1002},
	}
	for _, tc := range tests {
		t.Run(tc.err.Metric, func(t *testing.T) {
			if tc.err.Code != tc.code {
				t.Errorf("code %d, want %d", tc.err.Code, tc.code)
			}
			// The reason goes into a close frame: a control payload holds
			// at most 125 bytes, two of them the code.
			f := protocol.AppendCloseFrame(nil, tc.err.Code, tc.err.Msg)
			if len(f) > 2+125 || f[1] > 125 {
				t.Errorf("close frame for %q is %d bytes: an invalid control frame", tc.err.Msg, len(f))
			}
			if !strings.HasPrefix(tc.err.Error(), "protocol: websocket: ") {
				t.Errorf("Error() = %q", tc.err.Error())
			}
		})
	}
}

func TestAppendFrameHeader(t *testing.T) {
	tests := []struct {
		name   string
		op     ws.OpCode
		fin    bool
		length int
		want   []byte
	}{
		{name: "text 0", op: ws.OpText, fin: true, length: 0, want: hx("81 00")},
		{name: "text 125", op: ws.OpText, fin: true, length: 125, want: hx("81 7d")},
		{name: "text 126", op: ws.OpText, fin: true, length: 126, want: hx("81 7e 00 7e")},
		{name: "text 65535", op: ws.OpText, fin: true, length: 65535, want: hx("81 7e ff ff")},
		{name: "text 65536", op: ws.OpText, fin: true, length: 65536, want: hx("81 7f 00 00 00 00 00 01 00 00")},
		{name: "binary 0", op: ws.OpBinary, fin: true, length: 0, want: hx("82 00")},
		{name: "binary 125", op: ws.OpBinary, fin: true, length: 125, want: hx("82 7d")},
		{name: "binary 126", op: ws.OpBinary, fin: true, length: 126, want: hx("82 7e 00 7e")},
		{name: "binary 65535", op: ws.OpBinary, fin: true, length: 65535, want: hx("82 7e ff ff")},
		{name: "binary 65536", op: ws.OpBinary, fin: true, length: 65536, want: hx("82 7f 00 00 00 00 00 01 00 00")},
		{name: "binary 256 (RFC 5.7)", op: ws.OpBinary, fin: true, length: 256, want: hx("82 7e 01 00")},
		{name: "binary 4 GiB", op: ws.OpBinary, fin: true, length: 1 << 32, want: hx("82 7f 00 00 00 01 00 00 00 00")},
		{name: "first fragment", op: ws.OpText, fin: false, length: 3, want: hx("01 03")},
		{name: "continuation", op: ws.OpContinuation, fin: false, length: 300, want: hx("00 7e 01 2c")},
		{name: "final continuation", op: ws.OpContinuation, fin: true, length: 2, want: hx("80 02")},
		{name: "pong 5", op: ws.OpPong, fin: true, length: 5, want: hx("8a 05")},
		{name: "close 2", op: ws.OpClose, fin: true, length: 2, want: hx("88 02")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := protocol.AppendFrameHeader(nil, tc.op, tc.fin, tc.length)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got % x, want % x", got, tc.want)
			}
			prefix := []byte("xyz")
			got = protocol.AppendFrameHeader(prefix, tc.op, tc.fin, tc.length)
			if !bytes.Equal(got, append([]byte("xyz"), tc.want...)) {
				t.Errorf("appending to %q: got % x", prefix, got)
			}
			ref, err := ws.ReadHeader(bytes.NewReader(tc.want))
			want := ws.Header{Fin: tc.fin, OpCode: tc.op, Length: int64(tc.length)}
			if err != nil || ref != want {
				t.Errorf("ws.ReadHeader = %+v, %v; want %+v", ref, err, want)
			}
		})
	}
}

func TestAppendFrame(t *testing.T) {
	tests := []struct {
		name   string
		op     ws.OpCode
		length int
		header []byte
	}{
		{name: "text 0", op: ws.OpText, length: 0, header: hx("81 00")},
		{name: "text 125", op: ws.OpText, length: 125, header: hx("81 7d")},
		{name: "binary 126", op: ws.OpBinary, length: 126, header: hx("82 7e 00 7e")},
		{name: "binary 65535", op: ws.OpBinary, length: 65535, header: hx("82 7e ff ff")},
		{name: "binary 65536", op: ws.OpBinary, length: 65536, header: hx("82 7f 00 00 00 00 00 01 00 00")},
		{name: "pong 125", op: ws.OpPong, length: 125, header: hx("8a 7d")},
		{name: "ping 0", op: ws.OpPing, length: 0, header: hx("89 00")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			payload := make([]byte, tc.length)
			for i := range payload {
				payload[i] = byte(i*7 + 1)
			}
			got := protocol.AppendFrame([]byte("pre"), tc.op, payload)
			want := append(append([]byte("pre"), tc.header...), payload...)
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes starting % x, want %d starting % x",
					len(got), got[:min(len(got), 16)], len(want), want[:min(len(want), 16)])
			}
			f, err := ws.ReadFrame(bytes.NewReader(got[3:]))
			if err != nil || f.Header.OpCode != tc.op || !f.Header.Fin || f.Header.Masked || !bytes.Equal(f.Payload, payload) {
				t.Errorf("ws.ReadFrame: %+v, %v", f.Header, err)
			}
		})
	}
}

func TestAppendCloseFrame(t *testing.T) {
	tests := []struct {
		name   string
		code   ws.StatusCode
		reason string
		want   []byte
	}{
		{name: "1000 no reason", code: 1000, want: hx("88 02 03 e8")},
		{name: "1001", code: 1001, want: hx("88 02 03 e9")},
		{name: "1002 protocol error", code: 1002, reason: "protocol error", want: append(hx("88 10 03 ea"), "protocol error"...)},
		{name: "1007", code: 1007, reason: "x", want: append(hx("88 03 03 ef"), 'x')},
		{name: "1009", code: 1009, reason: "message too big", want: append(hx("88 11 03 f1"), "message too big"...)},
		{name: "4999", code: 4999, want: hx("88 02 13 87")},
		{name: "125-byte payload", code: 1000, reason: strings.Repeat("r", 123), want: append(hx("88 7d 03 e8"), strings.Repeat("r", 123)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := protocol.AppendCloseFrame(nil, tc.code, tc.reason)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got % x, want % x", got, tc.want)
			}
			f, err := ws.ReadFrame(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			code, reason := ws.ParseCloseFrameData(f.Payload)
			if f.Header.OpCode != ws.OpClose || code != tc.code || reason != tc.reason {
				t.Errorf("parsed back: op %v code %d reason %q", f.Header.OpCode, code, reason)
			}
			got = protocol.AppendCloseFrame([]byte{0xaa}, tc.code, tc.reason)
			if got[0] != 0xaa || !bytes.Equal(got[1:], tc.want) {
				t.Errorf("appending to a prefix: % x", got)
			}
		})
	}
}

func TestAppendHandshake(t *testing.T) {
	const rfcKey = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 §1.3
	const rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
	tests := []struct {
		name     string
		key      string
		protocol string
		want     string
	}{
		{
			name: "RFC 6455 1.3 example",
			key:  rfcKey,
			want: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: " + rfcAccept + "\r\n\r\n",
		},
		{
			name: "with subprotocol", key: rfcKey, protocol: "chat",
			want: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: " + rfcAccept + "\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
		},
		{
			name: "all-zero key",
			key:  "AAAAAAAAAAAAAAAAAAAAAA==",
			want: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: ICX+Yqv66kxgM0FcWaLWlFLwTAI=\r\n\r\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(protocol.AppendHandshake(nil, []byte(tc.key), tc.protocol))
			if got != tc.want {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
			got = string(protocol.AppendHandshake([]byte("pre"), []byte(tc.key), tc.protocol))
			if got != "pre"+tc.want {
				t.Errorf("appending to a prefix: %q", got)
			}
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(tc.want)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" ||
				resp.Header.Get("Sec-WebSocket-Protocol") != tc.protocol {
				t.Errorf("net/http reads %d %v", resp.StatusCode, resp.Header)
			}
		})
	}
}

func TestValidWebSocketKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want bool
	}{
		{name: "RFC 6455 example", key: "dGhlIHNhbXBsZSBub25jZQ==", want: true},
		{name: "all zero bytes", key: "AAAAAAAAAAAAAAAAAAAAAA==", want: true},
		{name: "all 0xff bytes", key: "/////////////////////w==", want: true},
		{name: "empty", key: "", want: false},
		{name: "too short", key: "dGhlIHNhbXBsZQ==", want: false},
		{name: "too long", key: "dGhlIHNhbXBsZSBub25jZQ==AAAA", want: false},
		{name: "18 bytes, no padding", key: "AAAAAAAAAAAAAAAAAAAAAAAA", want: false},
		{name: "17 bytes, one pad", key: "AAAAAAAAAAAAAAAAAAAAAAA=", want: false},
		{name: "unpadded 16 bytes", key: "dGhlIHNhbXBsZSBub25jZQ", want: false},
		{name: "not base64", key: "dGhlIHNhbXBsZSBub25jZ!==", want: false},
		{name: "URL alphabet", key: "_____________________w==", want: false},
		{name: "space inside", key: "dGhlIHNhbXBs ZSBub25jZQ=", want: false},
		{name: "pad in the middle", key: "dGhl=HNhbXBsZSBub25jZQ==", want: false},
		{name: "24 pads", key: "========================", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := protocol.ValidWebSocketKey([]byte(tc.key)); got != tc.want {
				t.Errorf("ValidWebSocketKey(%q) = %v, want %v", tc.key, got, tc.want)
			}
		})
	}
}

func TestCheckCloseBody(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		want    ws.StatusCode
		wantErr bool
	}{
		{name: "empty echoes 1000", body: nil, want: 1000},
		{name: "one byte", body: hx("03"), wantErr: true},
		{name: "1000", body: hx("03 e8"), want: 1000},
		{name: "1000 with reason", body: append(hx("03 e8"), "bye"...), want: 1000},
		{name: "1001", body: hx("03 e9"), want: 1001},
		{name: "1002", body: hx("03 ea"), want: 1002},
		{name: "1003", body: hx("03 eb"), want: 1003},
		{name: "1007", body: hx("03 ef"), want: 1007},
		{name: "1008", body: hx("03 f0"), want: 1008},
		{name: "1009", body: hx("03 f1"), want: 1009},
		{name: "1010", body: hx("03 f2"), want: 1010},
		{name: "1011", body: hx("03 f3"), want: 1011},
		{name: "1012 service restart (IANA)", body: hx("03 f4"), want: 1012},
		{name: "1013 try again later (IANA)", body: hx("03 f5"), want: 1013},
		{name: "1014 bad gateway (IANA)", body: hx("03 f6"), want: 1014},
		{name: "5000 unassigned", body: hx("13 88"), wantErr: true},
		{name: "65535 unassigned", body: hx("ff ff"), wantErr: true},
		{name: "1005 no status is reserved", body: hx("03 ed"), wantErr: true},
		{name: "1006 abnormal is reserved", body: hx("03 ee"), wantErr: true},
		{name: "1015 TLS is reserved", body: hx("03 f7"), wantErr: true},
		{name: "1004 has no meaning", body: hx("03 ec"), wantErr: true},
		{name: "1016 undefined", body: hx("03 f8"), wantErr: true},
		{name: "2999 undefined", body: hx("0b b7"), wantErr: true},
		{name: "0", body: hx("00 00"), wantErr: true},
		{name: "999", body: hx("03 e7"), wantErr: true},
		{name: "3000", body: hx("0b b8"), want: 3000},
		{name: "3999", body: hx("0f 9f"), want: 3999},
		{name: "4000", body: hx("0f a0"), want: 4000},
		{name: "4999", body: hx("13 87"), want: 4999},
		{name: "UTF-8 reason", body: append(hx("0b b8"), "au revoir ✓"...), want: 3000},
		{name: "invalid UTF-8 reason", body: hx("03 e8 ff fe"), wantErr: true},
		{name: "truncated UTF-8 reason", body: hx("03 e8 e2 82"), wantErr: true},
		{name: "surrogate in reason", body: hx("03 e8 ed a0 80"), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, err := protocol.CheckCloseBody(tc.body)
			if tc.wantErr {
				if err != protocol.ErrWSCloseBody {
					t.Errorf("CheckCloseBody(% x) = %d, %v; want ErrWSCloseBody", tc.body, code, err)
				}
				return
			}
			if err != nil || code != tc.want {
				t.Errorf("CheckCloseBody(% x) = %d, %v; want %d", tc.body, code, err, tc.want)
			}
		})
	}
}

func TestChooseSubprotocol(t *testing.T) {
	tests := []struct {
		name    string
		offered string
		allowed []string
		want    string
	}{
		{name: "first offered wins", offered: "chat, superchat", allowed: []string{"superchat", "chat"}, want: "chat"},
		{name: "client order", offered: "superchat, chat", allowed: []string{"chat", "superchat"}, want: "superchat"},
		{name: "second offered", offered: "v1.bb, chat", allowed: []string{"chat"}, want: "chat"},
		{name: "none in common", offered: "foo, bar", allowed: []string{"chat"}, want: ""},
		{name: "nothing offered", offered: "", allowed: []string{"chat"}, want: ""},
		{name: "nothing allowed", offered: "chat", allowed: nil, want: ""},
		{name: "OWS and empty elements", offered: " ,\tsuperchat ,, chat", allowed: []string{"chat", "superchat"}, want: "superchat"},
		{name: "case-sensitive", offered: "Chat", allowed: []string{"chat"}, want: ""},
		{name: "no prefix match", offered: "chatty, cha", allowed: []string{"chat"}, want: ""},
		{name: "single", offered: "chat", allowed: []string{"chat"}, want: "chat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := protocol.ChooseSubprotocol([]byte(tc.offered), tc.allowed); got != tc.want {
				t.Errorf("ChooseSubprotocol(%q, %q) = %q, want %q", tc.offered, tc.allowed, got, tc.want)
			}
		})
	}
}

func TestIsWebSocketUpgrade(t *testing.T) {
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	tests := []struct {
		name      string
		req       string
		want      bool
		key       string
		version   string
		protocols string
		chosen    string // ChooseSubprotocol(protocols, [chat superchat])
	}{
		{
			name: "RFC 6455 1.2 example",
			req: "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: " + key + "\r\nOrigin: http://example.com\r\n" +
				"Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n",
			want: true, key: key, version: "13", protocols: "chat, superchat", chosen: "chat",
		},
		{
			name: "browser style keep-alive, Upgrade and mixed case",
			req: "GET /ws?x=1 HTTP/1.1\r\nhost: a\r\nconnection: keep-alive, Upgrade\r\nUPGRADE: WebSocket\r\n" +
				"sec-websocket-version: 13\r\nsec-websocket-key: " + key + "\r\n\r\n",
			want: true, key: key, version: "13",
		},
		{
			name: "Upgrade list naming websocket",
			req:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: foo/2, websocket\r\nSec-WebSocket-Version: 8\r\n\r\n",
			want: true, version: "8",
		},
		{
			// Repeated fields are one list (RFC 9110 §5.3), as the node
			// sees them joined in HTTP_UPGRADE: before, only the last
			// counted, so the proxy skipped the handshake's checks of a
			// request the node took for a WebSocket.
			name: "websocket in the first of two Upgrade fields",
			req:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nUpgrade: x\r\nSec-WebSocket-Version: 13\r\n\r\n",
			want: true, version: "13",
		},
		{
			name: "websocket in the second of two Upgrade fields",
			req:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: x\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
			want: true, version: "13",
		},
		{
			name: "fields missing: the server answers 400",
			req:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
			want: true,
		},
		{
			name: "POST upgrade is still recognised (the server answers 400)",
			req:  "POST / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n",
			want: true, key: key, version: "13",
		},
		{
			name: "no Connection: upgrade",
			req:  "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n",
		},
		{
			// RFC 9110 §7.8: Upgrade is hop-by-hop; without the Connection
			// token it is a plain request.
			name: "Connection without the upgrade token",
			req:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nUpgrade: websocket\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n",
		},
		{
			name: "Connection token upgrades is not upgrade",
			req:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrades, x-upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n",
		},
		{
			name: "upgrade token in a second Connection field",
			req:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nUpgrade: websocket\r\nconnection: UPGRADE\r\nSec-WebSocket-Version: 13\r\n\r\n",
			want: true, version: "13",
		},
		{
			// RFC 9110 §9.1: "get" is not GET. It is recognised as an
			// upgrade attempt; the server compares the method with "GET"
			// case-sensitively and answers 400.
			name: "lower-case get is recognised, for the server to refuse",
			req:  "get / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n",
			want: true, key: key, version: "13",
		},
		{
			name: "Connection: upgrade without Upgrade",
			req:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n",
		},
		{
			name: "other protocol",
			req:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
		},
		{
			name: "websocket as a prefix only",
			req:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websockets\r\n\r\n",
		},
		{
			name: "plain GET",
			req:  "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		},
		{
			// RFC 6455 §11.3.4: Sec-WebSocket-Protocol may be repeated in a
			// request, which is the same as one field with all the values.
			name: "repeated Sec-WebSocket-Protocol fields",
			req: "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: " + key +
				"\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: v2.bb\r\nSec-WebSocket-Version: 13\r\n\r\n",
			want: true, key: key, version: "13", chosen: "chat",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := protocol.NewRequestParser(protocol.Limits{})
			n, ev, _, err := p.Feed([]byte(tc.req))
			if err != nil || ev != protocol.EvHead || n != len(tc.req) {
				t.Fatalf("Feed: n %d ev %v err %v", n, ev, err)
			}
			w, ok := protocol.IsWebSocketUpgrade(p.Request())
			if ok != tc.want {
				t.Fatalf("IsWebSocketUpgrade = %v, want %v", ok, tc.want)
			}
			if !ok {
				return
			}
			if string(w.Key) != tc.key || string(w.Version) != tc.version {
				t.Errorf("key %q version %q, want %q %q", w.Key, w.Version, tc.key, tc.version)
			}
			if tc.protocols != "" && string(w.Protocols) != tc.protocols {
				t.Errorf("protocols %q, want %q", w.Protocols, tc.protocols)
			}
			if got := protocol.ChooseSubprotocol(w.Protocols, []string{"chat", "superchat"}); got != tc.chosen {
				t.Errorf("chosen subprotocol %q, want %q", got, tc.chosen)
			}
		})
	}
}

func BenchmarkParseFrameHeader(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{name: "masked-7bit", in: hx("81 85 37 fa 21 3d 7f 9f 4d 51 58")},
		{name: "masked-16bit", in: hx("82 fe 01 00 01 02 03 04")},
		{name: "masked-64bit", in: hx("82 ff 00 00 00 00 00 01 00 00 0a 0b 0c 0d")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.in)))
			for b.Loop() {
				if _, _, ok, err := protocol.ParseFrameHeader(bc.in, wsMax); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
