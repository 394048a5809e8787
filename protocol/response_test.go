package protocol_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/protocol"
)

func TestParseResponseHeadAccepts(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want protocol.ResponseHead
		n    int // head length; -1: len(raw)
	}{
		{
			name: "Content-Length with the body behind",
			raw:  "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello",
			want: protocol.ResponseHead{Status: 200, ContentLength: 5},
			n:    63,
		},
		{
			name: "HTTP/1.0, no length",
			raw:  "HTTP/1.0 404 Not Found\r\n\r\n",
			want: protocol.ResponseHead{Status: 404, ContentLength: -1},
			n:    -1,
		},
		{
			name: "no reason phrase",
			raw:  "HTTP/1.1 204\r\n\r\n",
			want: protocol.ResponseHead{Status: 204, ContentLength: -1},
			n:    -1,
		},
		{
			name: "empty reason phrase",
			raw:  "HTTP/1.1 200 \r\n\r\n",
			want: protocol.ResponseHead{Status: 200, ContentLength: -1},
			n:    -1,
		},
		{
			name: "reason with tab and obs-text",
			raw:  "HTTP/1.1 599 Caf\xc3\xa9\tX\r\n\r\n",
			want: protocol.ResponseHead{Status: 599, ContentLength: -1},
			n:    -1,
		},
		{
			name: "lines ending in bare LF (lenient)",
			raw:  "HTTP/1.1 200 OK\nX: y\n\nbody",
			want: protocol.ResponseHead{Status: 200, ContentLength: -1},
			n:    22,
		},
		{
			name: "chunked, any case",
			raw:  "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n",
			want: protocol.ResponseHead{Status: 200, ContentLength: -1, Chunked: true},
			n:    -1,
		},
		{
			name: "Connection: close among tokens",
			raw:  "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n",
			want: protocol.ResponseHead{Status: 200, ContentLength: 0, Close: true},
			n:    -1,
		},
		{
			name: "101 is an upgrade",
			raw:  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
			want: protocol.ResponseHead{Status: 101, ContentLength: -1, Upgrade: true},
			n:    -1,
		},
		{
			name: "identical Content-Length fields",
			raw:  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length:5 \r\n\r\nhello",
			want: protocol.ResponseHead{Status: 200, ContentLength: 5},
			n:    57,
		},
		{
			name: "empty value and OWS",
			raw:  "HTTP/1.1 100 Continue\r\nX:\r\nY: \t a b \t\r\n\r\n",
			want: protocol.ResponseHead{Status: 100, ContentLength: -1},
			n:    -1,
		},
		{
			// Leniency: a frame that ends right after the last field's line
			// end is a whole head; RewriteResponseHead writes the empty line.
			name: "frame ends without the empty line",
			raw:  "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
			want: protocol.ResponseHead{Status: 200, ContentLength: 0},
			n:    -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := protocol.ParseResponseHead([]byte(tt.raw))
			if tt.n < 0 {
				tt.n = len(tt.raw)
			}
			if err != nil || h != tt.want || n != tt.n {
				t.Fatalf("got %+v n=%d err=%v, want %+v n=%d", h, n, err, tt.want, tt.n)
			}
		})
	}
}

