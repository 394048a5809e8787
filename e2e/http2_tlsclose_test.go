package e2e

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The end of an HTTP/2 connection over TLS, either way: the proxy's
// GOAWAY is followed by its close_notify, and a client's close_notify
// lets the streams it opened finish.

// h2tDial opens an h2 connection over TLS 1.3 (ALPN) to the proxy's TLS
// listener: the client preface and an empty SETTINGS are sent, the
// proxy's SETTINGS read. The raw bytes read after the handshake are
// kept (rawRecorder).
func h2tDial(t *testing.T, s *tsSetup, settings ...http2.Setting) (*tls.Conn, *http2.Framer, *rawRecorder) {
	t.Helper()
	cfg := s.pki.config(tsSecure)
	cfg.NextProtos = []string{"h2"}
	cfg.MinVersion = tls.VersionTLS13
	raw, err := net.DialTimeout("tcp", s.TLS, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	_ = raw.SetDeadline(time.Now().Add(20 * time.Second))
	rec := &rawRecorder{Conn: raw}
	c := tls.Client(rec, cfg)
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q, want h2", p)
	}
	rec.on = true
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	if f, err := fr.ReadFrame(); err != nil {
		t.Fatal(err)
	} else if _, ok := f.(*http2.SettingsFrame); !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	_ = fr.WriteSettingsAck()
	return c, fr, rec
}

// rawRecorder keeps what a connection reads once on is set.
type rawRecorder struct {
	net.Conn
	on bool
	b  []byte
}

func (r *rawRecorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if r.on {
		r.b = append(r.b, p[:n]...)
	}
	return n, err
}

// lastRecordLen is the length of the last whole TLS record read.
func (r *rawRecorder) lastRecordLen() int {
	last := -1
	for b := r.b; len(b) >= 5; {
		n := int(b[3])<<8 | int(b[4])
		if len(b) < 5+n {
			break
		}
		last, b = n, b[5+n:]
	}
	return last
}

// tls13CloseNotifyLen is a TLS 1.3 close_notify's record length: the
// alert (2 bytes) and its inner content type (1), sealed with a 16-byte
// tag (AES-GCM and ChaCha20-Poly1305 alike). Go's client reads a TCP FIN
// at a record boundary as io.EOF too, so only the raw record tells the
// two apart.
const tls13CloseNotifyLen = 2 + 1 + 16

// TestHTTP2TLSGoAwayThenCloseNotify: a TLS connection the proxy ends
// (here idle-timeout) gets GOAWAY, then close_notify, then the FIN.
// Before, the GOAWAY was followed by a bare FIN, which TLS calls a
// truncation (RFC 8446 §6.1).
func TestHTTP2TLSGoAwayThenCloseNotify(t *testing.T) {
	t.Parallel()
	s := tsStart(t, "http2 = on\nidle-timeout = 1s\n", "", nil)
	_, fr, rec := h2tDial(t, s)
	goaway := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if !goaway {
				t.Fatalf("the connection ended without GOAWAY: %v", err)
			}
			if !errors.Is(err, io.EOF) {
				t.Fatalf("after GOAWAY the TLS stream ended with %v, want io.EOF", err)
			}
			if n := rec.lastRecordLen(); n != tls13CloseNotifyLen {
				t.Fatalf("the last TLS record before the FIN is %d bytes long; a close_notify is %d", n, tls13CloseNotifyLen)
			}
			return
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeNo {
				t.Errorf("GOAWAY %v, want NO_ERROR", ga.ErrCode)
			}
			goaway = true
		}
	}
}

// TestHTTP2TLSClientCloseNotify: a client that sends its request and
// then close_notify (it will send nothing more) still gets the response
// on its open stream; then GOAWAY and the proxy's close_notify. Before,
// the connection closed at once: an HTTP/2 connection has no request in
// flight of its own, so the proxy took it for done and dropped the
// stream.
func TestHTTP2TLSClientCloseNotify(t *testing.T) {
	t.Parallel()
	s := tsStart(t, "http2 = on\n", "", nil)
	c, fr, rec := h2tDial(t, s)
	var hb bytes.Buffer
	block := h2EncodeFields(hpack.NewEncoder(&hb), &hb, [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", "/last"}, {":authority", tsSecure}})
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil { // close_notify
		t.Fatal(err)
	}
	var body []byte
	headers, ended := false, false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if !ended {
				t.Fatalf("the connection ended before stream 1's response (headers %v, body %q): %v", headers, body, err)
			}
			break
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			headers = headers || f.StreamID == 1
		case *http2.DataFrame:
			if f.StreamID == 1 {
				body = append(body, f.Data()...)
				ended = ended || f.StreamEnded()
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream %d reset (%v)", f.StreamID, f.ErrCode)
		}
	}
	if want := tsNodeName + " GET /last"; string(body) != want {
		t.Errorf("stream 1's body %q, want the echo %q", body, want)
	}
	if n := rec.lastRecordLen(); n != tls13CloseNotifyLen {
		t.Errorf("the last TLS record before the FIN is %d bytes long; a close_notify is %d", n, tls13CloseNotifyLen)
	}
}

// TestHTTP2TLSInputAfterCloseNotify: after its close_notify a client can
// send nothing valid; what it sends anyway is dropped, not kept, while
// the connection lives on for a stream still open (its window closed,
// its response waiting). At bb126c5 the 32 MiB sent here grew the proxy
// by 346 MiB.
func TestHTTP2TLSInputAfterCloseNotify(t *testing.T) {
	t.Parallel()
	s := tsStart(t, "http2 = on\n", "", nil)
	c, fr, _ := h2tDial(t, s, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	var hb bytes.Buffer
	block := h2EncodeFields(hpack.NewEncoder(&hb), &hb, [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", "/open"}, {":authority", tsSecure}})
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	for { // the response head: its body waits for the window
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("before the response head: %v", err)
		}
		if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 1 {
			break
		}
	}
	tsJunkAfterCloseNotify(t, s, c)
}
