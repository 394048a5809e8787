// Package bufpool lends the byte buffers that carry request heads and
// bodies from an event loop to the ZeroMQ bridge. A buffer is counted:
// the loop holds a reference while it keeps the bytes for a retry, and
// each message that carries them holds one until the bridge has handed it
// to libzmq. It goes back to the pool with its last reference. A buffer
// whose reference is never given back is simply collected: forgetting a
// Release costs an allocation, never correctness; releasing twice is a
// bug and panics, as reuse of bytes still in flight could hand one
// client's request to another.
package bufpool

import (
	"sync"
	"sync/atomic"
)

// Size classes: minClass << i, 512 B to 256 KiB. A bigger buffer is
// allocated and collected as usual.
const (
	minClass = 512
	classes  = 10
	// MaxPooled is the largest buffer the pool keeps.
	MaxPooled = minClass << (classes - 1)
)

// Buf is one lent buffer. B is its bytes; callers may reslice it within
// its capacity, or append beyond it (the result then is no longer pooled).
type Buf struct {
	B     []byte
	refs  atomic.Int32
	class int8 // -1: not pooled
	pool  *Pool
}

// Pool is a set of size classes. Safe for concurrent use.
type Pool struct {
	classes [classes]sync.Pool
}

// classOf returns the smallest class that holds n bytes, or -1.
func classOf(n int) int {
	for i, size := 0, minClass; i < classes; i, size = i+1, size<<1 {
		if n <= size {
			return i
		}
	}
	return -1
}

// Get returns a buffer of n bytes (len(B) == n, capacity at least n)
// holding one reference.
func (p *Pool) Get(n int) *Buf {
	k := classOf(n)
	if k < 0 {
		b := &Buf{B: make([]byte, n), class: -1, pool: p}
		b.refs.Store(1)
		return b
	}
	b, _ := p.classes[k].Get().(*Buf)
	if b == nil {
		b = &Buf{B: make([]byte, minClass<<k), class: int8(k), pool: p}
	}
	b.B = b.B[:n]
	b.refs.Store(1)
	return b
}

// Wrap returns b as a buffer holding one reference that is not pooled:
// for bytes that were not got from a pool.
func Wrap(b []byte) *Buf {
	buf := &Buf{B: b, class: -1}
	buf.refs.Store(1)
	return buf
}

// Retain adds a reference.
func (b *Buf) Retain() { b.refs.Add(1) }

// Release gives a reference back; the last one returns the buffer to its
// pool (unless its bytes outgrew the class). Nil-safe.
func (b *Buf) Release() {
	if b == nil {
		return
	}
	switch n := b.refs.Add(-1); {
	case n > 0:
		return
	case n < 0:
		panic("bufpool: buffer released more often than referenced")
	}
	if b.class < 0 || cap(b.B) != minClass<<int(b.class) {
		return
	}
	b.B = b.B[:0]
	b.pool.classes[b.class].Put(b)
}

// Refs returns the references held now (for tests).
func (b *Buf) Refs() int { return int(b.refs.Load()) }
