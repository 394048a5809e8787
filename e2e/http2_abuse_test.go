package e2e

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/node"
)

// HTTP/2 clients that abuse what the protocol lets them do, from a raw
// frame client that keeps to flow control: each test fails on the
// proxy before the fix named in its comment.

// h2fConn is a raw HTTP/2 client whose frames are read by a goroutine:
// the windows the proxy opens (WINDOW_UPDATE) are counted, so that the
// client may send DATA as fast as the proxy lets it; DATA is counted by
// stream (got, ended), SETTINGS dropped, and the other frames wait in
// frames.
type h2fConn struct {
	*h2lConn
	frames chan http2.Frame
	wmu    sync.Mutex
	woke   *sync.Cond
	win    map[uint32]int64 // send windows by stream; 0: the connection's
	init   int64            // the proxy's SETTINGS_INITIAL_WINDOW_SIZE (65535 until it says)
	got    map[uint32]int64 // DATA bytes received by stream
	ended  map[uint32]bool  // END_STREAM received
	dead   error
}

// h2fDial opens a raw client connection with the given settings; a
// non-nil slow wraps the socket for reading (a client on a slow link).
func h2fDial(t *testing.T, addr string, slow func(net.Conn) io.Reader, settings ...http2.Setting) *h2fConn {
	t.Helper()
	h := &h2fConn{h2lConn: h2lDial(t, addr, settings...), frames: make(chan http2.Frame, 1024),
		win: map[uint32]int64{0: 65535}, init: 65535, got: map[uint32]int64{}, ended: map[uint32]bool{}}
	if v, ok := h.settings[http2.SettingInitialWindowSize]; ok { // the proxy's first SETTINGS (h2lDial read it)
		h.init = int64(v)
	}
	h.woke = sync.NewCond(&h.wmu)
	_ = h.c.SetDeadline(time.Now().Add(60 * time.Second))
	if slow != nil {
		h.fr = http2.NewFramer(h.c, slow(h.c))
		h.fr.MaxHeaderListSize = 1 << 20
	}
	dec := hpack.NewDecoder(4096, nil)
	go func() {
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				h.wmu.Lock()
				h.dead = err
				h.woke.Broadcast()
				h.wmu.Unlock()
				close(h.frames)
				return
			}
			switch f := f.(type) {
			case *http2.WindowUpdateFrame:
				h.wmu.Lock()
				h.win[f.StreamID] += int64(f.Increment)
				h.woke.Broadcast()
				h.wmu.Unlock()
				continue
			case *http2.DataFrame:
				h.wmu.Lock()
				h.got[f.StreamID] += int64(len(f.Data()))
				h.ended[f.StreamID] = h.ended[f.StreamID] || f.StreamEnded()
				h.woke.Broadcast()
				h.wmu.Unlock()
				continue
			case *http2.SettingsFrame:
				// RFC 9113 §6.9.2: a new initial window moves every open
				// stream's window by the difference. The proxy keeps the
				// default 65535 (http2-stream-window comes by WINDOW_UPDATE
				// to body streams), so this runs only if that changes.
				if v, ok := f.Value(http2.SettingInitialWindowSize); ok && !f.IsAck() {
					h.wmu.Lock()
					for id := range h.win {
						if id != 0 {
							h.win[id] += int64(v) - h.init
						}
					}
					h.init = int64(v)
					h.woke.Broadcast()
					h.wmu.Unlock()
				}
				continue
			case *http2.HeadersFrame:
				// Decoded here: its payload is gone at the next read,
				// and the proxy's dynamic table spans the connection.
				status := ""
				dec.SetEmitFunc(func(hf hpack.HeaderField) {
					if hf.Name == ":status" {
						status = hf.Value
					}
				})
				if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
					status = "undecodable: " + err.Error()
				}
				select {
				case h.frames <- &h2fHeaders{id: f.StreamID, status: status}:
				default:
				}
				continue
			}
			select {
			case h.frames <- f:
			default:
			}
		}
	}()
	return h
}

// h2fHeaders is a HEADERS frame the reader decoded (a field block
// spans CONTINUATION frames only from clients here: the proxy's fit).
type h2fHeaders struct {
	http2.Frame
	id     uint32
	status string
}

// open declares a stream's send window (the proxy's initial one).
func (h *h2fConn) open(id uint32) {
	h.wmu.Lock()
	h.win[id] = h.init
	h.wmu.Unlock()
}

