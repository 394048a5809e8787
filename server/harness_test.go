package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/blastbeat/blastbeat/config"
	"github.com/blastbeat/blastbeat/session"
	"github.com/blastbeat/blastbeat/zmqbridge"
)

// fakeRing is the bridge seen by the loops (ringSender): it records what
// is sent and refuses on demand, as a full ring or a stuck node would.
type fakeRing struct {
	mu     sync.Mutex
	sent   []zmqbridge.Msg
	refuse bool         // the ring is full: every TrySend fails
	full   map[int]bool // stuck nodes: NodeFull, and their TrySends fail

	deferred int   // messages taken by TrySendDeferred
	kicks    int   // Kick calls
	wanted   []int // WantRoomFor calls, by node
}

func (r *fakeRing) TrySendDeferred(m *zmqbridge.Msg) bool {
	if !r.TrySend(m) {
		return false
	}
	r.mu.Lock()
	r.deferred++
	r.mu.Unlock()
	return true
}

func (r *fakeRing) Kick() {
	r.mu.Lock()
	r.kicks++
	r.mu.Unlock()
}

func (r *fakeRing) TrySend(m *zmqbridge.Msg) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse || r.full[m.Node] {
		return false
	}
	c := *m
	c.Body = append([]byte(nil), m.Body...)
	r.sent = append(r.sent, c)
	return true
}

func (r *fakeRing) WantRoomFor(n int) {
	r.mu.Lock()
	r.wanted = append(r.wanted, n)
	r.mu.Unlock()
}

func (r *fakeRing) NodeFull(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.full[n]
}

// take returns what was sent since the last take.
func (r *fakeRing) take() []zmqbridge.Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.sent
	r.sent = nil
	return m
}

// fakeLoop is a gnet.EventLoop whose Execute queues the runnable; the
// harness runs the queue, as the loop goroutine would. Any other method
// panics (the embedded interface is nil).
type fakeLoop struct {
	gnet.EventLoop
	queued []gnet.Runnable
}

func (el *fakeLoop) Execute(_ context.Context, r gnet.Runnable) error {
	el.queued = append(el.queued, r)
	return nil
}

// run runs the queued runnables, and the ones they queue; it reports
// whether it ran any.
func (el *fakeLoop) run() bool {
	ran := false
	for len(el.queued) > 0 {
		r := el.queued[0]
		el.queued = el.queued[1:]
		_ = r.Run(context.Background())
		ran = true
	}
	return ran
}

// fakeConn is the client side of a gnet.Conn. It implements what the
// server calls; any other method panics (the embedded interface is nil),
// so a new gnet call shows up here first. Like gnet, Close only asks for
// the close: the harness calls OnClose afterwards.
type fakeConn struct {
	gnet.Conn
	el       *fakeLoop
	ctx      any
	in       []byte // bytes the client sent, not yet discarded
	out      []byte // bytes written to the client
	outbound int    // what OutboundBuffered reports
	paused   bool
	pauses   int // PauseRead calls
	closed   bool
	fd       int    // what Fd reports when above 0 (a real socket a test made), else -1
	linger   *int   // SetLinger's, when called
	onWritev func() // called before each Writev takes the bytes, when set
	// inPlace makes Discard reslice what is left, as gnet does with
	// the bytes of the read in progress, instead of moving and poisoning
	// them (readtarget_test.go: bytes read into a target stay there).
	inPlace bool
}

// Fd is no descriptor: the server skips socket options on it.
func (f *fakeConn) Fd() int {
	if f.fd > 0 {
		return f.fd
	}
	return -1
}

func (f *fakeConn) Context() any              { return f.ctx }
func (f *fakeConn) SetContext(ctx any)        { f.ctx = ctx }
func (f *fakeConn) EventLoop() gnet.EventLoop { return f.el }
func (f *fakeConn) LocalAddr() net.Addr       { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080} }
func (f *fakeConn) RemoteAddr() net.Addr      { return &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 40000} }
func (f *fakeConn) RemoteAddrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, 9}), 40000)
}
func (f *fakeConn) InboundBuffered() int  { return len(f.in) }
func (f *fakeConn) OutboundBuffered() int { return f.outbound }
func (f *fakeConn) ReadPaused() bool      { return f.paused }
func (f *fakeConn) Close() error          { f.closed = true; return nil }

// SetLinger records the close's linger (0: the close resets).
func (f *fakeConn) SetLinger(sec int) error { f.linger = &sec; return nil }
func (f *fakeConn) PauseRead() error        { f.paused = true; f.pauses++; return nil }
func (f *fakeConn) ResumeRead() error       { f.paused = false; return nil }
func (f *fakeConn) Writev(bs [][]byte) (int, error) {
	if f.onWritev != nil {
		f.onWritev()
	}
	n := 0
	for _, b := range bs {
		f.out = append(f.out, b...)
		n += len(b)
	}
	return n, nil
}

// Peek follows gnet: n <= 0 is everything buffered, more than that is
// io.ErrShortBuffer.
func (f *fakeConn) Peek(n int) ([]byte, error) {
	if n > len(f.in) {
		return nil, io.ErrShortBuffer
	}
	if n <= 0 {
		n = len(f.in)
	}
	return f.in[:n], nil
}

