package zmqbridge

import (
	"bytes"
	"testing"
	"time"

	"github.com/blastbeat/blastbeat/internal/bufpool"
)

// TestBufReleased: a pooled message's reference is given back once
// libzmq has its bytes (batched, copied) or is done with them (a big body,
// lent: zmqio.SendRef), and once it failed (after Undeliverable), and the
// node gets the bytes intact.
func TestBufReleased(t *testing.T) {
	b, rec, dealer := startWithNode(t)
	if msg, err := dealer.RecvMessage(0); err != nil || msg[1] != "ping" {
		t.Fatalf("first message %q, %v", msg, err)
	}
	var pool bufpool.Pool
	small, big := pool.Get(100), pool.Get(bigBody+1)
	for _, buf := range []*bufpool.Buf{small, big} {
		for i := range buf.B {
			buf.B[i] = byte('a' + len(buf.B)%26)
		}
		buf.Retain() // the test's own reference, to read Refs after
		m := Msg{Node: 1, SID: [16]byte{9}, Type: "body", Body: buf.B, Buf: buf}
		if !b.TrySend(&m) {
			t.Fatal("TrySend refused")
		}
	}
	for _, buf := range []*bufpool.Buf{small, big} {
		var msg [][]byte
		var err error
		for {
			if msg, err = dealer.RecvMessageBytes(0); err != nil {
				t.Fatal(err)
			}
			if string(msg[1]) != "ping" {
				break
			}
		}
		if !bytes.Equal(msg[2], buf.B) {
			t.Fatalf("node got %d bytes, want the %d sent", len(msg[2]), len(buf.B))
		}
		waitRefs(t, buf, 1)
		buf.Release()
	}
	// n0 never connected: undeliverable, and released after.
	failed := pool.Get(10)
	failed.Retain()
	b.TrySend(&Msg{Node: 0, SID: [16]byte{9}, Type: "body", Body: failed.B, Buf: failed})
	waitRefs(t, failed, 1)
	rec.mu.Lock()
	u := rec.undeliv
	rec.mu.Unlock()
	if u != 1 {
		t.Fatalf("undeliverable %d, want 1 before the release", u)
	}
}

// waitRefs waits until buf has n references left.
func waitRefs(t *testing.T, buf *bufpool.Buf, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); buf.Refs() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("refs %d, want %d", buf.Refs(), n)
		}
	}
}
