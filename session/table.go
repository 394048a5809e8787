package session

import "errors"

// ErrTableFull is returned by Table.Add when the loop holds MaxSlots
// sessions or its configured limit.
var ErrTableFull = errors.New("session: table full")

type entry[T any] struct {
	sid SID
	val T
	ok  bool
}

// Table maps sids to the sessions of one event loop. It is owned by that
// loop and not safe for concurrent use; it never needs to be.
//
// Its slots lie in fixed chunks of chunkLen: a table that grows to
// hundreds of thousands of sessions never copies them into a bigger
// array, which would leave the old one as garbage (and pause the loop
// for the copy).
type Table[T any] struct {
	src    sidSource
	chunks [][]entry[T]
	size   int // slots handed out so far: the chunks hold at least this many
	free   []uint32
	limit  int
	n      int
}

// chunkLen is the slots of one chunk (32 KiB of them for a *conn).
const chunkLen = 1 << 10

// at returns slot's entry; slot < t.size.
func (t *Table[T]) at(slot int) *entry[T] {
	return &t.chunks[slot/chunkLen][slot%chunkLen]
}

// NewTable returns the table of loop index loop (0 ≤ loop < MaxLoops),
// holding at most limit sessions (0: MaxSlots).
func NewTable[T any](loop, limit int) *Table[T] {
	if limit <= 0 || limit > MaxSlots {
		limit = MaxSlots
	}
	return &Table[T]{src: newSIDSource(loop), limit: limit}
}

// Add stores v under a new sid.
func (t *Table[T]) Add(v T) (SID, error) {
	var slot int
	if k := len(t.free); k > 0 {
		slot = int(t.free[k-1])
		t.free = t.free[:k-1]
	} else {
		if t.size >= t.limit {
			return SID{}, ErrTableFull
		}
		slot = t.size
		if slot/chunkLen == len(t.chunks) {
			t.chunks = append(t.chunks, make([]entry[T], chunkLen))
		}
		t.size++
	}
	sid := t.src.make(slot)
	*t.at(slot) = entry[T]{sid: sid, val: v, ok: true}
	t.n++
	return sid, nil
}

// Get returns the session of sid; ok is false when it is gone or sid was
// never issued by this table.
func (t *Table[T]) Get(sid *SID) (v T, ok bool) {
	slot := sid.Slot()
	if slot >= t.size {
		return v, false
	}
	e := t.at(slot)
	if !e.ok || e.sid != *sid {
		return v, false
	}
	return e.val, true
}

// Remove forgets sid. Removing an unknown sid does nothing.
func (t *Table[T]) Remove(sid *SID) {
	slot := sid.Slot()
	if slot >= t.size {
		return
	}
	e := t.at(slot)
	if !e.ok || e.sid != *sid {
		return
	}
	*e = entry[T]{}
	t.free = append(t.free, uint32(slot))
	t.n--
}

// Len returns the number of live sessions.
func (t *Table[T]) Len() int { return t.n }

// Range calls fn for every live session until fn returns false.
func (t *Table[T]) Range(fn func(sid *SID, v T) bool) {
	for i := 0; i < t.size; i++ {
		if e := t.at(i); e.ok && !fn(&e.sid, e.val) {
			return
		}
	}
}
