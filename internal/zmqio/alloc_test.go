//go:build !race

package zmqio

import (
	"testing"

	"github.com/blastbeat/blastbeat/internal/bufpool"
)

// TestRecvReuseAllocs: once its buffer has grown, RecvReuse receives
// without allocating (the bench node's receive path). Built without
// -race: the race detector allocates.
func TestRecvReuseAllocs(t *testing.T) {
	router, dealer := pair(t)
	rb := batcher(t, router, 4)
	const runs = 100
	for i := 0; i < runs+2; i++ {
		dealer.SendMessage("sid", "body", "0123456789")
	}
	waitReadable(t, rb)
	got := 0
	fn := func(f [][]byte) { got += len(f[3]) }
	rb.RecvReuse(1, fn) // grows the buffer
	if allocs := testing.AllocsPerRun(runs, func() { rb.RecvReuse(1, fn) }); allocs != 0 {
		t.Errorf("RecvReuse: %.1f allocations per message, want 0", allocs)
	}
	if got != 10*(runs+2) {
		t.Errorf("received %d body bytes, want %d", got, 10*(runs+2))
	}
}

// TestRecvPooledAllocs: the bridge's receive path allocates nothing for
// batches of MinPooledBatch bytes or more once its pool holds a buffer,
// when the callee gives its references back.
func TestRecvPooledAllocs(t *testing.T) {
	router, dealer := pair(t)
	rb := batcher(t, router, 4)
	const runs = 100
	body := make([]byte, MinPooledBatch)
	for i := 0; i < runs+2; i++ {
		dealer.SendMessage("sid", "body", body)
	}
	waitReadable(t, rb)
	var pool bufpool.Pool
	got, pooled := 0, 0
	fn := func(f [][]byte, buf *bufpool.Buf) {
		if buf != nil {
			buf.Retain() // as the server does, until its flush
			pooled++
		}
		got += len(f[3])
		buf.Release()
	}
	rb.RecvPooled(1, &pool, fn) // fills the pool
	if allocs := testing.AllocsPerRun(runs, func() { rb.RecvPooled(1, &pool, fn) }); allocs != 0 {
		t.Errorf("RecvPooled: %.1f allocations per message, want 0", allocs)
	}
	if got != len(body)*(runs+2) || pooled != runs+2 {
		t.Errorf("received %d body bytes in %d pooled batches, want %d in %d", got, pooled, len(body)*(runs+2), runs+2)
	}
}
