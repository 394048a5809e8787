package node

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// bodyReader is a request's Body: the loop pushes the `body` pieces as
// they arrive, the handler reads them. It holds at most limit unread
// bytes (push refuses more: the protocol cannot slow the proxy down, so
// the loop fails the request). Read blocks until data, the end of the
// body (Content-Length bytes, or the empty `body` of a body of unknown
// length) or a failure.
type bodyReader struct {
	ctx   context.Context // the request's: a Read waiting for data gives up with it
	limit int
	held  *atomic.Int64 // the server's count of what every session holds
	ready chan struct{} // capacity 1: something changed

	mu     sync.Mutex
	queue  [][]byte // unread pieces; queue[0][off:] is next
	off    int
	size   int   // unread bytes
	eof    bool  // the whole body arrived
	err    error // the body failed (session ended, buffer full)
	closed bool
	// waitStart is when a Read began to wait for more of the body; zero
	// while none waits (IdleTimeout counts from it).
	waitStart time.Time
}

func newBodyReader(ctx context.Context, limit int, held *atomic.Int64) *bodyReader {
	return &bodyReader{ctx: ctx, limit: limit, held: held, ready: make(chan struct{}, 1)}
}

// waitingSince returns when the Read that waits for more of the body
// began to wait; zero when none waits (the handler does something else,
// or has something to read).
func (b *bodyReader) waitingSince() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.size == 0 && !b.eof && b.err == nil && !b.closed {
		return b.waitStart
	}
	return time.Time{}
}

// Read reads what arrived, waiting for more when nothing did. Its last
// bytes come with io.EOF.
func (b *bodyReader) Read(p []byte) (int, error) {
	for {
		b.mu.Lock()
		switch {
		case b.closed:
			b.mu.Unlock()
			return 0, http.ErrBodyReadAfterClose
		case b.size > 0:
			b.waitStart = time.Time{}
			n := 0
			for n < len(p) && len(b.queue) > 0 {
				k := copy(p[n:], b.queue[0][b.off:])
				n += k
				b.off += k
				if b.off == len(b.queue[0]) {
					b.queue[0] = nil
					b.queue = b.queue[1:]
					b.off = 0
				}
			}
			b.size -= n
			b.held.Add(int64(-n))
			var err error
			if b.size == 0 && b.eof {
				err = io.EOF
			}
			b.mu.Unlock()
			return n, err
		case b.eof:
			b.mu.Unlock()
			return 0, io.EOF
		case b.err != nil:
			err := b.err
			b.mu.Unlock()
			return 0, err
		}
		if len(p) == 0 {
			b.mu.Unlock()
			return 0, nil
		}
		if b.waitStart.IsZero() {
			b.waitStart = time.Now()
		}
		b.mu.Unlock()
		select {
		case <-b.ready:
		case <-b.ctx.Done():
			// The loop fails the body when its session ends; this covers
			// a Read after Serve's loop is gone.
			b.mu.Lock()
			if b.size == 0 && !b.eof && b.err == nil {
				b.err = ErrSessionEnded
			}
			b.mu.Unlock()
		}
	}
}

// Close drops what is unread; the rest of the body is dropped as it
// arrives.
func (b *bodyReader) Close() error {
	b.mu.Lock()
	b.closed = true
	b.held.Add(int64(-b.size))
	b.queue, b.off, b.size = nil, 0, 0
	b.mu.Unlock()
	b.signal()
	return nil
}

// push adds a piece (eof: the last one); false when it would take the
// unread bytes over the limit (nothing is added then). One piece alone
// always fits.
func (b *bodyReader) push(data []byte, eof bool) bool {
	b.mu.Lock()
	defer b.signal()
	defer b.mu.Unlock()
	if b.closed || b.err != nil {
		return true // dropped
	}
	if len(data) > 0 {
		if b.size > 0 && b.size+len(data) > b.limit {
			return false
		}
		b.queue = append(b.queue, data)
		b.size += len(data)
		b.held.Add(int64(len(data)))
	}
	if eof {
		b.eof = true
	}
	return true
}

// fail ends a body that has not all arrived with err; what arrived can
// still be read first. The first failure stays.
func (b *bodyReader) fail(err error) {
	b.mu.Lock()
	if !b.eof && b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	b.signal()
}

// dropFail fails the body with err (unless a failure said why first) and
// frees what it holds unread: for a session that failed or ended, whose
// handler must not read on. whole: a body that had all arrived too (it
// reads err now, not a short io.EOF); else such a body stays readable.
func (b *bodyReader) dropFail(err error, whole bool) {
	b.mu.Lock()
	if b.size > 0 && (whole || !b.eof) {
		b.held.Add(int64(-b.size))
		clear(b.queue)
		b.queue, b.off, b.size = nil, 0, 0
		b.eof = false
	}
	if !b.eof && b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	b.signal()
}

// unread returns the bytes held unread.
func (b *bodyReader) unread() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size
}

// drop frees what was buffered: for a request whose handler never
// started (it waited for a slot, and its session ended meanwhile), or
// one failed to keep the node's total (MaxBufferTotal).
func (b *bodyReader) drop() {
	b.mu.Lock()
	clear(b.queue)
	b.held.Add(int64(-b.size))
	b.queue, b.off, b.size = nil, 0, 0
	b.mu.Unlock()
}

func (b *bodyReader) signal() {
	select {
	case b.ready <- struct{}{}:
	default:
	}
}
