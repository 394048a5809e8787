package server

import (
	"unsafe"

	"github.com/panjf2000/gnet/v2"

	"github.com/blastbeat/blastbeat/internal/bufpool"
	"github.com/blastbeat/blastbeat/internal/zmqio"
)

// maxReadTarget is the largest read a request body is read with straight
// into a pooled buffer (gnet's own read buffer is 64 KiB too).
const maxReadTarget = 64 << 10

// ReadTarget is gnet's (patched, patch 13) question where a connection's
// next read goes. While a plain HTTP/1.x connection reads a body with at
// least zmqio.MinRefBody bytes left to frame, and between requests on a
// connection whose last request had a body that big (an uploading client
// sends its next body with its next head), the read goes into a pooled
// buffer that the body message then carries to the node as it is (and
// the bridge lends to libzmq): the body is not copied out of gnet's read
// buffer. Elsewhere it goes to gnet's buffer.
func (h *handler) ReadTarget(gc gnet.Conn) []byte {
	c, ok := gc.Context().(*conn)
	if !ok {
		return nil
	}
	return c.readTarget()
}

var _ gnet.ReadTargeter = (*handler)(nil)

func (c *conn) readTarget() []byte {
	c.l.rbuf, c.l.rbufFor = nil, nil
	// Only inside a turn, whose end gives the buffer back (OnTurnEnd);
	// only where httpTraffic frames the bytes as body at once.
	if !c.l.inTurn || c.tls != nil || c.m != (http1{}) || c.closed || c.closing || c.closeAfter ||
		len(c.outq) > 0 {
		return nil
	}
	var n int64
	if c.parser == nil || c.parser.InHead() {
		// The next head, and perhaps its body, once the last
		// response is out (a pipelined head waits: updateReadPause).
		if !c.bigBodies || c.phase != phIdle {
			return nil
		}
		n = maxReadTarget
	} else {
		if !c.reading || c.discard || c.node == nil {
			return nil
		}
		if n = min(c.parser.BodyLeft(), maxReadTarget); n < zmqio.MinRefBody {
			return nil
		}
	}
	buf := c.l.readBuf(int(n))
	c.l.rbuf, c.l.rbufFor = buf, c
	return buf.B
}

// readBuf returns a read target of n bytes: the turn's last one again
// when no message took it (the read before was short, or copied) and it
// is of the size class the pool would give (a bigger one would make a
// full read look short to readPiece), so that a turn of many trickling
// reads holds one buffer, not one per read; else a new one, held until
// the turn's end. gnet has copied what the read before left unread by
// the time it asks again.
func (l *loop) readBuf(n int) *bufpool.Buf {
	if k := len(l.readBufs); k > 0 {
		if last := l.readBufs[k-1]; last.Refs() == 1 && cap(last.B) >= n && cap(last.B) < 2*n {
			last.B = last.B[:n]
			return last
		}
	}
	buf := l.s.bufs.Get(n)
	l.readBufs = append(l.readBufs, buf)
	return buf
}

// readPiece returns the read target that body piece data lies in, with a
// reference for the caller, when the piece fills at least half of it (a
// short read goes into a buffer of its size: a trickling client must not
// hold 64 KiB per byte it sends); else nil.
func (c *conn) readPiece(data []byte) *bufpool.Buf {
	rb := c.l.rbuf
	if rb == nil || c.l.rbufFor != c || len(data) == 0 || 2*len(data) < cap(rb.B) {
		return nil
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(rb.B)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	if p < start || p+uintptr(len(data)) > start+uintptr(len(rb.B)) {
		return nil
	}
	rb.Retain()
	return rb
}

// releaseReadBufs gives back the loop's references to this turn's read
// targets: gnet has copied what OnTraffic left unread out of them.
func (l *loop) releaseReadBufs() {
	for i, b := range l.readBufs {
		b.Release()
		l.readBufs[i] = nil
	}
	l.readBufs = l.readBufs[:0]
	l.rbuf, l.rbufFor = nil, nil // a read that ended at EAGAIN left them
}