// data sends n bytes of DATA on stream id in frames of up to 16 KiB,
// each as soon as both windows allow; it fails the test when the
// connection dies first.
func (h *h2fConn) data(id uint32, n int) {
	h.t.Helper()
	chunk := make([]byte, 16384)
	for n > 0 {
		k := min(n, len(chunk))
		h.wmu.Lock()
		for h.dead == nil && (h.win[0] < int64(k) || h.win[id] < int64(k)) {
			h.woke.Wait()
		}
		err := h.dead
		h.win[0] -= int64(k)
		h.win[id] -= int64(k)
		h.wmu.Unlock()
		if err != nil {
			h.t.Fatalf("the connection ended with %d bytes of DATA left to send: %v", n, err)
		}
		if err := h.fr.WriteData(id, false, chunk[:k]); err != nil {
			h.t.Fatalf("sending DATA: %v", err)
		}
		n -= k
	}
}

// waitBody waits until stream id's DATA ended; it returns the bytes.
func (h *h2fConn) waitBody(id uint32) int64 {
	h.t.Helper()
	h.wmu.Lock()
	defer h.wmu.Unlock()
	for !h.ended[id] && h.dead == nil {
		h.woke.Wait()
	}
	if !h.ended[id] {
		h.t.Fatalf("the connection ended with %d bytes of stream %d's body read: %v", h.got[id], id, h.dead)
	}
	return h.got[id]
}

// waitReset waits for an RST_STREAM on stream id and returns its code.
func (h *h2fConn) waitReset(id uint32, within time.Duration) http2.ErrCode {
	h.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case f, ok := <-h.frames:
			if !ok {
				h.t.Fatalf("the connection ended before stream %d's RST_STREAM", id)
			}
			if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == id {
				return rst.ErrCode
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				h.t.Fatalf("GOAWAY (%v) before stream %d's RST_STREAM", ga.ErrCode, id)
			}
		case <-deadline:
			h.t.Fatalf("no RST_STREAM on stream %d within %v", id, within)
		}
	}
}

// request opens stream id with a GET of path (END_STREAM).
func (h *h2fConn) request(id uint32, path string) {
	h.t.Helper()
	h.open(id)
	h.get(id, path)
}

// pingAck sends a PING and waits for its ACK: the proxy still reads and
// answers this connection.
func (h *h2fConn) pingAck() {
	h.t.Helper()
	if err := h.fr.WritePing(false, [8]byte{'a', 'l', 'i', 'v', 'e'}); err != nil {
		h.t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-h.frames:
			if !ok {
				h.t.Fatal("the connection ended before the PING's ACK")
			}
			if p, ok := f.(*http2.PingFrame); ok && p.IsAck() && p.Data == [8]byte{'a', 'l', 'i', 'v', 'e'} {
				return
			}
		case <-deadline:
			h.t.Fatal("no PING ACK within 20 s")
		}
	}
}

// waitHeaders waits for the HEADERS of stream id and returns its
// :status.
func (h *h2fConn) waitHeaders(id uint32) string {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-h.frames:
			if !ok {
				h.t.Fatalf("the connection ended before stream %d's HEADERS", id)
			}
			if hf, ok := f.(*h2fHeaders); ok && hf.id == id {
				return hf.status
			}
			if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == id {
				h.t.Fatalf("stream %d reset (%v) before its HEADERS", id, rst.ErrCode)
			}
		case <-deadline:
			h.t.Fatalf("no HEADERS on stream %d within 20 s", id)
		}
	}
}

