package main

import (
	"bytes"
	"testing"
)

// m2msg builds a request as Mongrel2 sends it with protocol='tnetstring'.
func m2msg(head, body string, kv ...string) string {
	var d []byte
	for _, s := range kv {
		d = appendTnetString(d, []byte(s))
	}
	hdrs := appendTnetString(nil, d)
	hdrs[len(hdrs)-1] = tnDict
	return head + " " + string(hdrs) + string(appendTnetString(nil, []byte(body)))
}

var getRequest = m2msg("a5d7 42 /stream", "", "PATH", "/stream", "METHOD", "GET", "host", "127.0.0.1:8080")

func TestM2msgGolden(t *testing.T) {
	want := "s 1 / 15:6:METHOD,3:GET,}0:,"
	if got := m2msg("s 1 /", "", "METHOD", "GET"); got != want {
		t.Fatalf(
			"m2msg = %q, want %q",
			got, want)
	}
}

func TestParseRequest(t *testing.T) {
	r, err := parseRequest([]byte(getRequest))
	if err != nil {
		t.Fatalf(
			"parseRequest: %v",
			err)
	}
	if string(r.sender) != "a5d7" || string(r.connID) != "42" || string(r.path) != "/stream" ||
		string(r.method) != "GET" || len(r.body) != 0 {
		t.Fatalf(
			"got sender=%q conn=%q path=%q method=%q body=%q",
			r.sender, r.connID, r.path, r.method, r.body)
	}
}

func TestParseRequestWebSocket(t *testing.T) {
	msg := m2msg("s 7 /ws", "hello", "METHOD", "WEBSOCKET", "FLAGS", "0x81")
	r, err := parseRequest([]byte(msg))
	if err != nil {
		t.Fatalf(
			"parseRequest: %v",
			err)
	}
	flags, ok := parseHexFlags(r.flags)
	if string(r.method) != "WEBSOCKET" || !ok || flags != 0x81 || string(r.body) != "hello" {
		t.Fatalf(
			"method=%q flags=%q (%#x, %v) body=%q",
			r.method, r.flags, flags, ok, r.body)
	}
}

// TestParseRequestTruncated cuts a valid request at every point: no prefix
// may panic, and every strict prefix must be refused.
func TestParseRequestTruncated(t *testing.T) {
	for n := range len(getRequest) {
		if _, err := parseRequest([]byte(getRequest[:n])); err == nil {
			t.Errorf(
				"prefix %d (%q): no error",
				n, getRequest[:n])
		}
	}
}

func TestParseTnet(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		payload string
		tag     byte
		rest    string
		bad     bool
	}{
		{name: "string", in: "5:hello,rest", payload: "hello", tag: tnString, rest: "rest"},
		{name: "empty string", in: "0:,", payload: "", tag: tnString},
		{name: "dict", in: "8:1:a,1:b,}", payload: "1:a,1:b,", tag: tnDict},
		{name: "no colon", in: "5hello,", bad: true},
		{name: "not a number", in: "x:,", bad: true},
		{name: "short", in: "5:hell", bad: true},
		{name: "no tag", in: "5:hello", bad: true},
		{name: "length too long", in: "1234567890:x,", bad: true},
		{name: "empty", in: "", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, tag, rest, err := parseTnet([]byte(tt.in))
			if tt.bad {
				if err == nil {
					t.Fatalf(
						"parseTnet(%q): no error",
						tt.in)
				}
				return
			}
			if err != nil || string(p) != tt.payload || tag != tt.tag || string(rest) != tt.rest {
				t.Fatalf(
					"parseTnet(%q) = %q, %q, %q, %v",
					tt.in, p, tag, rest, err)
			}
		})
	}
}

func TestForEachDictStringSkipsOtherTypes(t *testing.T) {
	d := []byte("1:a,1:x,1:n,2:42#1:b,1:y,")
	var got []string
	if err := forEachDictString(d, func(k, v []byte) { got = append(got, string(k)+"="+string(v)) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "a=x" || got[1] != "b=y" {
		t.Fatalf(
			"got %q",
			got)
	}
}

func TestAppendReply(t *testing.T) {
	got := appendReply(nil, []byte("a5d7"), []byte("42"), []byte("HTTP/1.1 200 OK\r\n\r\n"))
	if want := "a5d7 2:42, HTTP/1.1 200 OK\r\n\r\n"; string(got) != want {
		t.Fatalf(
			"got %q, want %q",
			got, want)
	}
}

func TestAppendWSFrame(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		header []byte
	}{
		{name: "small", n: 5, header: []byte{0x81, 5}},
		{name: "16-bit length", n: 300, header: []byte{0x81, 126, 1, 44}},
		{name: "64-bit length", n: 70000, header: []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := bytes.Repeat([]byte("x"), tt.n)
			f := appendWSFrame(nil, 0x81, p)
			if !bytes.Equal(f[:len(tt.header)], tt.header) || !bytes.Equal(f[len(tt.header):], p) {
				t.Fatalf(
					"frame header % x, want % x",
					f[:min(len(f), len(tt.header))], tt.header)
			}
		})
	}
}

func TestParseHexFlags(t *testing.T) {
	for in, want := range map[string]byte{"0x81": 0x81, "0x8A": 0x8a, "88": 0x88, "0x1": 1} {
		if got, ok := parseHexFlags([]byte(in)); !ok || got != want {
			t.Errorf(
				"parseHexFlags(%q) = %#x, %v",
				in, got, ok)
		}
	}
	for _, in := range []string{"", "0x", "0x123", "zz"} {
		if _, ok := parseHexFlags([]byte(in)); ok {
			t.Errorf(
				"parseHexFlags(%q): accepted",
				in)
		}
	}
}

func TestStreamedResponse(t *testing.T) {
	r := streamResponse
	head := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
	if !bytes.HasPrefix(r, []byte(head)) || !bytes.HasSuffix(r, []byte("\r\n0\r\n\r\n")) {
		t.Fatalf(
			"stream response framing: %q…%q",
			r[:20], r[len(r)-10:])
	}
	if n := bytes.Count(r, []byte("400\r\n")); n != 16 {
		t.Fatalf(
			"%d chunks of 0x400 bytes, want 16",
			n)
	}
}
