package zmqio

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/internal/bufpool"
)

// lentCount returns how many bodies b has lent.
func lentCount(b *Batcher) int {
	n, _ := b.Lent()
	return n
}

// lendN sends n bodies of MinRefBody bytes to identity n1 with SendRef,
// as the bridge does (the message's reference given back once sent), and
// returns their buffers with a reference of the caller's each.
func lendN(t testing.TB, b *Batcher, n int) []*bufpool.Buf {
	t.Helper()
	var bufs []*bufpool.Buf
	for i := 0; i < n; i++ {
		buf := bufpool.Wrap(make([]byte, MinRefBody))
		buf.Retain()
		if err := b.SendRef([]byte("n1"), nil, "body", buf.B, buf); err != nil {
			t.Fatal(err)
		}
		buf.Release()
		bufs = append(bufs, buf)
	}
	return bufs
}

// reclaimAll reclaims until b has nothing lent, or fails t after 5 s.
// It reads ZMQ_EVENTS each time round, as the bridge does: libzmq's
// socket processes its commands (a peer's pipe ending, which drops the
// messages queued for it) only when its owner calls it.
func reclaimAll(t testing.TB, b *Batcher) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); lentCount(b) > 0; {
		if b.Reclaim() > 0 {
			continue
		}
		b.Events()
		if time.Now().After(deadline) {
			t.Fatalf("libzmq still holds %d bodies", lentCount(b))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSendRef: the body goes out by reference, not copied: a change to
// the buffer after SendRef and before the peer reads it arrives (inproc
// hands the message over as it is). The reference libzmq held comes back
// through Reclaim once the peer has read the message.
func TestSendRef(t *testing.T) {
	router, dealer := pair(t)
	rb := batcher(t, router, 4)
	const n = 8
	var pool bufpool.Pool
	bufs := make([]*bufpool.Buf, n)
	for i := range bufs {
		bufs[i] = pool.Get(MinRefBody + i)
		for k := range bufs[i].B {
			bufs[i].B[k] = byte('a' + i)
		}
		bufs[i].Retain() // the test's own, to look at the buffer after
		if err := rb.SendRef([]byte("n1"), []byte("sid"), "body", bufs[i].B, bufs[i]); err != nil {
			t.Fatal(err)
		}
		bufs[i].Release() // the message's, as the bridge gives it back
		if got := bufs[i].Refs(); got != 2 {
			t.Fatalf("buffer %d holds %d references after SendRef, want 2 (the test's, libzmq's)", i, got)
		}
	}
	if lentCount(rb) != n {
		t.Fatalf("Lent = %d, want %d", lentCount(rb), n)
	}
	bufs[0].B[0] = 'Z' // lent, so the peer sees it
	dealer.SetRcvtimeo(5 * time.Second)
	for i := 0; i < n; i++ {
		m, err := dealer.RecvMessageBytes(0)
		if err != nil || len(m) != 3 || string(m[0]) != "sid" || string(m[1]) != "body" {
			t.Fatalf("message %d: %q %v", i, m, err)
		}
		want := bytes.Repeat([]byte{byte('a' + i)}, MinRefBody+i)
		if i == 0 {
			want[0] = 'Z'
		}
		if !bytes.Equal(m[2], want) {
			t.Fatalf("message %d: body differs (%d bytes, first %q)", i, len(m[2]), m[2][:1])
		}
	}
	reclaimAll(t, rb)
	for i, b := range bufs {
		if got := b.Refs(); got != 1 {
			t.Errorf("buffer %d holds %d references after Reclaim, want 1", i, got)
		}
		b.Release()
	}
}

// TestSendRefRefused: a message refused at its first frame (an unknown
// identity) lends nothing: its reference comes back in the next Reclaim.
func TestSendRefRefused(t *testing.T) {
	router, _ := pair(t)
	rb := batcher(t, router, 4)
	buf := bufpool.Wrap(make([]byte, MinRefBody))
	err := rb.SendRef([]byte("nobody"), []byte("sid"), "body", buf.B, buf)
	var se *SendError
	if !errors.As(err, &se) || se.Errno != syscall.EHOSTUNREACH {
		t.Fatalf("SendRef to an unknown identity = %v, want EHOSTUNREACH", err)
	}
	if got := rb.Reclaim(); got != 1 || lentCount(rb) != 0 || buf.Refs() != 1 {
		t.Fatalf("Reclaim = %d, Lent = %d, refs = %d; want 1, 0, 1", got, lentCount(rb), buf.Refs())
	}
}

// TestSendRefPeerGone: bodies queued for a peer that never reads them are
// given back once it disconnects and libzmq drops them. Close, after the
// socket closed, waits for those still queued: here an inproc peer reads
// them meanwhile (over TCP, linger 0 drops them).
func TestSendRefPeerGone(t *testing.T) {
	for _, closeRouter := range []bool{false, true} {
		router, dealer := pair(t)
		b, err := New(router, 4)
		if err != nil {
			t.Fatal(err)
		}
		b.refs.closeWait = 10 * time.Second // the reader runs beside the whole suite
		bufs := lendN(t, b, 16)
		if lentCount(b) != 16 {
			t.Fatalf("Lent = %d, want 16", lentCount(b))
		}
		if closeRouter {
			router.Close()
			read := make(chan error, 1)
			go func() {
				dealer.SetRcvtimeo(5 * time.Second)
				for i := 0; i < 16; i++ {
					if _, err := dealer.RecvMessageBytes(0); err != nil {
						read <- err
						return
					}
				}
				read <- nil
			}()
			left := b.Close()
			if err := <-read; err != nil {
				t.Fatal(err)
			}
			if left != 0 {
				t.Fatalf("Close: %d bodies not given back", left)
			}
		} else {
			dealer.Close()
			reclaimAll(t, b)
			b.Close()
		}
		for i, buf := range bufs {
			if got := buf.Refs(); got != 1 {
				t.Fatalf("close router %v: buffer %d holds %d references, want 1", closeRouter, i, got)
			}
		}
	}
}

// TestSendRefHWM: at the peer's high-water mark SendRef says EAGAIN and
// lends nothing more; what it lent comes back as the peer reads.
func TestSendRefHWM(t *testing.T) {
	router, _ := zmq.NewSocket(zmq.ROUTER)
	router.SetRouterMandatory(1)
	router.SetLinger(0)
	router.SetSndhwm(2) // before the bind and connect: pipes take it then
	ep := fmt.Sprintf("inproc://zmqio-hwm-%d", time.Now().UnixNano())
	if err := router.Bind(ep); err != nil {
		t.Fatal(err)
	}
	dealer, _ := zmq.NewSocket(zmq.DEALER)
	dealer.SetIdentity("n1")
	dealer.SetLinger(0)
	dealer.SetRcvhwm(2)
	if err := dealer.Connect(ep); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dealer.Close(); router.Close() })
	rb := batcher(t, router, 4)
	body := make([]byte, MinRefBody)
	sent := 0
	for ; sent < 100; sent++ {
		buf := bufpool.Wrap(body)
		err := rb.SendRef([]byte("n1"), nil, "body", buf.B, buf)
		buf.Release()
		if err == nil {
			continue
		}
		var se *SendError
		if !errors.As(err, &se) || se.Errno != syscall.EAGAIN {
			t.Fatalf("SendRef %d = %v, want EAGAIN at the high-water mark", sent, err)
		}
		break
	}
	if sent == 100 {
		t.Fatal("never met the high-water mark")
	}
	rb.Reclaim() // the refused one
	if lentCount(rb) != sent {
		t.Fatalf("Lent = %d, want %d", lentCount(rb), sent)
	}
	dealer.SetRcvtimeo(5 * time.Second)
	for i := 0; i < sent; i++ {
		if _, err := dealer.RecvMessageBytes(0); err != nil {
			t.Fatal(err)
		}
	}
	reclaimAll(t, rb)
}