func TestParseResponseHeadRejects(t *testing.T) {
	big := "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Filler: "+strings.Repeat("f", 90)+"\r\n", 700)
	tests := []struct {
		name string
		raw  string
	}{
		{name: "empty", raw: ""},
		{name: "no line end", raw: "HTTP/1.1 200 OK"},
		{name: "no empty line", raw: "HTTP/1.1 200 OK\r\nX: y"},
		{name: "HTTP/2", raw: "HTTP/2 200 OK\r\n\r\n"},
		{name: "HTTP/1.2", raw: "HTTP/1.2 200 OK\r\n\r\n"},
		{name: "lower-case version", raw: "http/1.1 200 OK\r\n\r\n"},
		{name: "ICY", raw: "ICY 200 OK\r\n\r\n"},
		{name: "two-digit status", raw: "HTTP/1.1 99 Odd\r\n\r\n"},
		{name: "status 099", raw: "HTTP/1.1 099 Odd\r\n\r\n"},
		{name: "status 600", raw: "HTTP/1.1 600 Odd\r\n\r\n"},
		{name: "four-digit status", raw: "HTTP/1.1 2000\r\n\r\n"},
		{name: "two spaces", raw: "HTTP/1.1  200 OK\r\n\r\n"},
		{name: "control byte in the reason", raw: "HTTP/1.1 200 O\x01K\r\n\r\n"},
		{name: "bare CR in the status line", raw: "HTTP/1.1 200 O\rK\r\n\r\n"},
		{name: "field without colon", raw: "HTTP/1.1 200 OK\r\nX\r\n\r\n"},
		{name: "empty field name", raw: "HTTP/1.1 200 OK\r\n: y\r\n\r\n"},
		{name: "space in the name", raw: "HTTP/1.1 200 OK\r\nX Y: z\r\n\r\n"},
		{name: "space before colon", raw: "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello"},
		{name: "obs-fold", raw: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"},
		{name: "NUL in a value", raw: "HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n"},
		{name: "bare CR in a value", raw: "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"},
		{name: "CR CR LF", raw: "HTTP/1.1 200 OK\r\nX: a\r\r\n\r\n"},
		{name: "CL and TE", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{name: "TE gzip", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{name: "TE gzip, chunked", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"},
		{name: "TE twice", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{name: "CL not a number", raw: "HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\n"},
		{name: "CL negative", raw: "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n"},
		{name: "CL empty", raw: "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"},
		{name: "CL differing fields", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"},
		// The fields are forwarded as they are, so what a client could
		// read two ways is refused (net/http refuses both).
		{name: "CL list", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"},
		{name: "CL fields equal only as numbers", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\nhello"},
		{name: "head over 64 KiB", raw: big + "\r\n"},
		{name: "head cut at 64 KiB on a line end", raw: big[:64<<10-2] + "\r\nX-Late: \x00\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, n, err := protocol.ParseResponseHead([]byte(tt.raw))
			if err != protocol.ErrBadResponse || n != 0 {
				t.Fatalf("got %+v n=%d err=%v, want ErrBadResponse", h, n, err)
			}
		})
	}
	if tests[len(tests)-1].raw[64<<10-2:64<<10] != "\r\n" {
		t.Fatal("the 64 KiB cut is not on a line end")
	}
}

func TestRewriteResponseHead(t *testing.T) {
	tests := []struct {
		name                          string
		raw                           string
		dechunk, closeConn, keepAlive bool
		date                          string // "" passes nil
		want                          string
	}{
		{
			name: "hop-by-hop fields removed, version raised",
			raw: "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\n" +
				"Keep-Alive: timeout=5\r\nproxy-connection: x\r\nContent-Length: 2\r\n\r\nhi",
			want: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n",
		},
		{
			// RFC 9110 §7.6.1: the fields Connection names are hop-by-hop.
			name: "fields named by Connection removed",
			raw:  "HTTP/1.1 200 OK\r\nConnection: X-Internal, close\r\nX-Internal: secret\r\nx-internal: more\r\nContent-Length: 0\r\n\r\n",
			want: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		},
		{
			name: "Upgrade kept whatever Connection says",
			raw:  "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
			want: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
		},
		{
			// RFC 9110 §8.6: a repeated identical Content-Length is one.
			name: "repeated Content-Length sent once",
			raw:  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello",
			want: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		},
		{
			name: "no framing fields on 204",
			raw:  "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX: y\r\n\r\n",
			want: "HTTP/1.1 204 No Content\r\nX: y\r\n\r\n",
		},
		{
			name: "no framing fields on 1xx",
			raw:  "HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\nLink: </a.css>; rel=preload\r\n\r\n",
			want: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
		},
		{
			// RFC 9112 §4: status-code SP [reason-phrase].
			name: "no reason phrase keeps its space",
			raw:  "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
			want: "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
		},
		{
			name:      "Connection: close added",
			raw:       "HTTP/1.1 404 Not Found\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
			closeConn: true,
			want:      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		},
		{
			name:      "keep-alive for an HTTP/1.0 client",
			raw:       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			keepAlive: true,
			want:      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
		},
		{
			name:      "close wins over keep-alive",
			raw:       "HTTP/1.1 200 OK\r\n\r\n",
			closeConn: true,
			keepAlive: true,
			want:      "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
		},
		{
			name:    "dechunk strips Transfer-Encoding",
			raw:     "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nX: y\r\n\r\n",
			dechunk: true,
			want:    "HTTP/1.1 200 OK\r\nX: y\r\n\r\n",
		},
		{
			name: "chunked kept without dechunk",
			raw:  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n",
			want: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n",
		},
		{
			name: "bare LF lines written as CRLF",
			raw:  "HTTP/1.1 204\nX: y\n\n",
			want: "HTTP/1.1 204 \r\nX: y\r\n\r\n", // status-code SP (RFC 9112 §4)
		},
		{
			name:      "frame without the empty line",
			raw:       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n",
			closeConn: true,
			want:      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		},
		{
			name: "Date added when the backend sent none",
			raw:  "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			date: testDate,
			want: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: " + testDate + "\r\n\r\n",
		},
		{
			name:      "Date added before Connection: close, hop-by-hop fields still removed",
			raw:       "HTTP/1.0 500 Oops\r\nConnection: keep-alive\r\nX: y\r\n\r\n",
			closeConn: true,
			date:      testDate,
			want:      "HTTP/1.1 500 Oops\r\nX: y\r\nDate: " + testDate + "\r\nConnection: close\r\n\r\n",
		},
		{
			name: "the backend's Date is kept, none added",
			raw:  "HTTP/1.1 200 OK\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n",
			date: testDate,
			want: "HTTP/1.1 200 OK\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n",
		},
		{
			name:      "Date added to a frame without the empty line",
			raw:       "HTTP/1.1 204 No Content\n",
			keepAlive: true,
			date:      testDate,
			want:      "HTTP/1.1 204 No Content\r\nDate: " + testDate + "\r\nConnection: keep-alive\r\n\r\n",
		},
		{
			name: "repeated fields kept in order",
			raw:  "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
			want: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := protocol.ParseResponseHead([]byte(tt.raw)); err != nil {
				t.Fatalf("ParseResponseHead: %v", err)
			}
			var date []byte
			if tt.date != "" {
				date = []byte(tt.date)
			}
			got := protocol.RewriteResponseHead([]byte("pre"), []byte(tt.raw), tt.dechunk, tt.closeConn, tt.keepAlive, date)
			if string(got) != "pre"+tt.want {
				t.Fatalf("got  %q\nwant %q", got, "pre"+tt.want)
			}
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got[3:])), nil)
			if err != nil {
				t.Fatalf("net/http refuses the rewritten head: %v", err)
			}
			if tt.closeConn && !resp.Close {
				t.Fatal("net/http does not see Connection: close")
			}
			if len(resp.Header["Date"]) > 1 {
				t.Fatalf("two Date fields: %q", resp.Header["Date"])
			}
			if tt.date != "" {
				if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
					t.Fatalf("Date %q: %v", resp.Header.Get("Date"), err)
				}
			}
		})
	}
}

func uwsgiPacket(vars ...string) []byte {
	dst, start := protocol.BeginUwsgi(nil)
	for i := 0; i+1 < len(vars); i += 2 {
		dst = protocol.AppendUwsgiString(dst, vars[i], vars[i+1])
	}
	dst, _ = protocol.FinishUwsgi(dst, start)
	return dst
}

func TestUwsgiResponseToHead(t *testing.T) {
	tests := []struct {
		name string
		pkt  []byte
		want string // "" for ErrBadResponse
	}{
		{
			name: "status and repeated fields",
			pkt:  uwsgiPacket("Status", "200 OK", "Content-Type", "text/html", "Set-Cookie", "a=1", "Set-Cookie", "b=2"),
			want: "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
		},
		{
			name: "status only, any case, empty value",
			pkt:  uwsgiPacket("STATUS", "204 No Content", "X-Empty", ""),
			want: "HTTP/1.1 204 No Content\r\nX-Empty: \r\n\r\n",
		},
		{name: "empty packet", pkt: uwsgiPacket()},
		{name: "status not first", pkt: uwsgiPacket("Content-Type", "text/html", "Status", "200 OK")},
		{name: "truncated", pkt: uwsgiPacket("Status", "200 OK")[:8]},
		{name: "short", pkt: []byte{0, 1}},
		// A backend's var is one field: CR, LF or a bad name in it would
		// let it inject fields or split the response.
		{name: "CRLF in a value", pkt: uwsgiPacket("Status", "200 OK", "X", "a\r\nSet-Cookie: evil=1")},
		{name: "LF in a value", pkt: uwsgiPacket("Status", "200 OK", "X", "a\nb")},
		{name: "NUL in a value", pkt: uwsgiPacket("Status", "200 OK", "X", "a\x00b")},
		{name: "CRLF in the status", pkt: uwsgiPacket("Status", "200 OK\r\nSet-Cookie: evil=1")},
		{name: "CRLF in a name", pkt: uwsgiPacket("Status", "200 OK", "X\r\nSet-Cookie", "evil=1")},
		{name: "colon in a name", pkt: uwsgiPacket("Status", "200 OK", "X: y\r\nZ", "1")},
		{name: "space in a name", pkt: uwsgiPacket("Status", "200 OK", "X Y", "1")},
		{name: "empty name", pkt: uwsgiPacket("Status", "200 OK", "", "1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := protocol.UwsgiResponseToHead([]byte("pre"), tt.pkt)
			if tt.want == "" {
				if err != protocol.ErrBadResponse || string(got) != "pre" {
					t.Fatalf("got %q err %v, want ErrBadResponse", got, err)
				}
				return
			}
			if err != nil || string(got) != "pre"+tt.want {
				t.Fatalf("got %q err %v\nwant %q", got, err, "pre"+tt.want)
			}
			if _, _, err := protocol.ParseResponseHead(got[3:]); err != nil {
				t.Fatalf("ParseResponseHead refuses the head: %v", err)
			}
		})
	}
}

func TestAppendChunk(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{name: "last chunk", data: "", want: "0\r\n\r\n"},
		{name: "one byte", data: "x", want: "1\r\nx\r\n"},
		{name: "hex size", data: strings.Repeat("a", 26), want: "1a\r\n" + strings.Repeat("a", 26) + "\r\n"},
		{name: "CRLF inside data", data: "\r\n0\r\n\r\n", want: "7\r\n\r\n0\r\n\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := protocol.AppendChunk([]byte("pre"), []byte(tt.data)); string(got) != "pre"+tt.want {
				t.Fatalf("got %q", got)
			}
		})
	}
	for _, n := range []int{0, 1, 9, 10, 15, 16, 255, 4096, 65535, 1 << 20, 1<<31 - 1, 1<<62 + 12345} {
		want := strconv.FormatInt(int64(n), 16) + "\r\n"
		if got := protocol.AppendChunkHeader([]byte("pre"), n); string(got) != "pre"+want {
			t.Fatalf("AppendChunkHeader(%d) = %q, want pre%q", n, got, want)
		}
	}
	// Chunks written by AppendChunk parse back with our own parser.
	in := "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	var body []byte
	for _, s := range []string{"hello", " ", strings.Repeat("w", 300)} {
		body = protocol.AppendChunk(body, []byte(s))
	}
	body = protocol.AppendChunk(body, nil)
	got := driveString(t, protocol.Limits{}, in+string(body))
	if got.Err != nil || len(got.Reqs) != 1 || got.Reqs[0].Body != "hello "+strings.Repeat("w", 300) || !got.Reqs[0].Ended {
		t.Fatalf("got %v", got)
	}
}

