package zmqio

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/internal/bufpool"
)

// TestRecvPooled: RecvPooled hands over the same messages as Recv, in
// order, each batch of MinPooledBatch bytes or more in one pooled buffer
// (a big message, over the pool's largest class, included). A callee
// that keeps nothing leaves the buffer with no reference once RecvPooled
// returns; one that took a reference keeps the bytes intact, batch after
// batch, until it gives it back.
func TestRecvPooled(t *testing.T) {
	router, dealer := pair(t)
	rb := batcher(t, router, 4)
	const n = 600
	pad := string(bytes.Repeat([]byte("-"), 1000))
	want := sendNumbered(dealer, n, func(i int) []byte { return []byte(fmt.Sprint(i) + pad) })
	var pool bufpool.Pool
	type kept struct {
		body []byte
		want string
		buf  *bufpool.Buf
	}
	var keep []kept
	var seen []*bufpool.Buf
	got := 0
	deadline := time.Now().Add(5 * time.Second)
	for got < n && time.Now().Before(deadline) {
		rb.RecvPooled(MaxMessages, &pool, func(f [][]byte, buf *bufpool.Buf) {
			checkFrames(t, f, got, want)
			if buf == nil {
				got++ // a batch under MinPooledBatch: its own allocation
				return
			}
			if len(seen) == 0 || seen[len(seen)-1] != buf {
				seen = append(seen, buf)
			}
			if got%7 == 0 { // keep every seventh message's bytes
				buf.Retain()
				keep = append(keep, kept{f[3], string(want(got)), buf})
			}
			got++
		})
	}
	if got != n {
		t.Fatalf("received %d of %d", got, n)
	}
	if len(seen) < 2 {
		t.Fatalf("%d pooled batches: the test sends more than MinPooledBatch bytes", len(seen))
	}
	for _, k := range keep {
		if string(k.body) != k.want {
			t.Fatalf("a kept message changed: %d bytes, want %q", len(k.body), k.want[:min(len(k.want), 16)])
		}
	}
	for _, k := range keep {
		k.buf.Release()
	}
	for i, b := range seen {
		if r := b.Refs(); r != 0 {
			t.Errorf("batch buffer %d has %d references left", i, r)
		}
	}
}

// TestRecvPooledSmall: a batch under MinPooledBatch comes with no pooled
// buffer; its bytes are the callee's.
func TestRecvPooledSmall(t *testing.T) {
	router, dealer := pair(t)
	rb := batcher(t, router, 4)
	dealer.SendMessage("sid", "body", "small")
	waitReadable(t, rb)
	var pool bufpool.Pool
	calls := 0
	rb.RecvPooled(MaxMessages, &pool, func(f [][]byte, buf *bufpool.Buf) {
		calls++
		if buf != nil || string(f[3]) != "small" {
			t.Errorf("got %q with buffer %v, want \"small\" and none", f[3], buf)
		}
	})
	if calls != 1 {
		t.Errorf("%d messages, want 1", calls)
	}
}