// TestSendRefOverTCP: over TCP the body is written out from the lent
// buffer by libzmq's I/O thread, which gives it back from there.
func TestSendRefOverTCP(t *testing.T) {
	router, _ := zmq.NewSocket(zmq.ROUTER)
	router.SetRouterMandatory(1)
	router.SetLinger(0)
	if err := router.Bind("tcp://127.0.0.1:*"); err != nil {
		t.Fatal(err)
	}
	ep, _ := router.GetLastEndpoint()
	dealer, _ := zmq.NewSocket(zmq.DEALER)
	dealer.SetIdentity("n1")
	dealer.SetLinger(0)
	dealer.Connect(ep)
	defer func() { dealer.Close(); router.Close() }()
	rb := batcher(t, router, 4)
	// The dealer says hello so that the router knows its identity.
	dealer.SendMessage("", "hello", "")
	router.SetRcvtimeo(5 * time.Second)
	if _, err := router.RecvMessageBytes(0); err != nil {
		t.Fatal(err)
	}
	const n = 64
	var pool bufpool.Pool
	for i := 0; i < n; i++ {
		buf := pool.Get(64 << 10)
		for k := range buf.B {
			buf.B[k] = byte(i)
		}
		if err := rb.SendRef([]byte("n1"), []byte("sid"), "body", buf.B, buf); err != nil {
			t.Fatal(err)
		}
		buf.Release()
	}
	dealer.SetRcvtimeo(5 * time.Second)
	for i := 0; i < n; i++ {
		m, err := dealer.RecvMessageBytes(0)
		if err != nil || len(m) != 3 || len(m[2]) != 64<<10 || m[2][0] != byte(i) || m[2][len(m[2])-1] != byte(i) {
			t.Fatalf("message %d: %d frames, %v", i, len(m), err)
		}
	}
	reclaimAll(t, rb)
}

