package node

import "maps"

// DefaultMaxSessions bounds the table from sid to socket of a node with
// several endpoints (see Send): a million sessions open through one node
// is far above what a node serves, and the table then takes some 64 MiB.
// It only fills up with the sessions of proxies that died without their
// `end`.
const DefaultMaxSessions = 1 << 20

// minMaxSessions is the smallest bound: one entry per generation.
const minMaxSessions = 2

// routes is the table from sid to the index of the socket the session's
// messages came from, for a node with several sockets. A sid is 16
// random bytes, unique across proxies, so one table serves them all.
//
// It keeps two generations so that entries whose `end` never comes are
// dropped without a clock or a scan: put and get move an entry into cur;
// when cur reaches half the bound, old (what nobody touched for a whole
// generation) is dropped and cur becomes old. Every operation is O(1)
// and the table never holds more than the bound.
type routes struct {
	cur, old map[string]int
	half     int // cur turns into old at this size
}

func newRoutes(limit int) *routes {
	r := &routes{cur: map[string]int{}, old: map[string]int{}}
	r.setMax(limit)
	return r
}

// setMax sets the bound; a table over it shrinks at the next put.
func (r *routes) setMax(limit int) {
	r.half = max(limit, minMaxSessions) / 2
}

// put records that sid's messages come from socket i.
func (r *routes) put(sid []byte, i int) {
	if j, ok := r.cur[string(sid)]; ok && j == i {
		return // the common case: no allocation
	}
	delete(r.old, string(sid))
	r.cur[string(sid)] = i
	if len(r.cur) >= r.half {
		r.old, r.cur = r.cur, make(map[string]int)
	}
}

// get returns sid's socket and counts as a use of the entry.
func (r *routes) get(sid []byte) (int, bool) {
	if i, ok := r.cur[string(sid)]; ok {
		return i, true
	}
	i, ok := r.old[string(sid)]
	if ok {
		r.put(sid, i)
	}
	return i, ok
}

// remove forgets sid.
func (r *routes) remove(sid []byte) {
	delete(r.cur, string(sid))
	delete(r.old, string(sid))
}

// removeSocket forgets every sid of socket i.
func (r *routes) removeSocket(i int) {
	for _, m := range []map[string]int{r.cur, r.old} {
		maps.DeleteFunc(m, func(_ string, j int) bool { return j == i })
	}
}

// len is the number of entries.
func (r *routes) len() int { return len(r.cur) + len(r.old) }
