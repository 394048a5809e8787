package main

import (
	"encoding/binary"
	"errors"
	"testing"
)

// packet builds a uwsgi packet from key/value pairs.
func packet(kv ...string) []byte {
	var vars []byte
	for _, s := range kv {
		vars = binary.LittleEndian.AppendUint16(vars, uint16(len(s)))
		vars = append(vars, s...)
	}
	pkt := []byte{0, 0, 0, 0}
	binary.LittleEndian.PutUint16(pkt[1:3], uint16(len(vars)))
	return append(pkt, vars...)
}

func TestForEachVar(t *testing.T) {
	pkt := packet("REQUEST_METHOD", "GET", "PATH_INFO", "/", "QUERY_STRING", "")
	var got []string
	err := forEachVar(pkt, func(k, v []byte) {
		got = append(got, string(k), string(v))
	})
	if err != nil {
		t.Fatalf(
			"forEachVar: %v",
			err)
	}
	want := []string{"REQUEST_METHOD", "GET", "PATH_INFO", "/", "QUERY_STRING", ""}
	if len(got) != len(want) {
		t.Fatalf(
			"got %q, want %q",
			got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf(
				"got %q, want %q",
				got, want)
		}
	}
}

func TestForEachVarEmpty(t *testing.T) {
	calls := 0
	if err := forEachVar(packet(), func(k, v []byte) { calls++ }); err != nil || calls != 0 {
		t.Fatalf(
			"empty packet: err=%v calls=%d",
			err, calls)
	}
}

// TestForEachVarTruncated cuts a valid packet at every point: each prefix
// as is must be refused (its datasize no longer matches), and each prefix
// with datasize fixed up must be refused unless it ends between two vars.
func TestForEachVarTruncated(t *testing.T) {
	pkt := packet("PATH_INFO", "/post", "CONTENT_LENGTH", "65536")
	between := map[int]bool{
		uwsgiHeaderSize:                   true,
		len(packet("PATH_INFO", "/post")): true,
	}
	nop := func(k, v []byte) {}
	for n := range len(pkt) {
		prefix := append([]byte(nil), pkt[:n]...)
		if err := forEachVar(prefix, nop); err == nil {
			t.Errorf(
				"prefix %d as is: no error",
				n)
		}
		if n < uwsgiHeaderSize {
			continue
		}
		binary.LittleEndian.PutUint16(prefix[1:3], uint16(n-uwsgiHeaderSize))
		err := forEachVar(prefix, nop)
		switch {
		case between[n] && err != nil:
			t.Errorf(
				"prefix %d ends between vars: err=%v",
				n, err)
		case !between[n] && !errors.Is(err, errUwsgiTruncVar):
			t.Errorf(
				"prefix %d with fixed datasize: err=%v, want truncated",
				n, err)
		}
	}
}

func TestForEachVarBadSize(t *testing.T) {
	pkt := packet("A", "B")
	pkt[1]++
	if err := forEachVar(pkt, func(k, v []byte) {}); !errors.Is(err, errUwsgiSize) {
		t.Fatalf(
			"datasize mismatch: err=%v",
			err)
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
		want request
	}{
		{
			name: "get root",
			pkt:  packet("REQUEST_METHOD", "GET", "PATH_INFO", "/"),
			want: request{path: "/", contentLength: -1},
		},
		{
			name: "post with length",
			pkt:  packet("REQUEST_METHOD", "POST", "PATH_INFO", "/post", "CONTENT_LENGTH", "65536"),
			want: request{path: "/post", contentLength: 65536},
		},
		{
			name: "bad length",
			pkt:  packet("PATH_INFO", "/post", "CONTENT_LENGTH", "12x"),
			want: request{path: "/post", contentLength: -1},
		},
		{
			name: "websocket upgrade",
			pkt:  packet("PATH_INFO", "/ws", "HTTP_UPGRADE", "WebSocket"),
			want: request{path: "/ws", contentLength: -1, websocket: true},
		},
		{
			name: "unknown path",
			pkt:  packet("PATH_INFO", "/nope"),
			want: request{path: "", contentLength: -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRequest(tt.pkt)
			if err != nil {
				t.Fatalf(
					"parseRequest: %v",
					err)
			}
			if got != tt.want {
				t.Fatalf(
					"got %+v, want %+v",
					got, tt.want)
			}
		})
	}
}

func TestParseRequestAllocs(t *testing.T) {
	pkt := packet("REQUEST_METHOD", "POST", "PATH_INFO", "/post", "CONTENT_LENGTH", "65536", "HTTP_HOST", "x")
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = parseRequest(pkt)
	})
	if allocs != 0 {
		t.Fatalf(
			"parseRequest allocates %.1f times per call",
			allocs)
	}
}
