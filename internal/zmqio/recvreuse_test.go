package zmqio

import (
	"fmt"
	"testing"
	"time"
)

// TestRecvReuse: RecvReuse hands over the same messages as Recv, in
// order, batch after batch from one reused buffer, a big one included.
func TestRecvReuse(t *testing.T) {
	router, dealer := pair(t)
	rb := batcher(t, router, 4)
	const n = 600
	want := sendNumbered(dealer, n, func(i int) []byte { return []byte(fmt.Sprint(i)) })
	got := 0
	deadline := time.Now().Add(5 * time.Second)
	for got < n && time.Now().Before(deadline) {
		rb.RecvReuse(MaxMessages, func(f [][]byte) {
			checkFrames(t, f, got, want)
			got++
		})
	}
	if got != n {
		t.Fatalf("received %d of %d", got, n)
	}
}

// TestRecvMore: a batch cut short by its limit says more may wait; one
// that drained the socket says none does.
func TestRecvMore(t *testing.T) {
	router, dealer := pair(t)
	rb := batcher(t, router, 4)
	for i := 0; i < 5; i++ {
		dealer.SendMessage("sid", "body", fmt.Sprint(i))
	}
	waitReadable(t, rb)
	if n, _, more := rb.Recv(3, func([][]byte) {}); n != 3 || !more {
		t.Fatalf("Recv(3) of 5: %d messages, more %v; want 3, true", n, more)
	}
	if n, _, more := rb.Recv(MaxMessages, func([][]byte) {}); n != 2 || more {
		t.Fatalf("Recv of the last 2: %d messages, more %v; want 2, false", n, more)
	}
}
