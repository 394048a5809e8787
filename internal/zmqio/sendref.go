package zmqio

/*
#include "batch.h"
*/
import "C"

import (
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/blastbeat/blastbeat/internal/bufpool"
)

// MinRefBody is the smallest body SendRef lends libzmq instead of copying:
// below it the copy costs less than the bookkeeping (a pin, a record, and
// the buffer's return from libzmq's thread).
const MinRefBody = 16 << 10

// defaultCloseWait is how long Close waits for libzmq to give back the
// bodies it holds (after the socket was closed with linger 0, it drops
// them within milliseconds); lateReclaim is how often a Batcher closed
// with bodies still lent looks for them afterwards.
const (
	defaultCloseWait = time.Second
	lateReclaim      = 10 * time.Millisecond
)

// DefaultMaxLent is the most bytes of buffers a Batcher lends libzmq at once
// unless SetMaxLent says otherwise.
const DefaultMaxLent = 2 << 20

// lent is one body libzmq holds by reference.
type lent struct {
	rec  *C.bb_ref
	buf  *bufpool.Buf // the reference libzmq holds
	size int
	pin  runtime.Pinner
}

// refs are the bodies a Batcher has lent libzmq.
type refs struct {
	q       *C.bb_refq // nil until the first SendRef
	slots   []*lent
	free    []int32
	out     int // lent and not yet given back
	bytes   int // the capacity of their buffers
	maxLent int // SetMaxLent's bound
	taken   [64]C.int
	// closeWait is how long Close waits for lent bodies.
	closeWait time.Duration
}

// SetMaxLent bounds the bytes lent to libzmq at once (n > 0), counted as
// the capacity of the buffers lent, which stay out of their pool: past
// it SendRef copies, as SendOne does. Lent bodies stay out of their pool
// until libzmq has written them, each up to its peer's high-water mark,
// so the bound keeps a slow peer from holding the pool's memory (copies
// are libzmq's, freed as it writes them).
func (b *Batcher) SetMaxLent(n int) {
	if n > 0 {
		b.refs.maxLent = n
	}
}

// SendRef sends one 4-frame message as SendOne does, except that libzmq
// reads the body straight from buf (body lies in buf.B) until it has
// written it out, instead of copying it first: the Batcher takes a
// reference on buf for libzmq and gives it back in a later Reclaim (or
// Close). Past SetMaxLent's bound, or with no buf (bytes that are not
// pooled), it copies instead. Frames added with Add or AddTyped and not
// yet sent must be sent first. The caller keeps its own reference and
// must not write to the body's bytes while they are lent.
func (b *Batcher) SendRef(id, sid []byte, typ string, body []byte, buf *bufpool.Buf) error {
	r := &b.refs
	if buf == nil || len(body) == 0 || r.bytes+cap(buf.B) > r.maxLent {
		return b.SendOne(id, sid, typ, body)
	}
	if r.q == nil {
		r.q = C.bb_refq_new()
		if r.q == nil {
			return b.SendOne(id, sid, typ, body)
		}
	}
	s := r.slot()
	if s == nil {
		return b.SendOne(id, sid, typ, body)
	}
	p := unsafe.Pointer(unsafe.SliceData(body))
	s.pin.Pin(p) // libzmq keeps the pointer past this call
	buf.Retain()
	s.buf, s.size = buf, cap(buf.B)
	r.out++
	r.bytes += s.size
	rc := C.bb_send_ref(b.sock, bufPtr(id), C.size_t(len(id)), bufPtr(sid), C.size_t(len(sid)),
		strPtr(typ), C.size_t(len(typ)), (*C.char)(p), C.size_t(len(body)), s.rec)
	return sendError(rc)
}

// slot returns a free record for a lent body, nil if C memory ran out.
func (r *refs) slot() *lent {
	if n := len(r.free); n > 0 {
		i := r.free[n-1]
		r.free = r.free[:n-1]
		return r.slots[i]
	}
	rec := C.bb_ref_new(r.q, C.int(len(r.slots)))
	if rec == nil {
		return nil
	}
	s := &lent{rec: rec}
	r.slots = append(r.slots, s)
	return s
}

// Lent returns how many bodies libzmq holds by reference now, and the
// capacity of their buffers.
func (b *Batcher) Lent() (bodies, bytes int) { return b.refs.out, b.refs.bytes }

// Reclaim gives back the buffers of the bodies libzmq is done with and
// returns how many. It costs an atomic load when there are none, so the
// owner calls it every time round its loop.
func (b *Batcher) Reclaim() int { return b.refs.reclaim() }

func (r *refs) reclaim() int {
	if r.q == nil || r.q.rest == nil && atomic.LoadPointer((*unsafe.Pointer)(unsafe.Pointer(&r.q.head))) == nil {
		return 0
	}
	total := 0
	for {
		n := int(C.bb_ref_take(r.q, &r.taken[0], C.int(len(r.taken))))
		for _, i := range r.taken[:n] {
			s := r.slots[i]
			s.pin.Unpin()
			s.buf.Release()
			s.buf = nil
			r.bytes -= s.size
			r.free = append(r.free, int32(i))
		}
		r.out -= n
		total += n
		if n < len(r.taken) {
			return total
		}
	}
}

// closeRefs waits up to closeWait for libzmq to give back what it holds,
// then frees the records, and returns how many bodies it still holds.
// Those stay pinned and referenced, by a goroutine that takes them back
// as libzmq lets go of them and then frees the records: their buffers are
// never collected or reused while libzmq may read them.
func (b *Batcher) closeRefs() int {
	r := &b.refs
	if r.q == nil {
		return 0
	}
	for deadline := time.Now().Add(r.closeWait); r.out > 0 && time.Now().Before(deadline); {
		if r.reclaim() == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	left := r.out
	late := *r
	*r = refs{maxLent: r.maxLent, closeWait: r.closeWait}
	if left == 0 {
		late.freeRecords()
		return 0
	}
	go func() {
		for late.out > 0 {
			if late.reclaim() == 0 {
				time.Sleep(lateReclaim)
			}
		}
		late.freeRecords()
	}()
	return left
}

// freeRecords frees the C records and queue; nothing may be lent.
func (r *refs) freeRecords() {
	for _, s := range r.slots {
		C.bb_ref_free(s.rec)
	}
	C.bb_refq_free(r.q)
}
