package server

import "unsafe"

// The loop's arena holds the bytes the proxy writes to clients itself —
// rewritten response heads, chunk headers, WebSocket frame headers — from
// when a connection queues them until the flush that ends the loop turn
// has handed them to the transport, which writes them or copies what it
// cannot write at once. It is reused from then on, so those bytes cost no
// allocation per response, chunk or frame.

// copyOutMax is the largest piece of a node's output (a chunk, a
// WebSocket message) copied into the arena with its framing, so that a
// response of small chunks goes out as one piece of one writev instead of
// three per chunk; bigger pieces are written from where they lie.
const copyOutMax = 4 << 10

// arenaChunk is the size of the arena's chunks. A turn that fills one
// takes another; the filled ones are reused once the turn's flush has
// handed their bytes to the transports, up to arenaKeepChunks of them (a
// loop keeps at most that many times 64 KiB); a piece bigger than a chunk
// gets a chunk of its own, left to the collector.
const (
	arenaChunk      = 64 << 10
	arenaKeepChunks = 8
)

// arenaRoom returns an empty slice with room for n bytes in the arena, to
// build on with append; used then claims what was built.
func (l *loop) arenaRoom(n int) []byte {
	if cap(l.arena)-len(l.arena) < n {
		if cap(l.arena) == arenaChunk {
			l.arenaFull = append(l.arenaFull, l.arena) // in use until the flush
		}
		if k := len(l.arenaFree); k > 0 && n <= arenaChunk {
			l.arena = l.arenaFree[k-1]
			l.arenaFree[k-1] = nil
			l.arenaFree = l.arenaFree[:k-1]
		} else {
			l.arena = make([]byte, 0, max(arenaChunk, n))
		}
	}
	return l.arena[len(l.arena):len(l.arena)]
}

// used claims b, built on arenaRoom's slice, until the end of this turn's
// flush. A b that outgrew its room (append moved it to the heap) is
// simply returned. The result's capacity is its length: appending to it
// never writes into the arena.
func (l *loop) used(b []byte) []byte {
	free := l.arena[len(l.arena):cap(l.arena)]
	if len(b) > 0 && len(b) <= len(free) && &b[0] == &free[0] {
		l.arena = l.arena[:len(l.arena)+len(b)]
	}
	return b[:len(b):len(b)]
}

// bytesOf returns a constant's bytes, copied into the arena.
func (l *loop) bytesOf(s string) []byte {
	return l.used(append(l.arenaRoom(len(s)), s...))
}

// arenaOffset returns where b starts in the arena's chunk, or -1 when b
// is not in it.
func (l *loop) arenaOffset(b []byte) int {
	if len(b) == 0 || cap(l.arena) == 0 {
		return -1
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(l.arena)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < base || p >= base+uintptr(cap(l.arena)) {
		return -1
	}
	return int(p - base)
}

// recycleArena makes the arena reusable; flush calls it once nothing
// queued is left unwritten.
func (l *loop) recycleArena() {
	for i, c := range l.arenaFull {
		if len(l.arenaFree) < arenaKeepChunks-1 {
			l.arenaFree = append(l.arenaFree, c[:0])
		}
		l.arenaFull[i] = nil
	}
	l.arenaFull = l.arenaFull[:0]
	if cap(l.arena) > arenaChunk {
		l.arena = nil // a piece's own big chunk is not kept
		return
	}
	l.arena = l.arena[:0]
}
