// Package zmqio moves batches of multipart ZeroMQ messages across cgo in
// one call each way, on a socket opened with github.com/pebbe/zmq4
// (which crosses cgo several times per frame). The socket's owner
// goroutine is the only one that may use a Batcher of it.
package zmqio

/*
#cgo pkg-config: libzmq
#include "batch.h"
*/
import "C"

import (
	"errors"
	"reflect"
	"syscall"
	"unsafe"

	zmq "github.com/pebbe/zmq4"

	"github.com/blastbeat/blastbeat/internal/bufpool"
)

// MaxMessages is the most messages one Recv returns.
const MaxMessages = C.BB_MAXMSGS

// Limits of one batch.
const (
	maxFrames = C.BB_MAXFRAMES
	// maxRecvBytes stops a receive batch once it holds this much, so one
	// batch's single allocation stays modest.
	maxRecvBytes = 256 << 10
)

// Batcher batches I/O on one socket of Frames frames per message.
type Batcher struct {
	sock   unsafe.Pointer // the libzmq socket behind the pebbe socket
	frames int
	b      *C.bb_batch
	sizes  [C.BB_MAXMSGS * C.BB_MAXFRAMES]C.size_t
	// out receives bb_recv's and bb_send's results (in the Batcher, not
	// on the stack: a pointer passed to cgo makes a local escape).
	out [2]C.int
	fr  [maxFrames][]byte
	// rbuf is RecvReuse's buffer (at most maxRecvBytes plus one message).
	rbuf []byte
	// send side
	lens []C.uint32_t
	buf  []byte
	n    int
	// refs are the bodies lent to libzmq by SendRef.
	refs refs
}

// socketHandle returns libzmq's socket pointer inside a pebbe socket.
// pebbe/zmq4 keeps it unexported; the version is pinned in go.mod and
// TestHandle checks the field is still there.
func socketHandle(s *zmq.Socket) unsafe.Pointer {
	f := reflect.ValueOf(s).Elem().FieldByName("soc")
	if !f.IsValid() || f.Kind() != reflect.UnsafePointer {
		return nil
	}
	return f.UnsafePointer()
}

// ErrNoHandle means the pebbe socket's layout changed.
var ErrNoHandle = errors.New("zmqio: cannot reach the libzmq socket of a pebbe/zmq4 socket")

// New returns a Batcher for messages of frames frames (1..4) on s.
func New(s *zmq.Socket, frames int) (*Batcher, error) {
	h := socketHandle(s)
	if h == nil {
		return nil, ErrNoHandle
	}
	if frames < 1 || frames > maxFrames {
		return nil, errors.New("zmqio: frames must be 1..4")
	}
	bb := C.bb_batch_new()
	if bb == nil {
		return nil, errors.New("zmqio: out of memory for the batch buffers")
	}
	return &Batcher{sock: h, frames: frames, b: bb,
		refs: refs{maxLent: DefaultMaxLent, closeWait: defaultCloseWait}}, nil
}

// Close frees the batch memory (not the socket). When bodies were lent
// with SendRef, close the socket first (with linger 0): Close waits up to
// a second for libzmq to give them back, and returns how many it still
// holds then (a goroutine keeps those pinned and takes them back when
// libzmq lets go of them).
func (b *Batcher) Close() (notReturned int) {
	notReturned = b.closeRefs()
	if b.b != nil {
		C.bb_batch_free(b.b)
		b.b = nil
	}
	return notReturned
}

// Events are ZMQ_EVENTS bits.
type Events int

// Readable and Writable test ZMQ_POLLIN and ZMQ_POLLOUT.
func (e Events) Readable() bool { return e&C.ZMQ_POLLIN != 0 }
func (e Events) Writable() bool { return e&C.ZMQ_POLLOUT != 0 }

// Events reads ZMQ_EVENTS (which also lets libzmq process its commands,
// as the edge-triggered ZMQ_FD requires).
func (b *Batcher) Events() Events { return Events(C.bb_events(b.sock)) }