// TestSendRefMaxLent: past SetMaxLent's bound a body is copied, not lent,
// and lending resumes as libzmq gives bodies back.
func TestSendRefMaxLent(t *testing.T) {
	router, dealer := pair(t)
	rb := batcher(t, router, 4)
	rb.SetMaxLent(3 * MinRefBody)
	send := func() *bufpool.Buf {
		buf := bufpool.Wrap(make([]byte, MinRefBody))
		if err := rb.SendRef([]byte("n1"), nil, "body", buf.B, buf); err != nil {
			t.Fatal(err)
		}
		return buf
	}
	var bufs []*bufpool.Buf
	for i := 0; i < 5; i++ {
		bufs = append(bufs, send())
	}
	if n, bytes := rb.Lent(); n != 3 || bytes != 3*MinRefBody {
		t.Fatalf("Lent = %d, %d bytes; want 3, %d", n, bytes, 3*MinRefBody)
	}
	for i, buf := range bufs {
		if want := map[bool]int{true: 2, false: 1}[i < 3]; buf.Refs() != want {
			t.Fatalf("body %d holds %d references, want %d", i, buf.Refs(), want)
		}
	}
	dealer.SetRcvtimeo(5 * time.Second)
	for i := 0; i < 5; i++ {
		if _, err := dealer.RecvMessageBytes(0); err != nil {
			t.Fatal(err)
		}
	}
	reclaimAll(t, rb)
	if buf := send(); buf.Refs() != 2 {
		t.Fatalf("after the bodies came back: %d references, want 2 (lent)", buf.Refs())
	}
	if _, err := dealer.RecvMessageBytes(0); err != nil {
		t.Fatal(err)
	}
	reclaimAll(t, rb)
}

// TestSendRefCloseLate: bodies libzmq still holds when Close gives up
// waiting stay pinned and referenced, and are given back once it lets go
// of them (here: an inproc peer reads them after Close returned).
func TestSendRefCloseLate(t *testing.T) {
	router, dealer := pair(t)
	b, err := New(router, 4)
	if err != nil {
		t.Fatal(err)
	}
	b.refs.closeWait = time.Millisecond
	bufs := lendN(t, b, 4)
	router.Close()
	if left := b.Close(); left != 4 {
		t.Fatalf("Close: %d bodies still lent, want 4 (the peer has read none)", left)
	}
	for _, buf := range bufs {
		if buf.Refs() != 2 {
			t.Fatalf("a body still lent holds %d references, want 2", buf.Refs())
		}
	}
	dealer.SetRcvtimeo(5 * time.Second)
	for i := 0; i < 4; i++ {
		if _, err := dealer.RecvMessageBytes(0); err != nil {
			t.Fatal(err)
		}
	}
	for i, buf := range bufs {
		for deadline := time.Now().Add(5 * time.Second); buf.Refs() != 1; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("body %d: %d references 5 s after the peer read it, want 1", i, buf.Refs())
			}
		}
	}
}

// TestSendRefUnpooled: bytes with no pooled buffer are copied, as SendOne
// does: nothing is lent.
func TestSendRefUnpooled(t *testing.T) {
	router, dealer := pair(t)
	rb := batcher(t, router, 4)
	body := bytes.Repeat([]byte("u"), MinRefBody)
	if err := rb.SendRef([]byte("n1"), nil, "body", body, nil); err != nil {
		t.Fatal(err)
	}
	if n := lentCount(rb); n != 0 {
		t.Fatalf("Lent = %d for an unpooled body, want 0", n)
	}
	dealer.SetRcvtimeo(5 * time.Second)
	if m, err := dealer.RecvMessageBytes(0); err != nil || !bytes.Equal(m[2], body) {
		t.Fatalf("peer got %d frames, %v", len(m), err)
	}
}
