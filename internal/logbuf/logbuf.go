// Package logbuf is a log destination that never makes its callers wait:
// lines are appended to a bounded buffer that a goroutine of its own
// writes out. The event loops log (a slow reader closed, a bad node
// message, a failed handshake); written straight to a stderr that a
// stalled journald or container log pipe does not read, one line would
// stop a loop and every connection on it. Past the bound, lines are
// dropped and counted, and the count is reported once the destination
// takes lines again.
package logbuf

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxBytes bounds the lines waiting for the destination.
const DefaultMaxBytes = 1 << 20

// keepBelow: a buffer that grew past this during a burst is not kept.
const keepBelow = 64 << 10

// Writer buffers whole writes (a log handler writes a line at a time) for
// out. Write is safe from any goroutine and never blocks on out.
type Writer struct {
	out      io.Writer
	maxBytes int
	// OnDropped, when set before the first Write, is called on the
	// writer's goroutine with the number of lines dropped since the last
	// call, once out took what was buffered: the caller logs it (through
	// this Writer: it is not called under any lock).
	OnDropped func(n uint64)

	mu      sync.Mutex
	buf     []byte
	dropped uint64 // since the last report, under mu
	total   atomic.Uint64

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New starts a Writer for out holding at most maxBytes (DefaultMaxBytes
// when 0 or less) of lines out has not taken.
func New(out io.Writer, maxBytes int) *Writer {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	w := &Writer{out: out, maxBytes: maxBytes, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// Write appends p, or drops it when the buffer would pass its bound. It
// always reports success: a log line is not worth an error path.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if len(w.buf)+len(p) > w.maxBytes {
		w.dropped++
		w.mu.Unlock()
		w.total.Add(1)
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Dropped is the number of writes dropped so far.
func (w *Writer) Dropped() uint64 { return w.total.Load() }

func (w *Writer) run() {
	defer close(w.done)
	var spare []byte
	for {
		select {
		case <-w.kick:
		case <-w.stop:
			w.flush(&spare)
			w.flush(&spare) // what OnDropped logged, if it was called
			return
		}
		w.flush(&spare)
	}
}

// flush writes what is buffered, and reports the drops once it went out.
func (w *Writer) flush(spare *[]byte) {
	w.mu.Lock()
	b := w.buf
	w.buf = (*spare)[:0]
	dropped := w.dropped
	w.dropped = 0
	w.mu.Unlock()
	if len(b) > 0 {
		_, _ = w.out.Write(b) // nowhere to report a failed log write
	}
	if cap(b) > keepBelow {
		b = nil
	}
	*spare = b
	if dropped > 0 && w.OnDropped != nil {
		w.OnDropped(dropped)
		w.mu.Lock()
		again := len(w.buf) > 0
		w.mu.Unlock()
		if again {
			select {
			case w.kick <- struct{}{}:
			default:
			}
		}
	}
}

// Close writes what is buffered and stops the goroutine, waiting at most
// wait for out (a destination that takes nothing must not hold up the
// exit). It reports whether everything was written. Writes after Close
// are buffered and never written.
func (w *Writer) Close(wait time.Duration) bool {
	w.once.Do(func() { close(w.stop) })
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.done:
		return true
	case <-t.C:
		return false
	}
}