// Recv receives up to max whole messages without blocking and calls fn
// for each with its frames. The frames of one batch share one fresh
// allocation, owned by fn's callee. It returns the number of messages,
// messages dropped for a wrong frame count, and whether more may wait
// (the batch stopped at a limit, not because libzmq had nothing more).
// It does not read ZMQ_EVENTS: a caller that sleeps on the socket's
// ZMQ_FD reads Events first, as the edge-triggered descriptor requires.
func (b *Batcher) Recv(max int, fn func(frames [][]byte)) (n, dropped int, more bool) {
	return b.recv(max, fn, false)
}

// RecvReuse is Recv for a callee that keeps nothing: the frames are valid
// only during fn, and every batch reuses one buffer, so a steady stream
// of messages allocates nothing.
func (b *Batcher) RecvReuse(max int, fn func(frames [][]byte)) (n, dropped int, more bool) {
	return b.recv(max, fn, true)
}

// MinPooledBatch is the smallest receive batch RecvPooled puts in a
// pooled buffer. A smaller one is allocated as Recv does: its garbage
// costs the collector little, less than a pool round trip between the
// bridge's thread and a loop's and a counted reference per message (on 2
// cores, pooling every batch cost the WebSocket echo row, whose batches
// are a few hundred bytes, a tenth of its rate).
const MinPooledBatch = 4 << 10

// RecvPooled is Recv into a buffer lent by pool when the batch holds at
// least MinPooledBatch bytes: the frames of every message of the batch
// lie in buf, which holds them only while fn runs. A callee that keeps a
// message's bytes takes a reference (buf.Retain) and gives it back
// (buf.Release) once it no longer needs them; the buffer goes back to
// the pool with the last reference. A smaller batch comes with a nil buf:
// its frames are freshly allocated and the callee's, as with Recv. A
// steady stream of big batches whose callee gives its references back
// allocates nothing.
func (b *Batcher) RecvPooled(max int, pool *bufpool.Pool, fn func(frames [][]byte, buf *bufpool.Buf)) (n, dropped int, more bool) {
	n, dropped, more, total := b.recvBatch(max)
	if n == 0 {
		return n, dropped, more
	}
	if total < MinPooledBatch {
		b.split(n, make([]byte, total+1), func(f [][]byte) { fn(f, nil) })
		return n, dropped, more
	}
	buf := pool.Get(total + 1) // +1: never a zero-length base pointer
	b.split(n, buf.B, func(f [][]byte) { fn(f, buf) })
	buf.Release() // the batch's own reference
	return n, dropped, more
}

// recvBatch receives up to max messages into libzmq's messages and
// returns how many, and their total size.
func (b *Batcher) recvBatch(max int) (n, dropped int, more bool, total int) {
	if max > MaxMessages {
		max = MaxMessages
	}
	cn := C.bb_recv(b.sock, b.b, C.int(b.frames), C.int(max), maxRecvBytes, &b.sizes[0], &b.out[0], &b.out[1])
	n, dropped, more = int(cn), int(b.out[0]), b.out[1] != 0
	for i := 0; i < n*b.frames; i++ {
		total += int(b.sizes[i])
	}
	return n, dropped, more, total
}

// split copies the n messages received into buf and calls fn with each
// one's frames, which lie in buf.
func (b *Batcher) split(n int, buf []byte, fn func(frames [][]byte)) {
	nf := n * b.frames
	C.bb_copy(b.b, C.int(nf), (*C.char)(unsafe.Pointer(&buf[0])))
	frames := &b.fr // not a local: fn's argument would move it to the heap
	off := 0
	for m := 0; m < n; m++ {
		for f := 0; f < b.frames; f++ {
			sz := int(b.sizes[m*b.frames+f])
			frames[f] = buf[off : off+sz : off+sz]
			off += sz
		}
		fn(frames[:b.frames])
	}
	*frames = [maxFrames][]byte{}
}

func (b *Batcher) recv(max int, fn func(frames [][]byte), reuse bool) (n, dropped int, more bool) {
	n, dropped, more, total := b.recvBatch(max)
	if n == 0 {
		return n, dropped, more
	}
	var buf []byte
	if reuse {
		if cap(b.rbuf) < total+1 {
			b.rbuf = make([]byte, total+1)
		}
		buf = b.rbuf[:total+1]
	} else {
		buf = make([]byte, total+1) // +1: never a zero-length base pointer
	}
	b.split(n, buf, fn)
	return n, dropped, more
}