func TestAppendError(t *testing.T) {
	for _, e := range []*protocol.Error{
		protocol.ErrBadRequestLine, protocol.ErrBodyTooLarge, protocol.ErrURITooLong,
		protocol.ErrHeadTooLarge, protocol.ErrBadVersion, protocol.ErrExpectation,
		protocol.ErrUnknownTE, protocol.ErrBadResponse,
	} {
		for _, closeConn := range []bool{false, true} {
			t.Run(e.Metric+"/close="+strconv.FormatBool(closeConn), func(t *testing.T) {
				out := protocol.AppendError([]byte("pre"), e.Status, e.Msg, closeConn)
				if !bytes.HasPrefix(out, []byte("pre")) {
					t.Fatal("dst prefix lost")
				}
				br := bufio.NewReader(bytes.NewReader(out[3:]))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != e.Status || resp.ContentLength != int64(len(body)) ||
					string(body) != e.Msg+"\n" || resp.Close != closeConn ||
					resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
					t.Fatalf("got %d CL=%d body=%q close=%v %v", resp.StatusCode, resp.ContentLength, body, resp.Close, resp.Header)
				}
				if br.Buffered() != 0 {
					t.Fatalf("%d bytes after the body", br.Buffered())
				}
				if resp.Status != strconv.Itoa(e.Status)+" "+protocol.StatusText(e.Status) {
					t.Fatalf("status line %q", resp.Status)
				}
			})
		}
	}
	golden := "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\nnot found\n"
	if got := protocol.AppendError(nil, 404, "not found", false); string(got) != golden {
		t.Fatalf("got %q", got)
	}
}

