//go:build !race

package zmqio

import (
	"testing"
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
