package protocol_test

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/blastbeat/blastbeat/protocol"
)

// FuzzUwsgi checks that RangeUwsgi never panics on any packet and that
// what it accepts encodes back to the same vars, and that AppendEnviron's
// packet for any request our parser accepts always decodes back: with
// RangeUwsgi, in PROTOCOL.md's order, and with the original Python
// decoder to the same dict; PATH_INFO never holds NUL, CR or LF, and
// HTTP_UPGRADE appears only when Connection lists "upgrade".
func FuzzUwsgi(f *testing.F) {
	f.Add(uwsgiPacket("Status", "200 OK", "X", "y"), []byte(browserGET), false)
	f.Add([]byte("\x00\x04\x00\x00\x00\x00\x00\x00"), []byte(simplePOST), true)
	f.Add([]byte("\x00\xff\xff\x00\x01"), []byte("GET / HTTP/1.0\r\n\r\n"), false)
	f.Add([]byte{}, []byte("OPTIONS * HTTP/1.1\r\nHost: [::1]:80\r\nCookie: a\r\nCookie: b\r\n\r\n"), true)
	f.Add([]byte{}, []byte("GET http://h/%41%zz?q HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Type: x\r\n\r\n"), false)
	f.Add([]byte{}, []byte("GET /%2500%0%%41?%00 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\r\n"), false)
	f.Add([]byte{}, []byte("get / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, pkt, raw []byte, tls bool) {
		var vars []kv
		err := protocol.RangeUwsgi(pkt, func(k, v []byte) bool {
			vars = append(vars, kv{string(k), string(v)})
			return true
		})
		if err == nil {
			dst, start := protocol.BeginUwsgi(nil)
			for _, v := range vars {
				dst = protocol.AppendUwsgiString(dst, v.K, v.V)
			}
			dst, err := protocol.FinishUwsgi(dst, start)
			if err != nil {
				t.Fatalf("re-encoding: %v", err)
			}
			if size := int(binary.LittleEndian.Uint16(pkt[1:3])); !bytes.Equal(dst[4:], pkt[4:4+size]) {
				t.Fatalf("re-encoded vars differ")
			}
		}
		// UwsgiResponseToHead on the same packet: no panic, and what it
		// writes has exactly one line per var.
		if head, err := protocol.UwsgiResponseToHead(nil, pkt); err == nil {
			if lines := bytes.Count(head, []byte("\r\n")); lines != len(vars)+1 {
				t.Fatalf("%d vars became %d lines: %q", len(vars), lines, head)
			}
			if bytes.Count(head, []byte("\n")) != bytes.Count(head, []byte("\r\n")) ||
				bytes.Count(head, []byte("\r")) != bytes.Count(head, []byte("\r\n")) {
				t.Fatalf("bare CR or LF in %q", head)
			}
		}

		p := protocol.NewRequestParser(protocol.Limits{MaxHeadBytes: 1 << 17, MaxURIBytes: 1 << 17})
		if _, ev, _, err := p.Feed(raw); ev != protocol.EvHead || err != nil {
			return
		}
		r := p.Request()
		ci := &protocol.ConnInfo{ServerPort: "80", RemoteAddr: "203.0.113.9", RemotePort: "1234", TLS: tls}
		out, err := protocol.AppendEnviron([]byte("pre"), r, ci)
		if err != nil {
			if err != protocol.ErrUwsgiTooLarge || string(out) != "pre" {
				t.Fatalf("AppendEnviron: %q... %v", out[:min(len(out), 8)], err)
			}
			return
		}
		env := uwsgiVars(t, out[3:])
		if size := int(binary.LittleEndian.Uint16(out[4:6])); size != len(out)-7 {
			t.Fatalf("datasize %d, vars are %d bytes", size, len(out)-7)
		}
		order := []string{"REQUEST_METHOD", "REQUEST_URI", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
			"SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "REMOTE_PORT"}
		if tls {
			order = append(order, "HTTPS")
		}
		order = append(order, "UWSGI_SCHEME")
		if len(env) < len(order) {
			t.Fatalf("only %d vars", len(env))
		}
		for i, k := range order {
			if env[i].K != k {
				t.Fatalf("var %d is %q, want %q", i, env[i].K, k)
			}
		}
		if env[0].V != string(r.Method) || env[1].V != string(r.URI) || env[3].V != string(r.Query) {
			t.Fatalf("request line vars %v", env[:4])
		}
		if bytes.ContainsAny([]byte(env[2].V), "\x00\r\n") {
			t.Fatalf("PATH_INFO %q holds NUL, CR or LF", env[2].V)
		}
		connUpgrade := false
		for _, h := range r.Headers {
			if string(bytes.ToLower(h.Name)) == "connection" && protocol.HasToken(h.Value, "upgrade") {
				connUpgrade = true
			}
		}
		for _, v := range env {
			if v.K == "HTTP_UPGRADE" && !connUpgrade {
				t.Fatalf("HTTP_UPGRADE without Connection: upgrade")
			}
		}
		rest := env[len(order):]
		if len(rest) > 0 && rest[0].K == "CONTENT_TYPE" {
			rest = rest[1:]
		}
		if len(rest) > 0 && rest[0].K == "CONTENT_LENGTH" {
			rest = rest[1:]
		}
		for _, v := range rest {
			if len(v.K) < 6 || v.K[:5] != "HTTP_" {
				t.Fatalf("unexpected var %q after the CGI vars", v.K)
			}
		}
		want := map[string]string{}
		for _, v := range env {
			want[v.K] = v.V
		}
		got, err := pyUwsgiToDict(out[3:])
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("python decoder: %v (err %v), want %v", got, err, want)
		}
	})
}
