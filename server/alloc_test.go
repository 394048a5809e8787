//go:build !race

package server

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"unsafe"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/session"
	"github.com/blastbeat/blastbeat/zmqbridge"
)

// The allocation tests drive one connection through the per-request and
// per-message paths and count allocations (testing.AllocsPerRun). Built
// without -race: the race detector allocates. The fakes below stand in
// for what is not the proxy's own code: a bridge that takes every
// message at once and gives its pooled buffer back (as the real one does
// once libzmq has the bytes), a gnet loop that runs what it is handed at
// once, and a client that reads everything.

type takeAllRing struct {
	sent int
	last unsafe.Pointer // the bytes of the last message's pooled buffer
}

func (r *takeAllRing) TrySend(m *zmqbridge.Msg) bool {
	r.sent++
	r.last = nil
	if m.Buf != nil {
		r.last = unsafe.Pointer(unsafe.SliceData(m.Buf.B))
	}
	m.Buf.Release()
	return true
}
func (r *takeAllRing) TrySendDeferred(m *zmqbridge.Msg) bool { return r.TrySend(m) }
func (r *takeAllRing) Kick()                                 {}
func (r *takeAllRing) WantRoomFor(int)                       {}
func (r *takeAllRing) NodeFull(int) bool                     { return false }

type atOnceLoop struct{ gnet.EventLoop }

func (atOnceLoop) Execute(_ context.Context, r gnet.Runnable) error {
	return r.Run(context.Background())
}

// readAllConn is a client that reads everything at once. Its input is a
// fixed request, set before each OnTraffic, so the client allocates
// nothing either.
type readAllConn struct {
	fakeConn
	wrote         int
	local, remote net.Addr
}

func (f *readAllConn) EventLoop() gnet.EventLoop { return atOnceLoop{} }

// Its addresses are made once, as gnet makes them (fakeConn makes them
// anew on every call).
func (f *readAllConn) LocalAddr() net.Addr  { return f.local }
func (f *readAllConn) RemoteAddr() net.Addr { return f.remote }
func (f *readAllConn) RemoteAddrPort() netip.AddrPort {
	return f.remote.(*net.TCPAddr).AddrPort()
}
func (f *readAllConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	f.wrote += n
	return n, nil
}
func (f *readAllConn) Discard(n int) (int, error) {
	if n <= 0 || n > len(f.in) {
		n = len(f.in)
	}
	f.in = f.in[n:]
	return n, nil
}

type allocRig struct {
	t    *testing.T
	s    *Server
	ring *takeAllRing
	fc   *readAllConn
	sid  session.SID
	node []byte
	bufs bufpool.Pool // the bridge's receive buffers
}

func newAllocRig(t *testing.T, format string) *allocRig {
	o := testOptions()
	o.VHosts[0].Format = format
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	fc := &readAllConn{local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080},
		remote: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 40000}}
	r := &allocRig{t: t, s: s, ring: &takeAllRing{}, fc: fc, node: []byte("n1")}
	s.ring = r.ring
	s.rt.Load().nodes.Lookup(r.node).Seen(s.now())
	if _, act := (*handler)(s).OnOpen(r.fc); act != gnet.None {
		t.Fatalf("OnOpen: %v", act)
	}
	r.sid = r.fc.ctx.(*conn).sid
	return r
}

// client sends b (kept by the caller: not copied).
func (r *allocRig) client(b []byte) {
	r.fc.in = b
	(*handler)(r.s).OnTraffic(r.fc)
}

// reply delivers the node's messages, one bridge batch in one pooled
// receive buffer, as zmqio.RecvPooled hands them over: the batch's own
// reference is given back once every message was delivered.
func (r *allocRig) reply(typ []byte, bodies ...[]byte) {
	bh := r.s.handlers[0]
	n := 0
	for _, b := range bodies {
		n += len(b)
	}
	buf := r.bufs.Get(n + 1)
	off := 0
	for _, b := range bodies {
		m := copy(buf.B[off:], b)
		bh.Deliver(r.node, r.sid[:], typ, buf.B[off:off+m:off+m], buf)
		off += m
	}
	buf.Release()
	bh.Flush()
}