func TestAppendErrorDate(t *testing.T) {
	tests := []struct {
		name      string
		date      []byte
		closeConn bool
		want      string
	}{
		{
			name: "no date",
			want: "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\nnot found\n",
		},
		{
			name: "date",
			date: []byte(testDate),
			want: "HTTP/1.1 404 Not Found\r\nDate: " + testDate +
				"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\nnot found\n",
		},
		{
			name:      "date and close",
			date:      []byte(testDate),
			closeConn: true,
			want: "HTTP/1.1 404 Not Found\r\nDate: " + testDate +
				"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protocol.AppendErrorDate([]byte("pre"), 404, "not found", tt.closeConn, tt.date)
			if string(got) != "pre"+tt.want {
				t.Fatalf("got  %q\nwant %q", got, "pre"+tt.want)
			}
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got[3:])), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Header.Get("Date") != string(tt.date) || resp.Close != tt.closeConn {
				t.Fatalf("Date %q close %v", resp.Header.Get("Date"), resp.Close)
			}
		})
	}
}

// testDate is an IMF-fixdate as the server caches it.
const testDate = "Tue, 15 Nov 1994 08:12:31 GMT"

func TestAppendHTTPDate(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{name: "RFC 9110 §5.6.7 example", t: time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC), want: "Sun, 06 Nov 1994 08:49:37 GMT"},
		{name: "another zone is converted to UTC", t: time.Date(1994, 11, 15, 9, 12, 31, 0, time.FixedZone("CET", 3600)), want: testDate},
		{name: "a zone across midnight and a year", t: time.Date(2023, 12, 31, 20, 0, 0, 0, time.FixedZone("", -5*3600)), want: "Mon, 01 Jan 2024 01:00:00 GMT"},
		{name: "sub-second part dropped", t: time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC), want: "Thu, 29 Feb 2024 23:59:59 GMT"},
		{name: "single-digit day padded", t: time.Date(2025, 3, 2, 1, 2, 3, 0, time.UTC), want: "Sun, 02 Mar 2025 01:02:03 GMT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protocol.AppendHTTPDate([]byte("pre"), tt.t)
			if string(got) != "pre"+tt.want {
				t.Fatalf("got %q, want %q", got[3:], tt.want)
			}
			if ref := tt.t.UTC().Format(http.TimeFormat); ref != tt.want {
				t.Fatalf("net/http formats %q", ref)
			}
			back, err := http.ParseTime(tt.want)
			if err != nil || !back.Equal(tt.t.Truncate(time.Second)) {
				t.Fatalf("ParseTime %v %v", back, err)
			}
		})
	}
}

