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

// TestSendRefAllocs: lending a pooled body to libzmq and taking it back
// allocates nothing once the Batcher has its record and pin (the bridge's
// path for request bodies of MinRefBody bytes or more).
func TestSendRefAllocs(t *testing.T) {
	router, dealer := pair(t)
	rb := batcher(t, router, 4)
	db := batcher(t, dealer, 3)
	var pool bufpool.Pool
	got := 0
	fn := func(f [][]byte) { got += len(f[2]) }
	id, sid := []byte("n1"), []byte("sid") // as the bridge's: made once
	one := func() {
		buf := pool.Get(MinRefBody)
		if err := rb.SendRef(id, sid, "body", buf.B, buf); err != nil {
			t.Fatal(err)
		}
		buf.Release()
		waitReadable(t, db)
		db.RecvReuse(1, fn)
		if rb.Reclaim() != 1 {
			t.Fatal("the body was not given back")
		}
	}
	one() // the record, the pin and the receive buffer
	if allocs := testing.AllocsPerRun(100, one); allocs != 0 {
		t.Errorf("SendRef: %.1f allocations per message, want 0", allocs)
	}
	if got != MinRefBody*102 { // AllocsPerRun runs it once more first
		t.Errorf("received %d body bytes, want %d", got, MinRefBody*102)
	}
}