// expectNoAllocs runs warm-up rounds, checks that a round writes want
// bytes to the client, then counts allocations.
func (r *allocRig) expectNoAllocs(name string, want int, round func()) {
	r.t.Helper()
	if want <= 0 {
		r.t.Fatalf("%s: a round wrote nothing to the client", name)
	}
	for i := 0; i < 3; i++ {
		round() // the tables and buffers grow to their size
	}
	before := r.fc.wrote
	round()
	if got := r.fc.wrote - before; got != want {
		r.t.Fatalf("%s: a round wrote %d bytes to the client, want %d", name, got, want)
	}
	if allocs := testing.AllocsPerRun(200, round); allocs != 0 {
		r.t.Errorf("%s: %.1f allocations per round, want 0", name, allocs)
	}
}

// TestRequestAllocs: a keep-alive request (head and body to the node, in
// pooled buffers) and its response (head rewritten into the loop's
// arena) allocate nothing, in both request formats, with a body, and
// with a chunked response.
func TestRequestAllocs(t *testing.T) {
	get := []byte("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: alloc-test\r\n\r\n")
	post := []byte("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + strings.Repeat("b", 3000))
	hello := []byte("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!")
	headers, chunkT := []byte("headers"), []byte("chunk")
	streamHead := []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := []byte(strings.Repeat("x", 1024))
	for _, format := range []string{"headers", "uwsgi"} {
		t.Run(format, func(t *testing.T) {
			r := newAllocRig(t, format)
			r.expectRoundNoAllocs("GET", func() { r.client(get); r.reply(headers, hello) })
			r.expectRoundNoAllocs("POST", func() { r.client(post); r.reply(headers, hello) })
			// A 64 KiB POST read straight into a pooled read target
			// (readtarget.go), inside a gnet turn whose end gives the
			// target back: the body message carries the target itself.
			hd, el := (*handler)(r.s), r.fc.EventLoop()
			big := []byte("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n" + strings.Repeat("b", 60000))
			r.client(big) // the connection now reads its next head into a target
			r.reply(headers, hello)
			r.expectRoundNoAllocs("POST into a read target", func() {
				hd.OnTurnStart(el)
				tgt := hd.ReadTarget(r.fc)
				if len(tgt) < len(big) {
					t.Fatalf("read target of %d bytes for a %d-byte request", len(tgt), len(big))
				}
				r.client(tgt[:copy(tgt, big)])
				if r.ring.last != unsafe.Pointer(unsafe.SliceData(tgt)) {
					t.Fatal("the body was not sent in its read target")
				}
				r.reply(headers, hello)
				hd.OnTurnEnd(el)
			})
			for _, tc := range []struct {
				name   string
				chunks int
			}{
				{"chunked response", 16},
				// A burst over one arena chunk in one loop turn: the
				// chunks filled are reused after the flush, not left to
				// the collector.
				{"burst of 100 KiB", 100},
			} {
				chunks := make([][]byte, tc.chunks+1) // and the empty last one
				for i := range chunks[:tc.chunks] {
					chunks[i] = chunk
				}
				chunks[tc.chunks] = []byte{}
				r.expectRoundNoAllocs(tc.name, func() {
					r.client(get)
					r.reply(headers, streamHead)
					r.reply(chunkT, chunks...)
				})
			}
		})
	}
}

// expectRoundNoAllocs is expectNoAllocs for a round that writes to the
// client what it wrote the first time it ran.
func (r *allocRig) expectRoundNoAllocs(name string, round func()) {
	before := r.fc.wrote
	round()
	r.expectNoAllocs(name, r.fc.wrote-before, round)
}

// TestWebSocketAllocs: a message each way on an open WebSocket allocates
// nothing: the node's is framed in the arena, the client's unmasked into
// a pooled buffer that its message to the node carries.
func TestWebSocketAllocs(t *testing.T) {
	r := newAllocRig(t, "headers")
	r.client([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	if c := r.fc.ctx.(*conn); c.m != (wsMachine{}) {
		t.Fatalf("not upgraded: machine %T", c.m)
	}
	msg := []byte("a message from the node")
	wsT := []byte("websocket")
	r.expectNoAllocs("node to client", len(msg)+2, func() { r.reply(wsT, msg) })
	payload := []byte("a message from the client")
	frame := append([]byte{0x81, 0x80 | byte(len(payload)), 1, 2, 3, 4}, payload...)
	ws.Cipher(frame[6:], [4]byte{1, 2, 3, 4}, 0)
	sent := r.ring.sent
	r.client(frame)
	if r.ring.sent != sent+1 {
		t.Fatalf("the client's message did not go to the node: %d sent", r.ring.sent-sent)
	}
	if allocs := testing.AllocsPerRun(200, func() { r.client(frame) }); allocs != 0 {
		t.Errorf("client to node: %.1f allocations per message, want 0", allocs)
	}
}
