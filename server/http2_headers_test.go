package server

import (
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rstCode returns the code of the RST_STREAM the proxy wrote on stream
// id since the last read, and whether it wrote a GOAWAY.
func (q *h2qClient) rstCode(id uint32) (code http2.ErrCode, reset, goaway bool) {
	q.readOut(func(f http2.Frame) {
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				code, reset = f.ErrCode, true
			}
		case *http2.GoAwayFrame:
			goaway = true
		}
	})
	return code, reset, goaway
}

// TestH2SecondHeadersStreamError: HEADERS on a stream after the client
// ended it (half-closed, RFC 9113 §5.1: STREAM_CLOSED), or a second
// field section that does not end the request (malformed, §8.1:
// PROTOCOL_ERROR), reset that stream alone; the connection and its other
// streams go on. Before, either was a connection error (GOAWAY
// STREAM_CLOSED) that ended every stream.
func TestH2SecondHeadersStreamError(t *testing.T) {
	for _, tc := range []struct {
		name      string
		firstEnd  bool // the request had no body (END_STREAM on its HEADERS)
		secondEnd bool
		want      http2.ErrCode
	}{
		{"after END_STREAM", true, true, http2.ErrCodeStreamClosed},
		{"field section not ending the stream", false, false, http2.ErrCodeProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newH2qHarness(t, nil)
			q.open(1, "POST", "a", tc.firstEnd)
			q.open(3, "GET", "a", true) // another stream, in flight
			q.rstCode(1)
			q.hb.Reset()
			_ = q.enc.WriteField(hpack.HeaderField{Name: "x-trailer", Value: "1"})
			_ = q.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: q.hb.Bytes(), EndStream: tc.secondEnd, EndHeaders: true})
			q.send()
			code, reset, goaway := q.rstCode(1)
			if goaway || !reset || code != tc.want {
				t.Fatalf("RST_STREAM %v (sent %v), GOAWAY %v: want RST_STREAM %v and no GOAWAY", code, reset, goaway, tc.want)
			}
			q.deliver("n1", 3, "headers", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			if s := q.status(3); s != "200" {
				t.Fatalf("the other stream after the reset: status %q, want 200", s)
			}
		})
	}
}

// TestH2ExpectContinue: a request with expect: 100-continue and a body
// to come gets an interim 100 HEADERS once its head went to the node, as
// over HTTP/1.1 (PROTOCOL.md: the proxy answers it, the node does not).
// Before, none came, and a client waiting for it waited out its timeout.
// A request without the expectation gets none.
func TestH2ExpectContinue(t *testing.T) {
	for _, expect := range []bool{true, false} {
		q := newH2qHarness(t, nil)
		q.hb.Reset()
		fields := [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/"}, {":authority", "a"}}
		if expect {
			fields = append(fields, [2]string{"expect", "100-continue"})
		}
		for _, f := range fields {
			_ = q.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		_ = q.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: q.hb.Bytes(), EndHeaders: true})
		q.send()
		var statuses []string
		dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
			if f.Name == ":status" {
				statuses = append(statuses, f.Value)
			}
		})
		q.readOut(func(f http2.Frame) {
			if hf, ok := f.(*http2.HeadersFrame); ok && hf.StreamID == 1 {
				if hf.StreamEnded() {
					t.Errorf("the interim HEADERS ends the stream")
				}
				_, _ = dec.Write(hf.HeaderBlockFragment())
			}
		})
		if want := map[bool]int{true: 1, false: 0}[expect]; len(statuses) != want || want == 1 && statuses[0] != "100" {
			t.Fatalf("expect %v: statuses %v, want %d interim 100", expect, statuses, want)
		}
	}
}

// TestH2ZeroWindowUpdateOnIdleStream: WINDOW_UPDATE on an idle stream is
// a connection error (RFC 9113 §5.1) with an increment of 0 too, as with
// any other; it got RST_STREAM (the reader's stream error for a zero
// increment, §6.9, which holds on an open stream).
func TestH2ZeroWindowUpdateOnIdleStream(t *testing.T) {
	q := newH2qHarness(t, nil)
	q.fr.AllowIllegalWrites = true // a zero increment
	_ = q.fr.WriteWindowUpdate(9, 0)
	q.send()
	if code, reset, goaway := q.rstCode(9); !goaway || reset {
		t.Fatalf("WINDOW_UPDATE 0 on idle stream 9: RST_STREAM %v (sent %v), GOAWAY %v; want GOAWAY PROTOCOL_ERROR", code, reset, goaway)
	}
	q = newH2qHarness(t, nil)
	q.fr.AllowIllegalWrites = true
	q.open(1, "POST", "a", false)
	_ = q.fr.WriteWindowUpdate(1, 0)
	q.send()
	if code, reset, goaway := q.rstCode(1); goaway || !reset || code != http2.ErrCodeProtocol {
		t.Fatalf("WINDOW_UPDATE 0 on open stream 1: RST_STREAM %v (sent %v), GOAWAY %v; want RST_STREAM PROTOCOL_ERROR", code, reset, goaway)
	}
}
