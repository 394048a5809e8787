package e2e

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/node"
)

// The HTTP/2 limits, each a config key, from a raw frame client:
// concurrent streams, a CONTINUATION flood, a stream whose client never
// opens its window, and the HPACK table size the proxy announces.

// h2lConn is a raw HTTP/2 client connection.
type h2lConn struct {
	t   *testing.T
	c   net.Conn
	fr  *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
	// settings is the proxy's first SETTINGS.
	settings map[http2.SettingID]uint32
}

func h2lDial(t *testing.T, addr string, settings ...http2.Setting) *h2lConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h := &h2lConn{t: t, c: c, fr: http2.NewFramer(c, c), settings: map[http2.SettingID]uint32{}}
	h.fr.MaxHeaderListSize = 1 << 20
	h.enc = hpack.NewEncoder(&h.hb)
	if err := h.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	f, err := h.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	_ = sf.ForeachSetting(func(s http2.Setting) error { h.settings[s.ID] = s.Val; return nil })
	_ = h.fr.WriteSettingsAck()
	if v, ok := h.settings[http2.SettingHeaderTableSize]; ok {
		h.enc.SetMaxDynamicTableSizeLimit(v) // as a client must (RFC 7541 §4.2)
	}
	return h
}

// block encodes a GET of path.
func (h *h2lConn) block(path string) []byte { return h.blockOf("GET", path) }

// blockOf encodes a request of method for path.
func (h *h2lConn) blockOf(method, path string) []byte {
	return h.fields([][2]string{{":method", method}, {":scheme", "http"}, {":path", path}, {":authority", "x"}})
}

// fields encodes a field block with the connection's HPACK encoder.
func (h *h2lConn) fields(fields [][2]string) []byte { return h2EncodeFields(h.enc, &h.hb, fields) }

// h2EncodeFields encodes fields with enc, which writes to buf, and
// returns a copy of the block.
func h2EncodeFields(enc *hpack.Encoder, buf *bytes.Buffer, fields [][2]string) []byte {
	buf.Reset()
	for _, f := range fields {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return append([]byte(nil), buf.Bytes()...)
}

func (h *h2lConn) get(id uint32, path string) {
	h.t.Helper()
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block(path), EndStream: true, EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
}

// next returns the next frame that is not SETTINGS, PING ack or
// WINDOW_UPDATE.
func (h *h2lConn) next() http2.Frame {
	h.t.Helper()
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.t.Fatalf("reading frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame, *http2.WindowUpdateFrame:
			continue
		case *http2.PingFrame:
			if f.IsAck() {
				return f
			}
			continue
		}
		return f
	}
}

func TestHTTP2Limits(t *testing.T) {
	t.Parallel()
	p := startProxy(t, "http2-max-streams = 2\nhttp2-max-header-block = 4k\nhttp2-header-table-size = 1024\nmax-pending-output = 64k\nmax-uri = 1k\n",
		"[blastbeat:*]\nnode = n\n")
	hStartNode(t, p.ZMQ, "n", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		switch m.Env["PATH_INFO"] {
		case "/hold": // never answered
		case "/big": // 1 MB at once, no credits
			_ = n.Send([]byte(m.SID), "headers", []byte("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n"))
			for i := 0; i < 16; i++ {
				_ = n.Send([]byte(m.SID), "body", bytes.Repeat([]byte("b"), 64<<10))
			}
		default:
			hRespond(n, m.SID, 200, "", "ok")
		}
	})
	waitRoutable(t, p, "", "/")

	t.Run("settings", func(t *testing.T) {
		h := h2lDial(t, p.Addr)
		if h.settings[http2.SettingMaxConcurrentStreams] != 2 || h.settings[http2.SettingHeaderTableSize] != 1024 {
			t.Errorf("the proxy announces %v; want MAX_CONCURRENT_STREAMS 2, HEADER_TABLE_SIZE 1024", h.settings)
		}
	})

	t.Run("max-streams", func(t *testing.T) {
		h := h2lDial(t, p.Addr)
		h.get(1, "/hold")
		h.get(3, "/hold")
		h.get(5, "/hold")
		rst, ok := h.next().(*http2.RSTStreamFrame)
		if !ok || rst.StreamID != 5 || rst.ErrCode != http2.ErrCodeRefusedStream {
			t.Fatalf("a third stream over http2-max-streams = 2: %v, want RST_STREAM REFUSED_STREAM on 5", rst)
		}
	})

	t.Run("answered-streams-close", func(t *testing.T) {
		// Streams the proxy answers itself (TRACE: 405; a path over
		// max-uri: 414) with the client's END_STREAM on their HEADERS
		// close: they never count against http2-max-streams afterwards.
		h := h2lDial(t, p.Addr)
		long := "/" + strings.Repeat("u", 2000)
		for id := uint32(1); id <= 7; id += 2 {
			method, path := "TRACE", "/t"
			if id > 3 {
				method, path = "GET", long
			}
			if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.blockOf(method, path), EndStream: true, EndHeaders: true}); err != nil {
				t.Fatal(err)
			}
		}
		h.get(9, "/fine")
		for {
			switch f := h.next().(type) {
			case *http2.RSTStreamFrame:
				t.Fatalf("stream %d reset (%v): answered streams still count", f.StreamID, f.ErrCode)
			case *http2.HeadersFrame:
				if f.StreamID == 9 {
					return
				}
			}
		}
	})

	t.Run("continuation-flood", func(t *testing.T) {
		h := h2lDial(t, p.Addr)
		if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.block("/"), EndHeaders: false}); err != nil {
			t.Fatal(err)
		}
		junk := bytes.Repeat([]byte{0x82}, 1000) // indexed :method GET, again and again
		var ga *http2.GoAwayFrame
		go func() {
			for i := 0; i < 20; i++ {
				if h.fr.WriteContinuation(1, false, junk) != nil {
					return
				}
			}
		}()
		for ga == nil {
			f, err := h.fr.ReadFrame()
			if err != nil {
				t.Fatalf("no GOAWAY before %v", err)
			}
			ga, _ = f.(*http2.GoAwayFrame)
		}
		if ga.ErrCode == http2.ErrCodeNo {
			t.Errorf("GOAWAY %v after a header block over http2-max-header-block", ga.ErrCode)
		}
	})

	t.Run("window-never-opened", func(t *testing.T) {
		// The client opens no window: the node's 1 MB waits in the proxy,
		// over max-pending-output the stream is reset; the connection
		// goes on (a PING is answered).
		h := h2lDial(t, p.Addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		h.get(1, "/big")
		for {
			f := h.next()
			if _, ok := f.(*http2.HeadersFrame); ok {
				continue
			}
			rst, ok := f.(*http2.RSTStreamFrame)
			if !ok || rst.StreamID != 1 || rst.ErrCode != http2.ErrCodeFlowControl {
				t.Fatalf("%v, want RST_STREAM FLOW_CONTROL_ERROR on 1", f)
			}
			break
		}
		if err := h.fr.WritePing(false, [8]byte{7}); err != nil {
			t.Fatal(err)
		}
		if ping, ok := h.next().(*http2.PingFrame); !ok || ping.Data != [8]byte{7} {
			t.Fatalf("the connection did not go on: %v", ping)
		}
	})
}
