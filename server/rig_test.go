package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"unsafe"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/protocol"
	"github.com/blastbeat/blastbeat/session"
	"github.com/blastbeat/blastbeat/zmqbridge"
)

// The allocation tests drive one connection through the per-request and
// per-message paths and count allocations (testing.AllocsPerRun), in the
// files built without -race (the race detector allocates); the rig here
// serves other tests too. The fakes below stand in
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

// expectRoundNoAllocs is expectNoAllocs for a round that writes to the
// client what it wrote the first time it ran.
func (r *allocRig) expectRoundNoAllocs(name string, round func()) {
	before := r.fc.wrote
	round()
	r.expectNoAllocs(name, r.fc.wrote-before, round)
}

// h2AllocRig is allocRig on an HTTP/2 connection: each round opens a new
// stream, whose session the node's reply is addressed to.
type h2AllocRig struct {
	*allocRig
	c      *conn
	nextID uint32
}

func newH2AllocRig(t *testing.T) *h2AllocRig {
	r := &h2AllocRig{allocRig: newAllocRig(t, "headers"), nextID: 1}
	var pre bytes.Buffer
	pre.WriteString(protocol.H2Preface)
	if err := http2.NewFramer(&pre, nil).WriteSettings(); err != nil {
		t.Fatal(err)
	}
	r.client(pre.Bytes())
	r.c = r.fc.ctx.(*conn)
	if r.c.h2 == nil {
		t.Fatal("the connection did not turn HTTP/2")
	}
	return r
}

// h2Frames is a client's frames for one request, as a client that
// indexes its fields sends them: the first time with literals (first),
// which enter the decoder's dynamic table, and from then on as references
// to the table (again). Each round sends the same bytes with only the
// stream identifiers patched (at the offsets in ids).
type h2Frames struct {
	first, again *h2FrameSet
}

type h2FrameSet struct {
	b   []byte
	ids []int
}

// newH2Frames encodes with enc, the encoder of every block the connection
// is sent, in the order they are sent.
func newH2Frames(t *testing.T, enc *hpack.Encoder, hb *bytes.Buffer, fields [][2]string, body []byte, windowUpdate uint32) *h2Frames {
	set := func() *h2FrameSet {
		hb.Reset()
		for _, f := range fields {
			if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
				t.Fatal(err)
			}
		}
		var out bytes.Buffer
		fr := http2.NewFramer(&out, nil)
		fs := &h2FrameSet{}
		if windowUpdate > 0 { // the connection's window, for the response's DATA
			if err := fr.WriteWindowUpdate(0, windowUpdate); err != nil {
				t.Fatal(err)
			}
		}
		fs.ids = append(fs.ids, out.Len()+5)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: body == nil, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if body != nil {
			fs.ids = append(fs.ids, out.Len()+5)
			if err := fr.WriteData(1, true, body); err != nil {
				t.Fatal(err)
			}
		}
		fs.b = out.Bytes()
		return fs
	}
	first := set()
	return &h2Frames{first: first, again: set()}
}

// request sends f on the next stream and returns that stream's session.
func (r *h2AllocRig) request(f *h2FrameSet) session.SID {
	id := r.nextID
	r.nextID += 2
	for _, off := range f.ids {
		binary.BigEndian.PutUint32(f.b[off:], id)
	}
	r.client(f.b)
	st := r.c.h2.streams[id]
	if st == nil {
		r.t.Fatalf("stream %d did not open", id)
	}
	return st.sid
}