// TestHTTP2WebSocketFloodAfterClose: an RFC 8441 WebSocket whose client
// keeps its window closed (SETTINGS_INITIAL_WINDOW_SIZE 0), sends a frame
// the proxy must fail (unmasked), so that the proxy's close frame waits
// for window, and then streams DATA. The proxy drops it. Before the fix
// it kept every byte (the frame parser stops once the close is due, but
// the bytes were still appended to the stream's buffer): 48 MiB sent
// grew the proxy by about as much.
func TestHTTP2WebSocketFloodAfterClose(t *testing.T) {
	t.Parallel()
	p, _, _ := wEchoProxy(t, "http2 = on\n")
	h := h2fDial(t, p.Addr, nil, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	block := h.fields([][2]string{{":method", "CONNECT"}, {":protocol", "websocket"}, {":scheme", "http"},
		{":path", "/h2/echo"}, {":authority", "x"}, {"sec-websocket-version", "13"}})
	h.open(1)
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if status := h.waitHeaders(1); status != "200" {
		t.Fatalf("extended CONNECT answered %s, want 200", status)
	}
	// An unmasked text frame: the proxy fails the WebSocket (1002), and
	// its close frame cannot go (the stream's window is 0).
	if err := h.fr.WriteData(1, false, []byte{0x81, 0x02, 'h', 'i'}); err != nil {
		t.Fatal(err)
	}
	h.pingAck() // the bad frame is read
	before, err := hRSS(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	const flood = 48 << 20
	h.data(1, flood)
	h.pingAck()
	after, err := hRSS(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if grew := after - before; grew > flood/3 {
		t.Errorf("the proxy grew by %d MiB while the client sent %d MiB after the WebSocket's end: it kept what it should drop",
			grew>>20, flood>>20)
	}
}

// h2aProxy starts a proxy with extra settings and a node that speaks no
// credits: /sized?n=N answers N bytes (in 16 KiB body messages, all at
// once), anything else "ok".
func h2aProxy(t *testing.T, extra string) *proxy {
	t.Helper()
	p := startProxy(t, extra, "[blastbeat:*]\nnode = n\n")
	hStartNode(t, p.ZMQ, "n", func(hn *hNode, n *node.Node, m hMsg) {
		if m.Type != "uwsgi" {
			return
		}
		if m.Env["PATH_INFO"] != "/sized" {
			hRespond(n, m.SID, 200, "", "ok")
			return
		}
		size, _ := strconv.Atoi(strings.TrimPrefix(m.Env["QUERY_STRING"], "n="))
		_ = n.Send([]byte(m.SID), "headers", fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size))
		for size > 0 {
			k := min(size, 16<<10)
			_ = n.Send([]byte(m.SID), "body", make([]byte, k))
			size -= k
		}
	})
	waitRoutable(t, p, "", "/")
	return p
}

// TestHTTP2StalledStream: a stream whose client keeps its window closed
// is reset (CANCEL) once its output has not moved for stall-timeout; the
// connection goes on. Before, it held its output,
// uncounted, for as long as the connection lived.
func TestHTTP2StalledStream(t *testing.T) {
	t.Parallel()
	p := h2aProxy(t, "stall-timeout = 1s\n")
	h := h2fDial(t, p.Addr, nil, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	h.request(1, "/sized?n=100000")
	if status := h.waitHeaders(1); status != "200" {
		t.Fatalf("stream 1: %s", status)
	}
	if code := h.waitReset(1, 15*time.Second); code != http2.ErrCodeCancel {
		t.Errorf("the stalled stream was reset with %v, want CANCEL", code)
	}
	// The connection goes on: a stream whose window the client opens.
	h.request(3, "/sized?n=3000")
	if err := h.fr.WriteWindowUpdate(3, 3000); err != nil {
		t.Fatal(err)
	}
	if n := h.waitBody(3); n != 3000 {
		t.Errorf("stream 3's body: %d bytes, want 3000", n)
	}
	h.pingAck()
}

// TestHTTP2HeldPerConnection: max-pending-output bounds what one
// connection's streams hold together while their windows are closed,
// not each stream alone: 8 responses of 96 KiB each, the window 0, and
// max-pending-output 256k. The streams that push the connection past
// it are reset (FLOW_CONTROL_ERROR); before, each stayed under the cap
// and all 768 KiB were held.
func TestHTTP2HeldPerConnection(t *testing.T) {
	t.Parallel()
	p := h2aProxy(t, "max-pending-output = 256k\n")
	h := h2fDial(t, p.Addr, nil, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	for id := uint32(1); id <= 15; id += 2 {
		h.request(id, "/sized?n=98304")
	}
	resets := 0
	deadline := time.After(20 * time.Second)
	for resets < 5 {
		select {
		case f, ok := <-h.frames:
			if !ok {
				t.Fatalf("the connection ended after %d resets", resets)
			}
			if rst, ok := f.(*http2.RSTStreamFrame); ok {
				if rst.ErrCode != http2.ErrCodeFlowControl {
					t.Fatalf("stream %d reset with %v, want FLOW_CONTROL_ERROR", rst.StreamID, rst.ErrCode)
				}
				resets++
			}
		case <-deadline:
			t.Fatalf("%d of 8 streams reset in 20 s; want at least 5 (256 KiB hold at most 2 of 96 KiB)", resets)
		}
	}
	h.pingAck()
}

// TestHTTP2CreditSlowLink: a client on a slow link (it reads the socket
// at about 4 MB/s) with wide windows downloads 12 MiB from a node that
// speaks credits, with max-pending-output 1m. The proxy frames no more
// DATA than half of max-pending-output ahead of what the client read, so
// the node waits for credit and the client gets every byte. Before, the
// windows alone paced the node: the proxy queued megabytes for the
// socket and closed the connection as a slow reader.
func TestHTTP2CreditSlowLink(t *testing.T) {
	t.Parallel()
	p, _ := crSetup(t)
	slow := func(c net.Conn) io.Reader { return &crSlowReader{r: c, step: 64 << 10, pause: 15 * time.Millisecond} }
	h := h2fDial(t, p.Addr, slow, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 16 << 20})
	if err := h.fr.WriteWindowUpdate(0, 16<<20); err != nil {
		t.Fatal(err)
	}
	const size = 12 << 20
	h.request(1, fmt.Sprintf("/big?size=%d&seed=7", size))
	if n := h.waitBody(1); n != size {
		t.Fatalf("the body ended after %d of %d bytes (log:\n%s)", n, size, p.Log())
	}
}

// TestHTTP2ResetsByErrors: streams the proxy resets for the client's
// errors count as the client's own resets (http2-max-resets): a request
// (sent on to the node) followed by a WINDOW_UPDATE of 0 on its stream,
// again and again, ends with GOAWAY ENHANCE_YOUR_CALM. Before, only the
// client's RST_STREAMs counted, and every pair cost the node a request
// ("MadeYouReset", CVE-2025-8671).
func TestHTTP2ResetsByErrors(t *testing.T) {
	t.Parallel()
	p := h2aProxy(t, "http2-max-resets = 20\n")
	h := h2lDial(t, p.Addr)
	h.fr.AllowIllegalWrites = true // the increment of 0
	for id := uint32(1); id < 2*60; id += 2 {
		if h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.block("/"), EndStream: true, EndHeaders: true}) != nil ||
			h.fr.WriteWindowUpdate(id, 0) != nil {
			break // closed by the proxy
		}
	}
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("the connection ended without GOAWAY: %v (log:\n%s)", err, p.Log())
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("GOAWAY %v, want ENHANCE_YOUR_CALM", ga.ErrCode)
			}
			return
		}
	}
}