// Add appends one message to the send batch; the frames are copied.
func (b *Batcher) Add(frames ...[]byte) {
	for _, f := range frames {
		b.lens = append(b.lens, C.uint32_t(len(f)))
		b.buf = append(b.buf, f...)
	}
	b.n++
}

// Pending returns the messages and bytes added since the last Send.
func (b *Batcher) Pending() (msgs, bytes int) { return b.n, len(b.buf) }

// SendError is a send failure: Errno is the cause (EAGAIN: high-water
// mark; EHOSTUNREACH: unknown identity under ROUTER_MANDATORY); Index is
// the message of the batch that failed.
type SendError struct {
	Errno syscall.Errno
	Index int
}

func (e *SendError) Error() string { return "zmqio: send: " + e.Errno.Error() }

// Send sends the batch without blocking. It returns how many messages
// went out, and a *SendError when a message failed; the messages from
// the failed one on are dropped from the batch. Like Recv, it does not
// read ZMQ_EVENTS.
func (b *Batcher) Send() (sent int, err error) {
	if b.n == 0 {
		return 0, nil
	}
	if len(b.buf) == 0 {
		b.buf = append(b.buf, 0)
	}
	cs := C.bb_send(b.sock, (*C.char)(unsafe.Pointer(&b.buf[0])), &b.lens[0], C.int(b.frames), C.int(b.n), &b.out[0])
	cerr := b.out[0]
	sent = int(cs)
	if cerr != 0 {
		e := cerr
		if e < 0 {
			e = -e
		}
		err = &SendError{Errno: syscall.Errno(e), Index: sent}
	}
	b.lens, b.buf, b.n = b.lens[:0], b.buf[:0], 0
	if cap(b.buf) > 4<<20 {
		b.buf = nil // do not keep a huge buffer after a burst of big bodies
	}
	return sent, err
}

// AddTyped appends one 4-frame message whose third frame is a string,
// without converting it.
func (b *Batcher) AddTyped(id, sid []byte, typ string, body []byte) {
	b.lens = append(b.lens, C.uint32_t(len(id)), C.uint32_t(len(sid)), C.uint32_t(len(typ)), C.uint32_t(len(body)))
	b.buf = append(b.buf, id...)
	b.buf = append(b.buf, sid...)
	b.buf = append(b.buf, typ...)
	b.buf = append(b.buf, body...)
	b.n++
}

// AddMessage appends one 3-frame DEALER message [sid, typ, body] whose
// type is a string, without converting it.
func (b *Batcher) AddMessage(sid []byte, typ string, body []byte) {
	b.lens = append(b.lens, C.uint32_t(len(sid)), C.uint32_t(len(typ)), C.uint32_t(len(body)))
	b.buf = append(b.buf, sid...)
	b.buf = append(b.buf, typ...)
	b.buf = append(b.buf, body...)
	b.n++
}

// bufPtr returns a C pointer to b's bytes; nil for an empty slice.
func bufPtr(b []byte) *C.char {
	if len(b) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}

// SendOne sends one 4-frame message straight from its buffers, with no
// copy into the batch buffer: for large bodies. Frames added with Add or
// AddTyped and not yet sent must be sent first.
func (b *Batcher) SendOne(id, sid []byte, typ string, body []byte) error {
	rc := C.bb_send_one(b.sock, 4, bufPtr(id), C.size_t(len(id)), bufPtr(sid), C.size_t(len(sid)),
		strPtr(typ), C.size_t(len(typ)), bufPtr(body), C.size_t(len(body)))
	return sendError(rc)
}

// sendError turns bb_send_one's and bb_send_ref's result (0, errno, or
// -errno past the first frame) into nil or a *SendError.
func sendError(rc C.int) error {
	if rc == 0 {
		return nil
	}
	if rc < 0 {
		rc = -rc
	}
	return &SendError{Errno: syscall.Errno(rc)}
}

// strPtr returns a C pointer to s's bytes (no copy, unlike []byte(s),
// which a cgo argument would move to the heap); nil for "".
func strPtr(s string) *C.char {
	if s == "" {
		return nil
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s)))
}
