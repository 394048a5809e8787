package zmqio

import (
	"bytes"
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
	big := bytes.Repeat([]byte("y"), 300<<10) // over maxRecvBytes: a batch of its own
	for i := 0; i < n; i++ {
		if i == n/2 {
			dealer.SendMessage("sid", "body", big)
			continue
		}
		dealer.SendMessage("sid", "body", fmt.Sprint(i))
	}
	got := 0
	deadline := time.Now().Add(5 * time.Second)
	for got < n && time.Now().Before(deadline) {
		rb.RecvReuse(MaxMessages, func(f [][]byte) {
			want := []byte(fmt.Sprint(got))
			if got == n/2 {
				want = big
			}
			if string(f[0]) != "n1" || string(f[1]) != "sid" || string(f[2]) != "body" || !bytes.Equal(f[3], want) {
				t.Fatalf("message %d: %q %q %q %d bytes", got, f[0], f[1], f[2], len(f[3]))
			}
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