// TestHTTP2SelfDependentHeaders: a HEADERS frame whose stream depends on
// itself is reset (PROTOCOL_ERROR), and its field block still decoded:
// the client's HPACK table, which the block changed, stays in step with
// the proxy's, and the next request, which refers to it, is served.
// Before, the block was skipped, and the next request failed to decode
// (COMPRESSION_ERROR) or reached the node with the wrong fields.
func TestHTTP2SelfDependentHeaders(t *testing.T) {
	t.Parallel()
	p := h2aProxy(t, "")
	h := h2fDial(t, p.Addr, nil)
	fields := [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/sized?n=5"}, {":authority", "x"}, {"x-dynamic", "abc"}}
	block := h.fields(fields) // the dynamic table learns :path and x-dynamic
	h.open(1)
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:3], EndStream: true,
		Priority: http2.PriorityParam{StreamDep: 1, Weight: 15}}); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteContinuation(1, true, block[3:]); err != nil {
		t.Fatal(err)
	}
	if code := h.waitReset(1, 10*time.Second); code != http2.ErrCodeProtocol {
		t.Errorf("the self-dependent stream was reset with %v, want PROTOCOL_ERROR", code)
	}
	h.open(3)
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: h.fields(fields), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if status := h.waitHeaders(3); status != "200" {
		t.Fatalf("the next request: %s", status)
	}
	if n := h.waitBody(3); n != 5 {
		t.Errorf("the next request's body: %d bytes, want 5 (the :path the table held)", n)
	}
}