// Discard follows gnet (n <= 0 drops everything) and poisons the
// discarded bytes, so that a slice kept past Discard shows up.
func (f *fakeConn) Discard(n int) (int, error) {
	if n <= 0 || n > len(f.in) {
		n = len(f.in)
	}
	if f.inPlace {
		f.in = f.in[n:]
		return n, nil
	}
	rest := append([]byte(nil), f.in[n:]...)
	for i := range f.in {
		f.in[i] = 'X'
	}
	f.in = rest
	return n, nil
}

// harness is one Server with one client connection on fakes.
type harness struct {
	t    testing.TB
	s    *Server
	ring *fakeRing
	fc   *fakeConn
	c    *conn
	sid  session.SID
}

// testOptions are the options of a harness: one catch-all vhost in the
// headers format (the node gets the raw request head) with nodes n1 and
// n2, of which the harness makes only n1 alive.
func testOptions() Options {
	o := Options{Options: config.Defaults(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	o.Binds = []config.Bind{{Addr: "127.0.0.1:0"}}
	o.Workers = 1
	o.VHosts = []config.VHost{{Name: "*", Nodes: []string{"n1", "n2"}, Format: "headers"}}
	return o
}

func newHarness(t testing.TB, opts Options) *harness {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, s: s, ring: &fakeRing{full: map[int]bool{}}}
	s.ring = h.ring
	h.node("n1").Seen(s.now())
	h.fc = &fakeConn{el: &fakeLoop{}}
	if _, act := (*handler)(s).OnOpen(h.fc); act != gnet.None {
		t.Fatalf("OnOpen: action %v", act)
	}
	h.c = h.fc.ctx.(*conn)
	h.sid = h.c.sid
	return h
}

func (h *harness) node(name string) *session.Node {
	n := h.s.rt.Load().nodes.Lookup([]byte(name))
	if n == nil {
		h.t.Fatalf("no node %s", name)
	}
	return n
}

// settle runs what the loop would run next: queued runnables, and
// OnClose for a connection that asked to be closed.
func (h *harness) settle() {
	for {
		ran := h.fc.el.run()
		if h.fc.closed && h.fc.ctx != nil {
			(*handler)(h.s).OnClose(h.fc, nil)
			ran = true
		}
		if !ran {
			return
		}
	}
}

// client sends bytes from the client.
func (h *harness) client(b string) {
	if h.fc.closed {
		return
	}
	h.fc.in = append(h.fc.in, b...)
	if h.fc.paused {
		return // gnet does not read a paused connection
	}
	(*handler)(h.s).OnTraffic(h.fc)
	h.settle()
}

// reply delivers a node's message for the session through the bridge
// handler, as the bridge goroutine would.
func (h *harness) reply(node, typ, body string) {
	bh := h.s.handlers[0]
	bh.Deliver([]byte(node), h.sid[:], []byte(typ), []byte(body), nil)
	bh.Flush()
	h.settle()
}

// undeliverable reports that the bridge could not send a message of type
// typ for the request in flight to node.
func (h *harness) undeliverable(node, typ string) {
	m := zmqbridge.Msg{Node: h.node(node).Index, SID: h.sid, Type: typ, Tag: h.c.reqSeq}
	h.s.handlers[0].Undeliverable(&m, errors.New("test"))
	h.settle()
}

// sweep runs the loop's timeout sweep with the clock at now.
func (h *harness) sweep(now time.Time) {
	h.s.tick(now)
	h.s.loops[0].sweep()
	h.settle()
}

// takeOut returns what the client received since the last call.
func (h *harness) takeOut() []byte {
	b := h.fc.out
	h.fc.out = nil
	return b
}

// parsedResponse is one response the client read, with its body.
type parsedResponse struct {
	*http.Response
	body []byte
}

// readResponses parses b as the responses to GET requests, the way a
// client would. closed says whether the connection was closed after b:
// only then may the last response be cut short (or delimited by the
// close). It returns the responses read and the first framing error.
func readResponses(b []byte, closed bool) ([]parsedResponse, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	var out []parsedResponse
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return out, nil
		}
		req := &http.Request{Method: "GET"}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			if closed && errors.Is(err, io.ErrUnexpectedEOF) {
				return out, nil
			}
			return out, fmt.Errorf("response %d: %w", len(out)+1, err)
		}
		if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
			return out, fmt.Errorf("response %d: version %s", len(out)+1, resp.Proto)
		}
		body, err := io.ReadAll(resp.Body)
		out = append(out, parsedResponse{resp, body})
		switch {
		case err != nil && closed && errors.Is(err, io.ErrUnexpectedEOF):
			return out, nil
		case err != nil:
			return out, fmt.Errorf("response %d body: %w", len(out), err)
		case resp.Close && !closed:
			return out, fmt.Errorf("response %d says close but the connection is open", len(out))
		case resp.Close:
			if rest, _ := io.ReadAll(br); len(rest) > 0 {
				return out, fmt.Errorf("%d bytes after a response that closes", len(rest))
			}
			return out, nil
		}
	}
}

// finals drops interim (1xx) responses.
func finals(rs []parsedResponse) []parsedResponse {
	var out []parsedResponse
	for _, r := range rs {
		if r.StatusCode >= 200 {
			out = append(out, r)
		}
	}
	return out
}