func TestStatusText(t *testing.T) {
	for code, want := range map[int]string{
		100: "Continue", 400: "Bad Request", 404: "Not Found", 408: "Request Timeout",
		413: "Content Too Large", 414: "URI Too Long", 417: "Expectation Failed",
		431: "Request Header Fields Too Large", 500: "Internal Server Error",
		501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
		504: "Gateway Timeout", 505: "HTTP Version Not Supported", 299: "Error",
	} {
		if got := protocol.StatusText(code); got != want {
			t.Errorf("%d: %q, want %q", code, got, want)
		}
	}
}

func TestResponseNoBody(t *testing.T) {
	tests := []struct {
		status int
		head   bool
		want   bool
	}{
		{status: 200, want: false},
		{status: 200, head: true, want: true},
		{status: 100, want: true},
		{status: 101, want: true},
		{status: 199, want: true},
		{status: 204, want: true},
		{status: 205, want: false},
		{status: 304, want: true},
		{status: 404, want: false},
	}
	for _, tt := range tests {
		h := protocol.ResponseHead{Status: tt.status}
		if got := h.NoBody(tt.head); got != tt.want {
			t.Errorf("status %d head=%v: NoBody %v", tt.status, tt.head, got)
		}
	}
}

func TestHasTokenEqualFold(t *testing.T) {
	tests := []struct {
		list, tok string
		want      bool
	}{
		{"close", "close", true},
		{" Keep-Alive ,\tCLOSE ", "close", true},
		{"closed", "close", false},
		{",,", "close", false},
		{"", "close", false},
		{"upgrade,close", "upgrade", true},
	}
	for _, tt := range tests {
		if got := protocol.HasToken([]byte(tt.list), tt.tok); got != tt.want {
			t.Errorf("HasToken(%q, %q) = %v", tt.list, tt.tok, got)
		}
	}
}

func BenchmarkRewriteResponseHead(b *testing.B) {
	raw := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 1234\r\n" +
		"Connection: keep-alive\r\nCache-Control: no-cache\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n")
	date := []byte(testDate)
	dst := make([]byte, 0, 512)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := protocol.ParseResponseHead(raw); err != nil {
			b.Fatal(err)
		}
		dst = protocol.RewriteResponseHead(dst[:0], raw, false, false, false, date)
	}
}

func TestHeadField(t *testing.T) {
	head := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\nSec-WebSocket-Protocol:  chat \r\nX: a\r\n\r\nsec-websocket-protocol: body")
	if got := string(protocol.HeadField(head, "sec-websocket-protocol")); got != "chat" {
		t.Errorf("got %q, want chat (case-insensitive, trimmed, LF lines too)", got)
	}
	if got := protocol.HeadField(head, "upgrade-x"); got != nil {
		t.Errorf("absent field: %q", got)
	}
	if got := protocol.HeadField([]byte("HTTP/1.1 200 OK\r\n\r\nX: body"), "x"); got != nil {
		t.Errorf("a field after the head: %q", got)
	}
}
