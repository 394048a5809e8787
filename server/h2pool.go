package server

// A loop reuses the h2Stream records of its closed streams, so that a
// request on an open HTTP/2 connection allocates none. A stream closed in
// a turn becomes reusable only when that turn's flush is done (as the
// arena does): the code that closed it may still hold it and check
// whether it is still its connection's stream.

// h2StreamsKept is the most closed streams a loop keeps for reuse; more
// are left to the collector (a connection of many streams that ends).
const h2StreamsKept = 256

// newH2Stream returns a zeroed stream record, reused when one is free.
func (l *loop) newH2Stream() *h2Stream {
	if st, ok := l.h2Free.take(); ok {
		return st
	}
	return &h2Stream{}
}

// h2StreamClosed takes a closed stream (its retry dropped) for reuse
// after this turn.
func (l *loop) h2StreamClosed(st *h2Stream) {
	if l.h2Free.len()+len(l.h2Closed) < h2StreamsKept {
		l.h2Closed = append(l.h2Closed, st)
	}
}

// recycleH2Streams makes the streams closed this turn reusable; flush
// calls it once the turn is done. They are zeroed here (keeping only
// their retry slice's room), so that a free record holds nothing of its
// stream: not its connection, nor bytes a WebSocket stream had buffered.
func (l *loop) recycleH2Streams() {
	if len(l.h2Closed) == 0 {
		return
	}
	for _, st := range l.h2Closed {
		retry := st.retry[:0] // dropRetry cleared its pieces
		*st = h2Stream{}
		st.retry = retry
		l.h2Free.put(st, h2StreamsKept)
	}
	clear(l.h2Closed)
	l.h2Closed = l.h2Closed[:0]
}