// TestHTTP2CreditStreamsWindowClosed: twenty downloads from a node that
// speaks credits, on one connection whose client keeps every stream's
// window closed for a while, with max-pending-output 256k: each stream
// holds its credit window (an HTTP/2 stream's is max-pending-output ÷
// http2-max-streams, 16 KiB at least), 320 KiB together, and none is
// reset for the others' (a credit stream's output is bounded by its
// window); once the client opens the windows, every byte arrives. (At
// 73ac6e6 the stream that pushed the connection past max-pending-output
// was reset, and the credit grant that followed its reset dereferenced
// its node, gone with it: the proxy crashed.)
func TestHTTP2CreditStreamsWindowClosed(t *testing.T) {
	t.Parallel()
	p, _ := crSetupOn(t, startProxy(t, "credit-window = 256k\nmax-pending-output = 256k\n", crVHosts))
	h := h2fDial(t, p.Addr, nil, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	if err := h.fr.WriteWindowUpdate(0, 64<<20); err != nil {
		t.Fatal(err)
	}
	const streams, size = 20, 1 << 20
	for i := range streams {
		h.request(uint32(2*i+1), fmt.Sprintf("/big?size=%d&seed=3", size))
	}
	for i := range streams {
		if status := h.waitHeaders(uint32(2*i + 1)); status != "200" {
			t.Fatalf("stream %d: %s", 2*i+1, status)
		}
	}
	h.pingAck() // the proxy holds every stream's window of output, alive
	for i := range streams {
		if err := h.fr.WriteWindowUpdate(uint32(2*i+1), size); err != nil {
			t.Fatal(err)
		}
	}
	for i := range streams {
		if n := h.waitBody(uint32(2*i + 1)); n != size {
			t.Fatalf("stream %d: %d of %d bytes", 2*i+1, n, size)
		}
	}
}

// TestHTTP2EarlyResponseEndsStream: a stream answered before its request
// is complete (an upload the node answers at once), whose client then
// sends nothing on it for idle-timeout, is ended with RST_STREAM
// NO_ERROR (RFC 9113 §8.1): a client that never ends its half holds no
// stream, no node session and no place under http2-max-streams. Before,
// the stream stayed half-closed for as long as the connection lived.
func TestHTTP2EarlyResponseEndsStream(t *testing.T) {
	t.Parallel()
	p := h2aProxy(t, "idle-timeout = 1s\n")
	h := h2fDial(t, p.Addr, nil)
	h.open(1)
	block := h.fields([][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/up"}, {":authority", "x"}, {"content-length", "100000"}})
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	h.data(1, 1000) // and never the rest
	if status := h.waitHeaders(1); status != "200" {
		t.Fatalf("the early answer: %s", status)
	}
	if n := h.waitBody(1); n != 2 {
		t.Errorf("the early answer's body: %d bytes, want 2", n)
	}
	if code := h.waitReset(1, 10*time.Second); code != http2.ErrCodeNo {
		t.Errorf("the stream was reset with %v, want NO_ERROR", code)
	}
}

// TestHTTP2FramesAfterRefusal: a request over http2-max-streams is
// refused (RST_STREAM REFUSED_STREAM); its DATA and trailers, sent before
// the client saw the refusal, are ignored (RFC 9113 §5.1), and the
// connection and its other stream go on. Before, the trailers (HEADERS
// on a closed stream) ended the connection with STREAM_CLOSED, every
// stream with it.
func TestHTTP2FramesAfterRefusal(t *testing.T) {
	t.Parallel()
	p := h2aProxy(t, "http2-max-streams = 1\n")
	h := h2fDial(t, p.Addr, nil, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	h.request(1, "/sized?n=5000") // open while its window stays closed
	if status := h.waitHeaders(1); status != "200" {
		t.Fatalf("stream 1: %s", status)
	}
	h.open(3)
	block := h.fields([][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/up"}, {":authority", "x"}, {"content-length", "10"}})
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	h.data(3, 10)
	trailers := h.fields([][2]string{{"x-trailer", "1"}})
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: trailers, EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if code := h.waitReset(3, 10*time.Second); code != http2.ErrCodeRefusedStream {
		t.Fatalf("stream 3 reset with %v, want REFUSED_STREAM", code)
	}
	h.pingAck() // the trailers did not end the connection
	if err := h.fr.WriteWindowUpdate(1, 5000); err != nil {
		t.Fatal(err)
	}
	if n := h.waitBody(1); n != 5000 {
		t.Errorf("stream 1's body: %d bytes, want 5000", n)
	}
}
