package zmqbridge

import (
	"sync/atomic"

	"github.com/blastbeat/blastbeat/internal/bufpool"
)

// Msg is one message to a node: [identity, sid, type, body].
type Msg struct {
	Node int      // index into Config.Identities
	SID  [16]byte // session id; the all-zero sid is sent as an empty frame
	Type string   // message type, e.g. "uwsgi"
	Body []byte   // owned by the message from Push on
	Tag  uint32   // opaque to the bridge; handed back by Undeliverable
	// Buf, when set, is the pooled buffer Body lies in: the message
	// holds one reference, which the bridge gives back once libzmq has
	// the bytes or the message failed (after Undeliverable).
	Buf *bufpool.Buf
}

// cell is one ring slot; seq tells whose turn it is (Vyukov's bounded
// queue).
type cell struct {
	seq atomic.Uint64
	msg Msg
}

// Ring is a bounded lock-free multi-producer, single-consumer queue of
// messages. Push is safe from any goroutine; Pop only from the consumer.
type Ring struct {
	mask  uint64
	cells []cell
	_     [64]byte // keep producers' tail off the consumer's cache line
	tail  atomic.Uint64
	_     [56]byte
	head  uint64 // owned by the consumer
}

// NewRing returns a ring of size slots, rounded up to a power of two,
// and at least 2 (with one, an empty slot's sequence would read as
// published to the next producer).
func NewRing(size int) *Ring {
	n := 2
	for n < size {
		n <<= 1
	}
	r := &Ring{mask: uint64(n - 1), cells: make([]cell, n)}
	for i := range r.cells {
		r.cells[i].seq.Store(uint64(i))
	}
	return r
}

// Push appends m, or returns false at once when the ring is full.
func (r *Ring) Push(m *Msg) bool {
	pos := r.tail.Load()
	for {
		c := &r.cells[pos&r.mask]
		seq := c.seq.Load()
		switch dif := int64(seq) - int64(pos); {
		case dif == 0:
			if r.tail.CompareAndSwap(pos, pos+1) {
				c.msg = *m
				c.seq.Store(pos + 1)
				return true
			}
			pos = r.tail.Load()
		case dif < 0:
			return false
		default:
			pos = r.tail.Load()
		}
	}
}

// Pop removes the oldest message. Only the consumer may call it.
func (r *Ring) Pop(m *Msg) bool {
	c := &r.cells[r.head&r.mask]
	if c.seq.Load() != r.head+1 {
		return false
	}
	*m = c.msg
	c.msg = Msg{}
	c.seq.Store(r.head + r.mask + 1)
	r.head++
	return true
}

// Empty reports whether the ring holds nothing. Only the consumer may call
// it.
func (r *Ring) Empty() bool {
	return r.cells[r.head&r.mask].seq.Load() != r.head+1
}

// Len returns about how many messages the ring holds (slots claimed by
// producers and not popped yet). Only the consumer may call it.
func (r *Ring) Len() int { return int(r.tail.Load() - r.head) }

// Cap returns the ring's number of slots.
func (r *Ring) Cap() int { return len(r.cells) }
